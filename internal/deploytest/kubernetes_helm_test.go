package deploytest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/instant-go/instant/internal/stack"
)

// envOf maps a Deployment's variables by name.
func envOf(tb testing.TB, b *kubeBase, deployment string) map[string]corev1.EnvVar {
	tb.Helper()
	_, c := b.mustContainer(tb, deployment)
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// secretRef is "secret/key" of a variable read from a Secret.
func secretRef(e corev1.EnvVar) string {
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return "(not a Secret reference)"
	}
	return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
}

// TestKubernetesCentrifugoValues: the centrifugo chart values run several
// nodes on the Redis engine, read the API key and the HMAC secret from the
// keys of the Secret the bridge and the token service read, with the
// variable names the composed Centrifugo is tested with, and serve the API
// where the bridge sends.
func TestKubernetesCentrifugoValues(t *testing.T) {
	b := loadKube(t)
	v := helmValues(t, "centrifugo-values.yaml")
	if typ, _ := lookupPath(v, "config.engine.type"); typ != "redis" {
		t.Errorf("config.engine.type %v, want redis: several nodes must share publications and history", typ)
	}
	if n, _ := lookupPath(v, "replicaCount"); n == nil || n.(float64) < 2 {
		t.Errorf("replicaCount %v, want at least 2", n)
	}
	refs := map[string]string{}
	list, _ := lookupPath(v, "envSecret")
	for _, item := range asList(list) {
		raw, _ := json.Marshal(item)
		var e struct { // an envSecret item of the chart
			Name         string                    `json:"name"`
			SecretKeyRef *corev1.SecretKeySelector `json:"secretKeyRef"`
		}
		if err := decodeStrict(raw, &e); err != nil || e.SecretKeyRef == nil {
			t.Fatalf("envSecret item %s: want name and secretKeyRef (%v)", raw, err)
		}
		refs[e.Name] = e.SecretKeyRef.Name + "/" + e.SecretKeyRef.Key
	}
	composed := loadCompose(t).mustService(t, "centrifugo").Environment
	shared := []struct{ centrifugo, program, deployment string }{
		{"CENTRIFUGO_HTTP_API_KEY", "INSTANT_CENTRIFUGO_API_KEY", "instant-bridge"},
		{"CENTRIFUGO_HTTP_API_KEY", "INSTANT_CENTRIFUGO_API_KEY", "instant-tokensvc"}, // live revocation
		{"CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY", "INSTANT_CENTRIFUGO_HMAC_KEY", "instant-tokensvc"},
		{"CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY", "INSTANT_CENTRIFUGO_HMAC_KEY", "instant-bridge"}, // the canary
	}
	for _, s := range shared {
		if _, ok := composed[s.centrifugo]; !ok {
			t.Errorf("%s: docker-compose.yml gives Centrifugo no such variable (TestCentrifugoAsComposed runs with those)", s.centrifugo)
		}
		if want := secretRef(envOf(t, b, s.deployment)[s.program]); refs[s.centrifugo] != want {
			t.Errorf("Centrifugo's %s from %s, %s's %s from %s: want the same Secret key", s.centrifugo, refs[s.centrifugo], s.deployment, s.program, want)
		}
	}
	internal, _ := lookupPath(v, "servers.internal.port")
	external, _ := lookupPath(v, "servers.external.port")
	for _, u := range []struct{ deployment, name, scheme, port, path, why string }{
		{"instant-bridge", "INSTANT_CENTRIFUGO_API_URL", "http", fmt.Sprint(internal), "/api", "the chart's internal port, where the API is"},
		{"instant-tokensvc", "INSTANT_CENTRIFUGO_API_URL", "http", fmt.Sprint(internal), "/api", "the chart's internal port, where the API is"},
		{"instant-bridge", "INSTANT_CENTRIFUGO_WS_URL", "ws", fmt.Sprint(external), "/connection/websocket", "the chart's external port: the internal one has no websocket"},
	} {
		got, err := url.Parse(envOf(t, b, u.deployment)[u.name].Value)
		if err != nil || got.Scheme != u.scheme || got.Hostname() != "centrifugo" || got.Port() != u.port || got.Path != u.path {
			t.Errorf("%s: %s=%s, want %s://centrifugo:%s%s (release centrifugo, %s)", u.deployment, u.name, got, u.scheme, u.port, u.path, u.why)
		}
	}
}

