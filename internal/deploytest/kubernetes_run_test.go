package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestKubernetesProgramsAsDeployed runs the bridge and the token service in
// this process with the environment of their manifests (release nats's
// servers pointed at a 3-server test cluster, the centrifugo Service at a
// test Centrifugo, the listeners on free ports) and GETs the paths their
// probes and Prometheus annotations name: each answers 200, the bridge's
// /readyz once it is connected, reaches Centrifugo and has its consumer on
// the R3 stream.
func TestKubernetesProgramsAsDeployed(t *testing.T) {
	b := loadKube(t)
	secrets := map[string]string{}
	benv := kubeEnv(t, b, "bridge", secrets)
	tenv := kubeEnv(t, b, "tokensvc", secrets)
	nats := testenv.StartNATSCluster(t, 3)
	cf := testenv.StartCentrifugo(t, func(o *stack.CentrifugoOptions) {
		o.APIKey, o.HMACSecret = benv["INSTANT_CENTRIFUGO_API_KEY"], benv["INSTANT_CENTRIFUGO_HMAC_KEY"]
	})
	// One test Centrifugo serves the API (the chart's internal port) and
	// the websocket (its external port).
	cfAddr := "127.0.0.1:" + strconv.Itoa(cf.Port())
	hosts := map[string]string{"centrifugo:9000": cfAddr, "centrifugo:8000": cfAddr}
	for i, m := range nats.Members() {
		hosts[fmt.Sprintf("nats-%d.nats-headless:4222", i)] = strings.TrimPrefix(m.URL(), "nats://")
	}
	mapHosts(t, benv, hosts)
	benv["INSTANT_BRIDGE_HTTP_ADDR"] = "127.0.0.1:0"
	if benv["INSTANT_CANARY_INTERVAL"] == "" {
		t.Fatal("instant-bridge: no INSTANT_CANARY_INTERVAL: the canary is off")
	}
	benv["INSTANT_CANARY_INTERVAL"] = "300ms" // a probe back within the test
	tenv["INSTANT_TOKENSVC_HTTP_ADDR"] = "127.0.0.1:0"

	setEnv(t, benv)
	bcfg, err := bridge.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	br, err := bridge.New(bcfg, zaptest.NewLogger(t).Named("bridge"))
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = br.Shutdown(ctx)
	})
	getPaths(t, b, "instant-bridge", br.HTTPAddr())
	canaryOK(t, br.HTTPAddr())

	setEnv(t, tenv)
	tcfg, err := tokensvc.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := tokensvc.Start(context.Background(), tcfg, zaptest.NewLogger(t).Named("tokensvc"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	getPaths(t, b, "instant-tokensvc", svc.Addr())
}

// mapHosts points every URL in env (comma-separated lists too) at the test
// server standing in for its host; a host without one fails the test.
func mapHosts(tb testing.TB, env, hosts map[string]string) {
	tb.Helper()
	for k, v := range env {
		parts := strings.Split(v, ",")
		for i, p := range parts {
			u, err := url.Parse(p)
			if err != nil || u.Host == "" || !strings.Contains(p, "://") {
				continue
			}
			h, ok := hosts[u.Host]
			if !ok {
				tb.Fatalf("%s=%s: no test server for %s", k, v, u.Host)
			}
			u.Host = h
			parts[i] = u.String()
		}
		env[k] = strings.Join(parts, ",")
	}
}

// getPaths GETs the readiness, liveness and metrics paths of a
// Deployment's manifest at addr until each answers 200.
func getPaths(t *testing.T, b *kubeBase, deployment, addr string) {
	t.Helper()
	d, c := b.mustContainer(t, deployment)
	paths := []string{c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path, d.Spec.Template.Annotations["prometheus.io/path"]}
	client := &http.Client{Timeout: 3 * time.Second}
	for _, p := range paths {
		testenv.Eventually(t, 30*time.Second, func() error {
			resp, err := client.Get("http://" + addr + p)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s GET %s: %d %s", deployment, p, resp.StatusCode, body)
			}
			return nil
		})
	}
}

// canaryOK waits until the bridge's /readyz says its canary's probes come
// back: its websocket URL and HMAC key are right.
func canaryOK(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	testenv.Eventually(t, 20*time.Second, func() error {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		var st struct{ Canary, CanaryError string }
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return err
		}
		if st.Canary != "ok" {
			return fmt.Errorf("canary %q (%s), want ok", st.Canary, st.CanaryError)
		}
		return nil
	})
}
