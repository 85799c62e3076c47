package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

const channelsYAML = `channels:
  - name: public
    level: public
  - name: $users
    level: users
  - name: $group1
    level: groups
    groups: [group1]
  - name: $billing
    level: staff
    publishers: [billing]
  - name: $old
    level: users
    active: false
  - name: nons:chan
    level: users
`

// stack is a bridge between an embedded NATS and a real Centrifugo.
type stack struct {
	t      *testing.T
	nats   *testenv.NATS
	cf     *testenv.Centrifugo
	cfg    bridge.Config
	b      *bridge.Bridge
	nc     *nats.Conn
	signer *tokens.Signer
	logs   *observer.ObservedLogs
}

func startStack(t *testing.T, mods ...func(*bridge.Config)) *stack {
	t.Helper()
	s := newStack(t, mods...)
	s.startBridge()
	return s
}

// newStack is startStack without starting the bridge.
func newStack(t *testing.T, mods ...func(*bridge.Config)) *stack {
	t.Helper()
	return newStackOn(t, testenv.StartNATS(t), mods...)
}

// newStackOn is newStack on a NATS server of the test's.
func newStackOn(t *testing.T, n *testenv.NATS, mods ...func(*bridge.Config)) *stack {
	t.Helper()
	s := &stack{t: t, nats: n, cf: testenv.StartCentrifugo(t)}
	dir := t.TempDir()
	chFile := filepath.Join(dir, "channels.yaml")
	if err := os.WriteFile(chFile, []byte(channelsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cfg = testConfig(s.nats.URL(), s.cf.APIURL(), s.cf.APIKey, chFile)
	for _, m := range mods {
		m(&s.cfg)
	}
	s.nc = s.nats.Connect(t)
	var err error
	if s.signer, err = tokens.NewHMAC([]byte(s.cf.HMACSecret)); err != nil {
		t.Fatal(err)
	}
	return s
}

func testConfig(natsURL, apiURL, apiKey, channelsFile string) bridge.Config {
	c := bridge.DefaultConfig()
	c.NATSURL, c.NATSName = natsURL, "test-bridge"
	c.CentrifugoAPIURL, c.CentrifugoAPIKey, c.CentrifugoTimeout = apiURL, apiKey, 2*time.Second
	c.SiteName, c.ChannelsFile, c.HTTPAddr = "testsite", channelsFile, "127.0.0.1:0"
	c.BatchMax, c.QueueSize = 500, 10000
	c.RetryAttempts, c.RetryBackoff, c.RetryMaxBackoff = 3, 50*time.Millisecond, 200*time.Millisecond
	c.ShutdownTimeout = 10 * time.Second
	return c
}

func (s *stack) startBridge() *bridge.Bridge {
	s.t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	s.logs = logs
	log := zaptest.NewLogger(s.t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, core) })))
	b, err := bridge.New(s.cfg, log)
	if err != nil {
		s.t.Fatalf("bridge.New: %v", err)
	}
	if err := b.Start(); err != nil {
		s.t.Fatalf("bridge.Start: %v", err)
	}
	s.b = b
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	return b
}

// subscriber connects user "alice" and subscribes to channels with tokens.
func (s *stack) subscriber(channels ...string) *testenv.Subscriber {
	s.t.Helper()
	conn, _, err := s.signer.Connection("alice", nil, time.Minute)
	if err != nil {
		s.t.Fatal(err)
	}
	sub := testenv.Connect(s.t, s.cf.WebsocketURL(), conn)
	for _, ch := range channels {
		tok, _, err := s.signer.Subscription("alice", ch, time.Minute)
		if err != nil {
			s.t.Fatal(err)
		}
		sub.MustSubscribe(ch, tok)
	}
	return sub
}

type receipt struct {
	OK      bool   `json:"ok"`
	ID      string `json:"id"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
	Results []struct {
		Channel string `json:"channel"`
		Offset  uint64 `json:"offset"`
		Epoch   string `json:"epoch"`
	} `json:"results"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *stack) request(subject, body string) receipt {
	s.t.Helper()
	msg, err := s.nc.Request(subject, []byte(body), 10*time.Second)
	if err != nil {
		s.t.Fatalf("request %s %s: %v", subject, body, err)
	}
	var r receipt
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		s.t.Fatalf("receipt %q: %v", msg.Data, err)
	}
	return r
}

