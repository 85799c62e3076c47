package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/instant-go/instant/internal/fullstack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// appPage is a page of another application: it loads the client with a
// plain script tag from the token service (and, as a module, client.mjs)
// and keeps what the client reports in window.received and window.states.
const appPage = `<!doctype html>
<meta charset="utf-8"><title>another app</title>
<script src="%[1]s/instant/client.js"></script>
<script>
window.received = [];
window.states = [];
window.instant = Instant.createInstant({tokenUrl: %[2]s, wsUrl: %[3]s, minReconnectDelay: 1500, maxReconnectDelay: 3000,
  getAuthorization: () => window.appJWT});
instant.on("*", (m) => received.push(m));
instant.onState((s) => states.push({...s, at: Date.now()}));
</script>
<script type="module">
import { createInstant } from "%[1]s/instant/client.mjs";
window.moduleLoaded = typeof createInstant;
</script>
`

// app is a page of another application, served on its own origin.
type app struct {
	origin string // as the browser names it: http://127.0.0.1:port or http://localhost:port
	page   []byte
}

// startApp starts the app's server; host is the name the browser uses for
// it (127.0.0.1 or localhost). Its page is set with serve, once the token
// service (which must know the app's origin first) runs.
func startApp(t *testing.T, host string) *app {
	t.Helper()
	a := &app{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(a.page)
	}))
	t.Cleanup(srv.Close)
	a.origin = strings.Replace(srv.URL, "127.0.0.1", host, 1)
	return a
}

// serve sets the app's page to appPage for this token service.
func (a *app) serve(in *fullstack.Instant) {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	a.page = []byte(fmt.Sprintf(appPage, in.TokenURL(), q(in.TokenURL()), q(in.Centrifugo.WebsocketURL())))
}

// openApp opens the app page and waits until both bundles loaded.
func openApp(t *testing.T, tab context.Context, url string) {
	t.Helper()
	do(t, tab, "open "+url, chromedp.Navigate(url))
	waitJS(t, tab, 10*time.Second, "client.js and client.mjs loaded from the token service",
		`typeof window.instant === "object" && window.moduleLoaded === "function"`, `String(window.moduleLoaded)`)
}

const explainApp = `JSON.stringify({states: window.states, received: window.received})`

func waitReceived(t *testing.T, tab context.Context, message string) map[string]any {
	t.Helper()
	q, _ := json.Marshal(message)
	waitJS(t, tab, 10*time.Second, "received "+message, fmt.Sprintf(`received.some((m) => m.message === %s)`, q), explainApp)
	return eval[map[string]any](t, tab, fmt.Sprintf(`received.find((m) => m.message === %s)`, q))
}

