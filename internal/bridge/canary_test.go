package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/testenv"
)

// canaryInterval and canaryMisses are the canary settings of these tests.
const (
	canaryInterval = 200 * time.Millisecond
	canaryMisses   = 3
)

func withCanary(c *bridge.Config) {
	c.CanaryInterval, c.CanaryMaxMisses = canaryInterval, canaryMisses
}

// startCanaryStack is startStack with the canary on, on NATS server n (a
// new one when nil).
func startCanaryStack(t *testing.T, n *testenv.NATS, mods ...func(*bridge.Config)) *stack {
	t.Helper()
	if n == nil {
		n = testenv.StartNATS(t)
	}
	s := newStackOn(t, n, append([]func(*bridge.Config){withCanary}, mods...)...)
	s.cfg.CentrifugoHMACKey = s.cf.HMACSecret
	s.startBridge()
	return s
}

type readyz struct {
	Ready           bool     `json:"ready"`
	NATS            string   `json:"nats"`
	Centrifugo      string   `json:"centrifugo"`
	Canary          string   `json:"canary"`
	CanaryLatencyMS *float64 `json:"canary_latency_ms"`
	CanaryMisses    int      `json:"canary_misses"`
	CanaryError     string   `json:"canary_error"`
}

func (s *stack) readyz() (readyz, int) {
	s.t.Helper()
	body, code := httpGetCode(s.t, "http://"+s.b.HTTPAddr()+"/readyz")
	var r readyz
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		s.t.Fatalf("/readyz %d %q: %v", code, body, err)
	}
	return r, code
}

// waitCanary waits until /readyz answers code with the canary in state.
func (s *stack) waitCanary(d time.Duration, code int, state string) readyz {
	s.t.Helper()
	var r readyz
	testenv.Eventually(s.t, d, func() error {
		var got int
		if r, got = s.readyz(); got != code || r.Canary != state {
			return fmt.Errorf("/readyz %d %+v, want %d with canary %s", got, r, code, state)
		}
		return nil
	})
	return r
}

// failWithin is how long the canary may take to fail once probes stop
// coming back: its misses, one interval for the probe in flight, and slack
// for a loaded machine.
const failWithin = (canaryMisses+1)*canaryInterval + 2*time.Second