func decodeObject(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("publication data %q is not a JSON object: %v", data, err)
	}
	return m
}

func TestPublishObjectMode(t *testing.T) {
	s := startStack(t)
	sub := s.subscriber("$users")
	before := time.Now().UnixMilli()
	r := s.request("instant.publish", `{"channel":"$users","message":"hi","event_class":"important","data":{"n":1,"list":[1,2]},"bucket":"b1"}`)
	if !r.OK || r.Error != nil {
		t.Fatalf("receipt %+v: want ok", r)
	}
	if len(r.ID) != 26 || r.Offset == 0 || r.Epoch == "" {
		t.Errorf("receipt %+v: want a generated 26-char id, an offset and an epoch", r)
	}
	p := sub.Next(5 * time.Second)
	got := decodeObject(t, p.Data)
	ts, _ := got["ts"].(float64)
	if int64(ts) < before || int64(ts) > time.Now().UnixMilli() {
		t.Errorf("ts %v not the receive time in Unix ms (between %d and now)", got["ts"], before)
	}
	delete(got, "ts")
	want := map[string]any{
		"id": r.ID, "channel": "$users", "site": "testsite", "message": "hi",
		"data": map[string]any{"n": 1.0, "list": []any{1.0, 2.0}}, "event_class": "important", "bucket": "b1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("publication\n got %v\nwant %v", got, want)
	}
	if p.Offset != r.Offset {
		t.Errorf("publication offset %d, receipt offset %d", p.Offset, r.Offset)
	}

	// A producer's own id and site are kept; empty fields are omitted.
	r = s.request("instant.publish", `{"channel":"$users","message":"x","id":"order-42","site":"other"}`)
	if !r.OK || r.ID != "order-42" {
		t.Fatalf("receipt %+v: want ok with id order-42", r)
	}
	got = decodeObject(t, sub.Next(5*time.Second).Data)
	delete(got, "ts")
	want = map[string]any{"id": "order-42", "channel": "$users", "site": "other", "message": "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("publication\n got %v\nwant %v", got, want)
	}
}

func TestPublishDjangoMode(t *testing.T) {
	s := startStack(t, func(c *bridge.Config) { c.PayloadMode = "django" })
	sub := s.subscriber("$users", "public")
	r := s.request("instant.publish", `{"channel":"$users","message":"hi","event_class":"important","data":{"k":"v"}}`)
	if !r.OK {
		t.Fatalf("receipt %+v: want ok", r)
	}
	p := sub.Next(5 * time.Second)
	// The publication data is a JSON string holding django-instant's payload.
	var str string
	if err := json.Unmarshal(p.Data, &str); err != nil {
		t.Fatalf("publication data %s is not a JSON string: %v", p.Data, err)
	}
	got := decodeObject(t, []byte(str))
	want := map[string]any{"channel": "$users", "site": "testsite", "message": "hi", "data": map[string]any{"k": "v"}, "event_class": "important"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("django payload\n got %v\nwant %v", got, want)
	}

	// Several channels: one publish per channel, each payload naming its channel.
	r = s.request("instant.publish", `{"channels":["$users","public"],"data":{"a":1}}`)
	if !r.OK || len(r.Results) != 2 || r.Results[0].Channel != "$users" || r.Results[1].Channel != "public" {
		t.Fatalf("receipt %+v: want ok with results for $users and public", r)
	}
	seen := map[string]bool{}
	for range 2 {
		p := sub.Next(5 * time.Second)
		if err := json.Unmarshal(p.Data, &str); err != nil {
			t.Fatalf("publication data %s is not a JSON string: %v", p.Data, err)
		}
		got := decodeObject(t, []byte(str))
		want := map[string]any{"channel": p.Channel, "site": "testsite", "data": map[string]any{"a": 1.0}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("django payload on %s\n got %v\nwant %v", p.Channel, got, want)
		}
		seen[p.Channel] = true
	}
	if !seen["$users"] || !seen["public"] {
		t.Errorf("received on %v, want $users and public", seen)
	}
}