// TestCrossOrigin: a page of another origin, listed in
// INSTANT_ALLOWED_ORIGINS, loads the client with a script tag, logs in
// with credentials (the session cookie), receives messages, recovers what
// it missed while disconnected, learns about a gap it cannot recover, and
// logs out.
func TestCrossOrigin(t *testing.T) {
	browser := startBrowser(t)
	a := startApp(t, "127.0.0.1")
	in := fullstack.StartInstant(t, fullstack.InstantOptions{
		TokenService: func(c *tokensvc.Config) { c.AllowedOrigins = []string{a.origin} },
	})
	a.serve(in)
	tab := newTab(t, browser)
	openApp(t, tab, a.origin)
	nc := in.NATS.Connect(t)

	if !eval[bool](t, tab, `instant.login("alice", `+jsString(fullstack.DemoPassword)+`).then(() => instant.start()).then(() => true)`) {
		t.Fatal("login and start did not resolve")
	}
	in.Publish(t, nc, `{"channel":"$group1","message":"cross-origin hello","event_class":"greeting","bucket":"b1","data":{"k":"v"}}`)
	m := waitReceived(t, tab, "cross-origin hello")
	if id, _ := m["id"].(string); id == "" {
		t.Errorf("message has no id: %v", m)
	}
	if ts, _ := m["ts"].(float64); ts < float64(time.Now().Add(-time.Minute).UnixMilli()) {
		t.Errorf("message ts %v, want the bridge's time of the last minute", m["ts"])
	}
	want := map[string]any{"channel": "$group1", "site": "testsite", "message": "cross-origin hello", "eventClass": "greeting", "bucket": "b1", "data": map[string]any{"k": "v"}}
	for k, v := range want {
		if fmt.Sprint(m[k]) != fmt.Sprint(v) {
			t.Errorf("message %s = %v, want %v", k, m[k], v)
		}
	}

	// The session cookie, set by a cross-origin answer, is sent again after
	// a reload: same site (127.0.0.1), another origin (port).
	openApp(t, tab, a.origin)
	if who := eval[string](t, tab, `instant.whoami().then((id) => id ? id.username : "nobody")`); who != "alice" {
		t.Fatalf("after a reload, whoami = %q, want alice (the session cookie)", who)
	}
	eval[bool](t, tab, `instant.start().then(() => true)`)

	// Disconnected for a moment (the client waits at least 1.5s before
	// reconnecting): what was published meanwhile is recovered.
	postCentrifugo(t, in, "disconnect", map[string]any{"user": "alice", "disconnect": map[string]any{"code": 3001, "reason": "test reconnect"}})
	in.Publish(t, nc, `{"channel":"$users","message":"missed while disconnected"}`)
	published := time.Now().UnixMilli()
	waitReceived(t, tab, "missed while disconnected")
	waitJS(t, tab, 5*time.Second, "recovered $users", `states.some((s) => s.type === "subscribed" && s.channel === "$users" && s.recovered)`, explainApp)
	if back := eval[float64](t, tab, `states.findLast((s) => s.type === "connected").at`); int64(back) < published {
		t.Fatalf("the client was connected again at %d, before the publish at %d: nothing to recover", int64(back), published)
	}
	if n := eval[int](t, tab, `states.filter((s) => s.type === "connecting" && s.reason === "test reconnect").length`); n != 1 {
		t.Errorf("%d connecting states with the disconnect's reason, want 1", n)
	}
	if gaps := eval[int](t, tab, `states.filter((s) => s.type === "gap").length`); gaps != 0 {
		t.Errorf("%d gaps reported after a recovery", gaps)
	}

	// Centrifugo restarts and loses its history (memory engine): the
	// client says so for every channel.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Centrifugo.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := in.Centrifugo.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, 15*time.Second, "a gap on each channel", `["$group1", "$users", "public"].every((c) => states.some((s) => s.type === "gap" && s.channel === c))`, explainApp)
	in.Publish(t, nc, `{"channel":"public","message":"after the restart"}`)
	waitReceived(t, tab, "after the restart")

	// Logout needs the CSRF token, sent cross-origin (preflight).
	eval[bool](t, tab, `instant.logout().then(() => true)`)
	if who := eval[string](t, tab, `instant.whoami().then((id) => id ? id.username : "nobody")`); who != "nobody" {
		t.Errorf("after logout, whoami = %q, want nobody", who)
	}
}

// TestCrossOriginRefused: a page whose origin is not listed loads the
// client (a public file) but cannot use the token service.
func TestCrossOriginRefused(t *testing.T) {
	browser := startBrowser(t)
	a := startApp(t, "127.0.0.1")
	in := fullstack.StartInstant(t, fullstack.InstantOptions{})
	a.serve(in)
	tab := newTab(t, browser)
	openApp(t, tab, a.origin)
	got := eval[string](t, tab, `instant.login("alice", `+jsString(fullstack.DemoPassword)+`).then(() => "logged in", (e) => e.name + " " + e.status)`)
	if got != "TokenServiceError 0" {
		t.Errorf("login from an origin not in INSTANT_ALLOWED_ORIGINS: %q, want a TokenServiceError the browser blocked (status 0)", got)
	}
}

// TestCrossSiteBearer: a page of another site (localhost, while the token
// service is 127.0.0.1) cannot keep a session cookie over plain HTTP
// (SameSite, and Secure for SameSite=None); it authenticates with its own
// application's JWT through getAuthorization instead.
func TestCrossSiteBearer(t *testing.T) {
	browser := startBrowser(t)
	a := startApp(t, "localhost")
	key := testenv.Secret(t) + testenv.Secret(t)
	in := fullstack.StartInstant(t, fullstack.InstantOptions{
		TokenService: func(c *tokensvc.Config) { c.AllowedOrigins, c.JWTHMACKey = []string{a.origin}, key },
	})
	a.serve(in)
	tab := newTab(t, browser)
	openApp(t, tab, a.origin)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u-7", "preferred_username": "gina", "groups": []string{"group1"}, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	eval[bool](t, tab, `(window.appJWT = `+jsString(tok)+`, instant.start().then(() => true))`)
	if who := eval[string](t, tab, `instant.identity().username`); who != "gina" {
		t.Errorf("identity %q, want gina (from the JWT)", who)
	}
	in.Publish(t, in.NATS.Connect(t), `{"channel":"$group1","message":"cross-site hello"}`)
	waitReceived(t, tab, "cross-site hello")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// postCentrifugo calls Centrifugo's HTTP API.
func postCentrifugo(t *testing.T, in *fullstack.Instant, method string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, in.Centrifugo.APIURL()+"/"+method, bytes.NewReader(b))
	req.Header.Set("X-API-Key", in.Centrifugo.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("centrifugo %s: %v", method, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("centrifugo %s: status %d", method, resp.StatusCode)
	}
}