// TestKubernetesCentrifugoChannelOptions: the chart values turn on every
// channel option the tests' Centrifugo runs with (stack.CentrifugoConfig,
// with presence as the token service's revocation tests turn it on):
// history (receipts' offsets), allow_recovery (the JS client's recovery and
// gap detection), presence (live revocation of users only upstream JWTs
// know). An option missing here would be a feature tested but off in
// production.
func TestKubernetesCentrifugoChannelOptions(t *testing.T) {
	var tested map[string]any
	if err := json.Unmarshal(stack.CentrifugoConfig(stack.CentrifugoOptions{Presence: true}), &tested); err != nil {
		t.Fatal(err)
	}
	const path = "channel.without_namespace"
	want, _ := lookupPath(tested, path)
	got, _ := lookupPath(helmValues(t, "centrifugo-values.yaml"), "config."+path)
	gotOpts, _ := got.(map[string]any)
	for k, w := range want.(map[string]any) {
		g, ok := gotOpts[k]
		if !ok {
			t.Errorf("config.%s.%s missing; the tests run Centrifugo with %v", path, k, w)
			continue
		}
		if err := sameKindOn(w, g); err != nil {
			t.Errorf("config.%s.%s=%v: %v (the tests run with %v)", path, k, g, err, w)
		}
	}
}

// sameKindOn checks that got turns on what want does: true for true, a
// positive number or duration for one.
func sameKindOn(want, got any) error {
	switch w := want.(type) {
	case bool:
		if g, ok := got.(bool); !ok || (w && !g) {
			return fmt.Errorf("want %v", w)
		}
	case float64:
		if g, ok := got.(float64); !ok || (w > 0 && g <= 0) {
			return fmt.Errorf("want a positive number")
		}
	case string:
		wd, werr := time.ParseDuration(w)
		gs, _ := got.(string)
		gd, gerr := time.ParseDuration(gs)
		if werr == nil && (gerr != nil || (wd > 0 && gd <= 0)) {
			return fmt.Errorf("want a positive duration")
		}
	}
	return nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestKubernetesCentrifugoValuesKeys: every key under config in the values
// is one Centrifugo v6.9.1 knows (its defaultconfig lists them all), and
// centrifugo checkconfig accepts the file the chart renders from it.
func TestKubernetesCentrifugoValuesKeys(t *testing.T) {
	bin, err := stack.FindCentrifugo()
	if err != nil {
		t.Fatalf("this test needs the real Centrifugo: %v", err)
	}
	out, err := exec.Command(bin, "defaultconfig", "--dry-run").Output()
	if err != nil {
		t.Fatalf("centrifugo defaultconfig: %v", err)
	}
	var defaults map[string]any
	if err := json.Unmarshal(out, &defaults); err != nil {
		t.Fatalf("centrifugo defaultconfig output: %v", err)
	}
	cfg, _ := lookupPath(helmValues(t, "centrifugo-values.yaml"), "config")
	var walk func(path string, v, def any)
	walk = func(path string, v, def any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		dm, ok := def.(map[string]any)
		if !ok {
			t.Errorf("config.%s: Centrifugo has no options below it", path)
			return
		}
		for k, x := range m {
			d, known := dm[k]
			if !known {
				t.Errorf("config.%s: Centrifugo %s has no such option", strings.TrimPrefix(path+"."+k, "."), stack.CentrifugoVersion)
				continue
			}
			walk(strings.TrimPrefix(path+"."+k, "."), x, d)
		}
	}
	walk("", cfg, defaults)
	rendered, _ := json.Marshal(cfg)
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "checkconfig", "--config", file).CombinedOutput(); err != nil {
		t.Errorf("centrifugo checkconfig: %v\n%s", err, out)
	}
}

// TestKubernetesNATSValues: the nats chart values run a JetStream cluster
// large enough for the bridge's stream replicas, and the bridge lists every
// server of it.
func TestKubernetesNATSValues(t *testing.T) {
	b := loadKube(t)
	v := helmValues(t, "nats-values.yaml")
	for _, p := range []string{"config.cluster.enabled", "config.jetstream.enabled"} {
		if on, _ := lookupPath(v, p); on != true {
			t.Errorf("%s: %v, want true", p, on)
		}
	}
	n, _ := lookupPath(v, "config.cluster.replicas")
	servers, _ := n.(float64)
	env := envOf(t, b, "instant-bridge")
	replicas, _ := strconv.Atoi(env["INSTANT_JETSTREAM_REPLICAS"].Value)
	if int(servers) < replicas || replicas < 3 {
		t.Errorf("%v NATS servers for streams of %d replicas: want at least 3 replicas and as many servers", n, replicas)
	}
	var want []string
	for i := range int(servers) {
		want = append(want, fmt.Sprintf("nats://nats-%d.nats-headless:4222", i))
	}
	if got := env["INSTANT_NATS_URL"].Value; got != strings.Join(want, ",") {
		t.Errorf("INSTANT_NATS_URL=%s, want every server of release nats: %s", got, strings.Join(want, ","))
	}
}