func TestBroadcastObjectMode(t *testing.T) {
	s := startStack(t)
	sub := s.subscriber("$users", "public")
	r := s.request("instant.publish", `{"channels":["$users","public"],"message":"to both"}`)
	if !r.OK || len(r.Results) != 2 {
		t.Fatalf("receipt %+v: want ok with 2 results", r)
	}
	for i, res := range r.Results {
		if res.Offset == 0 || res.Epoch == "" {
			t.Errorf("result %d %+v: want offset and epoch", i, res)
		}
	}
	seen := map[string]bool{}
	for range 2 {
		p := sub.Next(5 * time.Second)
		got := decodeObject(t, p.Data)
		delete(got, "ts")
		want := map[string]any{"id": r.ID, "channels": []any{"$users", "public"}, "site": "testsite", "message": "to both"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("broadcast publication on %s\n got %v\nwant %v", p.Channel, got, want)
		}
		seen[p.Channel] = true
	}
	if !seen["$users"] || !seen["public"] {
		t.Errorf("received on %v, want $users and public", seen)
	}
}

func TestRejections(t *testing.T) {
	s := startStack(t)
	sub := s.subscriber("$users")
	rejected := make(chan *nats.Msg, 64)
	rs, err := s.nc.ChanSubscribe("instant.rejected.>", rejected)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rs.Unsubscribe() }()
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	big := `{"channel":"$users","message":"` + strings.Repeat("x", 70000) + `"}`
	cases := []struct {
		name, subject, body, code string
	}{
		{"broken json", "instant.publish", `{"channel":`, "invalid_json"},
		{"trailing garbage", "instant.publish", `{"channel":"$users","message":"a"} x`, "invalid_json"},
		{"no message nor data", "instant.publish", `{"channel":"$users"}`, "invalid_envelope"},
		{"both channel and channels", "instant.publish", `{"channel":"$users","channels":["public"],"message":"a"}`, "invalid_envelope"},
		{"unknown field", "instant.publish", `{"chanel":"$users","message":"a"}`, "invalid_envelope"},
		{"too large", "instant.publish", big, "too_large"},
		{"unknown channel", "instant.publish", `{"channel":"$nope","message":"a"}`, "unknown_channel"},
		{"inactive channel", "instant.publish", `{"channel":"$old","message":"a"}`, "inactive_channel"},
		{"publisher not allowed", "instant.publish.sales", `{"channel":"$billing","message":"a"}`, "publisher_denied"},
		{"anonymous publisher on restricted channel", "instant.publish", `{"channel":"$billing","message":"a"}`, "publisher_denied"},
		{"one bad channel rejects all", "instant.publish", `{"channels":["$users","$nope"],"message":"a"}`, "unknown_channel"},
		{"centrifugo refuses", "instant.publish", `{"channel":"nons:chan","message":"a","id":"e1"}`, "upstream_rejected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.request(tc.subject, tc.body)
			if r.OK || r.Error == nil || r.Error.Code != tc.code {
				t.Fatalf("receipt %+v: want ok=false with code %s", r, tc.code)
			}
			if r.Error.Message == "" {
				t.Error("rejection without a message")
			}
			select {
			case m := <-rejected:
				if m.Subject != "instant.rejected."+tc.code {
					t.Errorf("notice subject %s, want instant.rejected.%s", m.Subject, tc.code)
				}
				if string(m.Data) != tc.body {
					t.Errorf("notice data %.80q, want the original envelope %.80q", m.Data, tc.body)
				}
				if got := m.Header.Get(dlq.HeaderErrorCode); got != tc.code {
					t.Errorf("%s header %q, want %q", dlq.HeaderErrorCode, got, tc.code)
				}
				if got := m.Header.Get(dlq.HeaderOriginalSubject); got != tc.subject {
					t.Errorf("%s header %q, want %q", dlq.HeaderOriginalSubject, got, tc.subject)
				}
				if m.Header.Get(dlq.HeaderError) == "" {
					t.Errorf("%s header empty", dlq.HeaderError)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no rejection notice published")
			}
		})
	}
	// A producer named by its subject may publish to its channel.
	if r := s.request("instant.publish.billing", `{"channel":"$billing","message":"paid"}`); !r.OK {
		t.Errorf("billing producer on $billing: receipt %+v, want ok", r)
	}
	// None of the rejected envelopes reached the subscriber; a good one does.
	if r := s.request("instant.publish", `{"channel":"$users","message":"good"}`); !r.OK {
		t.Fatalf("receipt %+v: want ok", r)
	}
	p := sub.Next(5 * time.Second)
	if got := decodeObject(t, p.Data)["message"]; got != "good" {
		t.Errorf("first publication message %v, want good (a rejected envelope leaked?)", got)
	}
	// Rejections are counted by reason in the metrics.
	body := httpGet(t, "http://"+s.b.HTTPAddr()+"/metrics")
	for _, want := range []string{
		`instant_bridge_envelopes_total{outcome="rejected",reason="unknown_channel"} 2`,
		`instant_bridge_envelopes_total{outcome="rejected",reason="upstream_rejected"} 1`,
		`instant_bridge_envelopes_total{outcome="forwarded",reason=""} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestOrderPerChannel publishes from several producers at once to a few
// channels, with small batches and concurrent requests, and checks that each
// channel receives each producer's messages in the order they were sent.
func TestOrderPerChannel(t *testing.T) {
	s := startStack(t, func(c *bridge.Config) { c.BatchMax = 7; c.Concurrency = 4 })
	channels := []string{"$users", "public", "$group1"}
	sub := s.subscriber(channels...)
	const producers, perProducer = 4, 300
	var wg sync.WaitGroup
	for p := range producers {
		nc := s.nats.Connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				ch := channels[(i+p)%len(channels)]
				body := fmt.Sprintf(`{"channel":%q,"data":{"p":%d,"seq":%d}}`, ch, p, i)
				if err := nc.Publish("instant.publish", []byte(body)); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
			if err := nc.Flush(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	last := map[string]int{}
	for range producers * perProducer {
		pub := sub.Next(10 * time.Second)
		var m struct {
			Channel string `json:"channel"`
			Data    struct{ P, Seq int }
		}
		if err := json.Unmarshal(pub.Data, &m); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s/%d", pub.Channel, m.Data.P)
		if prev, ok := last[key]; ok && m.Data.Seq <= prev {
			t.Fatalf("channel %s producer %d: seq %d after %d (out of order)", pub.Channel, m.Data.P, m.Data.Seq, prev)
		}
		last[key] = m.Data.Seq
	}
	if extra, ok := sub.TryNext(200 * time.Millisecond); ok {
		t.Errorf("unexpected extra publication %s", extra.Data)
	}
}

func TestCentrifugoDown(t *testing.T) {
	s := startStack(t)
	rejected := make(chan *nats.Msg, 64)
	if _, err := s.nc.ChanSubscribe("instant.rejected.upstream_unavailable", rejected); err != nil {
		t.Fatal(err)
	}
	if err := s.cf.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := s.request("instant.publish", `{"channel":"$users","message":"lost?","id":"down-1"}`)
	if r.OK || r.Error == nil || r.Error.Code != "upstream_unavailable" || r.ID != "down-1" {
		t.Fatalf("receipt %+v: want ok=false upstream_unavailable for down-1", r)
	}
	t.Logf("upstream_unavailable after %v", time.Since(start))
	select {
	case m := <-rejected:
		if m.Header.Get(dlq.HeaderEnvelopeID) != "down-1" {
			t.Errorf("notice id header %q, want down-1", m.Header.Get(dlq.HeaderEnvelopeID))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no upstream_unavailable notice")
	}
	readyz, code := httpGetCode(t, "http://"+s.b.HTTPAddr()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(readyz, "unreachable") {
		t.Errorf("/readyz with Centrifugo down: %d %s, want 503 naming centrifugo", code, readyz)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.cf.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	sub := s.subscriber("$users")
	if r := s.request("instant.publish", `{"channel":"$users","message":"back"}`); !r.OK {
		t.Fatalf("after restart: receipt %+v, want ok", r)
	}
	if got := decodeObject(t, sub.Next(5*time.Second).Data)["message"]; got != "back" {
		t.Errorf("message %v, want back", got)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, code := httpGetCode(t, "http://"+s.b.HTTPAddr()+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz %d", code)
		}
		return nil
	})
}

// TestShutdownForwardsEverythingReceived sends a burst and shuts the bridge
// down in the middle: every envelope the bridge received is forwarded (or
// rejected with a notice), none is lost.
func TestShutdownForwardsEverythingReceived(t *testing.T) {
	// Small batches, one request at a time: the burst is still in flight
	// when the shutdown begins.
	s := startStack(t, func(c *bridge.Config) { c.BatchMax, c.Concurrency = 10, 1 })
	sub := s.subscriber("$users")
	rejected := make(chan *nats.Msg, 10000)
	if _, err := s.nc.ChanSubscribe("instant.rejected.>", rejected); err != nil {
		t.Fatal(err)
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		if err := s.nc.Publish("instant.publish", fmt.Appendf(nil, `{"channel":"$users","data":{"i":%d}}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, "http://"+s.b.HTTPAddr()+"/metrics", "instant_bridge_inflight_envelopes"); v == 0 {
			return fmt.Errorf("nothing in flight yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// The bridge was the only subscriber: whatever it took is accounted for.
	got := map[int]bool{}
	for {
		p, ok := sub.TryNext(time.Second)
		if !ok {
			break
		}
		var m struct{ Data struct{ I int } }
		if err := json.Unmarshal(p.Data, &m); err != nil {
			t.Fatal(err)
		}
		got[m.Data.I] = true
	}
	if len(got)+len(rejected) != n {
		t.Errorf("forwarded %d + rejected %d, want %d: envelopes lost in shutdown", len(got), len(rejected), n)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s := startStack(t)
	base := "http://" + s.b.HTTPAddr()
	if body, code := httpGetCode(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d %s", code, body)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if body, code := httpGetCode(t, base+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz %d %s", code, body)
		}
		return nil
	})
	if r := s.request("instant.publish", `{"channel":"public","message":"m"}`); !r.OK {
		t.Fatalf("receipt %+v", r)
	}
	body := httpGet(t, base+"/metrics")
	for _, want := range []string{
		"instant_bridge_forward_duration_seconds_count 1",
		"instant_bridge_batch_size_count",
		"instant_bridge_inflight_envelopes 0",
		"instant_bridge_slow_consumer_dropped_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `channel="`) {
		t.Error("metrics carry a per-channel label")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	body, code := httpGetCode(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body
}

func httpGetCode(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// TestSlowConsumerDropsAreCounted makes the bridge fall behind (Centrifugo
// down, tiny buffers) so that NATS drops envelopes, and checks that every
// envelope is accounted for: forwarded, rejected, or counted as dropped.
func TestSlowConsumerDropsAreCounted(t *testing.T) {
	s := startStack(t, func(c *bridge.Config) {
		c.NATSPendingMsgs, c.QueueSize, c.BatchMax, c.Concurrency = 5, 1, 1, 1
		c.RetryAttempts, c.RetryBackoff, c.RetryMaxBackoff = 10000, 20*time.Millisecond, 50*time.Millisecond
	})
	if err := s.cf.Stop(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		if err := s.nc.Publish("instant.publish", fmt.Appendf(nil, `{"channel":"$users","data":{"i":%d}}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	metricsURL := "http://" + s.b.HTTPAddr() + "/metrics"
	testenv.Eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, metricsURL, "instant_bridge_slow_consumer_dropped_total"); v == 0 {
			return fmt.Errorf("no drops counted yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.cf.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		dropped := metricValue(t, metricsURL, "instant_bridge_slow_consumer_dropped_total")
		forwarded := metricValue(t, metricsURL, `instant_bridge_envelopes_total{outcome="forwarded",reason=""}`)
		rejected := metricValue(t, metricsURL, `instant_bridge_envelopes_total{outcome="rejected",reason="upstream_unavailable"}`)
		if dropped+forwarded+rejected != n {
			return fmt.Errorf("dropped %v + forwarded %v + rejected %v != %d", dropped, forwarded, rejected, n)
		}
		return nil
	})
}