// TestCanaryCentrifugoStopped: the canary reports ok with a latency; with
// Centrifugo stopped /readyz answers 503 canary_failed within the misses,
// and ready again once Centrifugo is back. Its probes are never counted as
// envelopes.
func TestCanaryCentrifugoStopped(t *testing.T) {
	s := startCanaryStack(t, nil)
	if r := s.waitCanary(5*time.Second, http.StatusOK, "ok"); r.CanaryLatencyMS == nil || *r.CanaryLatencyMS <= 0 {
		t.Errorf("canary ok without a latency: %+v", r)
	}
	if err := s.cf.Stop(); err != nil {
		t.Fatal(err)
	}
	r := s.waitCanary(failWithin, http.StatusServiceUnavailable, bridge.CanaryFailed)
	if r.CanaryMisses < canaryMisses || r.CanaryError == "" {
		t.Errorf("failed canary: %+v, want %d misses and a reason", r, canaryMisses)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.cf.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitCanary(10*time.Second, http.StatusOK, "ok")
	metrics := "http://" + s.b.HTTPAddr() + "/metrics"
	if v := metricValue(t, metrics, "instant_bridge_canary_failures_total"); v < canaryMisses {
		t.Errorf("instant_bridge_canary_failures_total = %v, want at least %d", v, canaryMisses)
	}
	if v := metricValue(t, metrics, "instant_bridge_canary_latency_seconds_count"); v < 2 {
		t.Errorf("instant_bridge_canary_latency_seconds_count = %v, want the probes before and after", v)
	}
	if body := httpGet(t, metrics); strings.Contains(body, `instant_bridge_envelopes_total{outcome="rejected"`) ||
		metricValue(t, metrics, `instant_bridge_envelopes_total{outcome="forwarded",reason=""}`) != 0 {
		t.Errorf("canary probes counted as envelopes:\n%s", grepLines(body, "instant_bridge_envelopes_total"))
	}
}

// TestCanaryNATSPermissions: with the core mode's documented permissions
// (the canary's subject included) the canary is ok; a bridge that may not
// subscribe to its own canary subject, so never receives its own probes,
// fails /readyz while NATS and Centrifugo answer.
func TestCanaryNATSPermissions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		subscribe []string
		code      int
		state     string
	}{
		{"documented", []string{"instant.publish", "instant.publish.>", "instant.canary.>"}, http.StatusOK, "ok"},
		{"canary subject not allowed", []string{"instant.publish", "instant.publish.>"}, http.StatusServiceUnavailable, bridge.CanaryFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testenv.StartNATS(t, func(o *server.Options) {
				o.Users = []*server.User{
					{Username: "producer", Password: "producer-pw"},
					{Username: "bridge", Password: "bridge-pw", Permissions: &server.Permissions{
						Publish:   &server.SubjectPermission{Allow: []string{"instant.rejected.>", "_INBOX.>", "instant.canary.>"}},
						Subscribe: &server.SubjectPermission{Allow: tc.subscribe},
					}},
				}
				o.NoAuthUser = "producer"
			})
			s := startCanaryStack(t, n, func(c *bridge.Config) { c.NATSUser, c.NATSPassword = "bridge", "bridge-pw" })
			r := s.waitCanary(failWithin, tc.code, tc.state)
			if r.NATS != "ok" || r.Centrifugo != "ok" {
				t.Errorf("/readyz %+v: want NATS and Centrifugo ok", r)
			}
			if errs := s.logs.FilterMessage("nats async error"); (errs.Len() > 0) != (tc.code != http.StatusOK) {
				t.Errorf("NATS errors: %v", errs.All())
			}
		})
	}
}

// TestCanaryStaysReadyUnderLoad: a healthy stack under a short burst of
// 10,000 envelopes a second (2 s) stays ready, its probes keep coming back,
// and the envelopes counted are exactly the producer's.
func TestCanaryStaysReadyUnderLoad(t *testing.T) {
	s := startCanaryStack(t, nil)
	s.waitCanary(5*time.Second, http.StatusOK, "ok")
	metrics := "http://" + s.b.HTTPAddr() + "/metrics"
	probesBefore := metricValue(t, metrics, "instant_bridge_canary_latency_seconds_count")
	const perTick, ticks = 100, 200 // 100 envelopes every 10 ms for 2 s
	channels := []string{"public", "$users", "$group1"}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range ticks {
		<-tick.C
		for j := range perTick {
			body := fmt.Sprintf(`{"channel":%q,"message":"load","id":"l-%d-%d"}`, channels[j%len(channels)], i, j)
			if err := s.nc.Publish("instant.publish", []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			if r, code := s.readyz(); code != http.StatusOK {
				t.Fatalf("/readyz under load: %d %+v", code, r)
			}
		}
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := metricValue(t, metrics, `instant_bridge_envelopes_total{outcome="forwarded",reason=""}`); v != perTick*ticks {
			return fmt.Errorf("forwarded %v of %d", v, perTick*ticks)
		}
		return nil
	})
	if r, code := s.readyz(); code != http.StatusOK || r.Canary != "ok" {
		t.Errorf("/readyz after the load: %d %+v", code, r)
	}
	if v := metricValue(t, metrics, "instant_bridge_canary_latency_seconds_count"); v <= probesBefore {
		t.Errorf("no canary probe came back during the load (%v before, %v after)", probesBefore, v)
	}
	if v := metricValue(t, metrics, "instant_bridge_canary_failures_total"); v >= canaryMisses {
		t.Errorf("canary failures under load: %v", v)
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