// metricValue reads one sample from the Prometheus text format (0 if absent).
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(httpGet(t, url), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// TestShutdownDuringRequests shuts the bridge down while producers are
// sending requests: every request is answered (a receipt, or no responders
// once the bridge is gone), none times out, and every envelope with an ok
// receipt reached the subscriber.
func TestShutdownDuringRequests(t *testing.T) {
	s := startStack(t)
	sub := s.subscriber("$users")
	var (
		mu       sync.Mutex
		okIDs    = map[string]bool{}
		answered int
		noResp   int
		failures []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		nc := s.nats.Connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				msg, err := nc.Request("instant.publish", fmt.Appendf(nil, `{"channel":"$users","message":"m","id":%q}`, id), 10*time.Second)
				mu.Lock()
				switch {
				case errors.Is(err, nats.ErrNoResponders):
					noResp++
				case err != nil:
					failures = append(failures, id+": "+err.Error())
				default:
					answered++
					var r receipt
					if json.Unmarshal(msg.Data, &r) == nil && r.OK {
						okIDs[r.ID] = true
					} else if r.Error == nil || r.Error.Code != "upstream_unavailable" {
						failures = append(failures, id+": unexpected receipt "+string(msg.Data))
					}
				}
				done := noResp > 0
				mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if answered < 200 {
			return fmt.Errorf("%d receipts so far", answered)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.b.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed or timed out, e.g. %s", len(failures), failures[0])
	}
	got := map[string]bool{}
	for {
		p, ok := sub.TryNext(time.Second)
		if !ok {
			break
		}
		var m struct{ ID string }
		if err := json.Unmarshal(p.Data, &m); err != nil {
			t.Fatal(err)
		}
		got[m.ID] = true
	}
	for id := range okIDs {
		if !got[id] {
			t.Errorf("envelope %s had an ok receipt but never reached the subscriber", id)
		}
	}
	t.Logf("%d ok receipts, %d delivered, %d no-responders after shutdown", len(okIDs), len(got), noResp)
}

// TestChannelsFileReload edits the channels file under a running bridge: a
// new channel is accepted without a restart, and a broken file is refused
// while the old channels keep working.
func TestChannelsFileReload(t *testing.T) {
	s := startStack(t)
	if r := s.request("instant.publish", `{"channel":"$new","message":"a"}`); r.OK || r.Error.Code != "unknown_channel" {
		t.Fatalf("before reload: %+v, want unknown_channel", r)
	}
	write := func(body string) {
		tmp := s.cfg.ChannelsFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, s.cfg.ChannelsFile); err != nil {
			t.Fatal(err)
		}
	}
	write(channelsYAML + "  - name: $new\n    level: users\n")
	testenv.Eventually(t, 10*time.Second, func() error {
		if r := s.request("instant.publish", `{"channel":"$new","message":"a"}`); !r.OK {
			return fmt.Errorf("after reload: %+v", r)
		}
		return nil
	})
	write("channels:\n  - name: $users\n    level: admin\n")
	// The broken file is refused: the last good registry stays in force.
	testenv.Eventually(t, 10*time.Second, func() error {
		if s.logs.FilterMessageSnippet("reload failed").Len() == 0 {
			return fmt.Errorf("the broken channels file was not refused (yet)")
		}
		return nil
	})
	if r := s.request("instant.publish", `{"channel":"$new","message":"b"}`); !r.OK {
		t.Fatalf("after a broken file: %+v, want the previous channels kept", r)
	}
}
