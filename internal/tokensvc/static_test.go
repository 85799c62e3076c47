package tokensvc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsclient "github.com/instant-go/instant/clients/js"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestClientBundles: /instant/client.js and client.mjs are the embedded
// bundles, cacheable, loadable by a page of any origin (even one not in
// INSTANT_ALLOWED_ORIGINS, which the API refuses), revalidated by ETag.
func TestClientBundles(t *testing.T) {
	h := start(t, nil)
	c := h.client()
	for _, tc := range []struct {
		path string
		want []byte
	}{
		{"/instant/client.js", jsclient.Script},
		{"/instant/client.mjs", jsclient.Module},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if len(tc.want) < 1000 {
				t.Fatalf("embedded bundle is %d bytes: not built?", len(tc.want))
			}
			r := c.do("GET", tc.path, nil, "Origin", "https://elsewhere.example")
			if r.status != http.StatusOK || !bytes.Equal(r.body, tc.want) {
				t.Fatalf("got %d with %d bytes, want 200 and the %d-byte bundle", r.status, len(r.body), len(tc.want))
			}
			for k, want := range map[string]string{
				"Content-Type":                 "text/javascript; charset=utf-8",
				"Cache-Control":                "public, max-age=300",
				"Access-Control-Allow-Origin":  "*",
				"Cross-Origin-Resource-Policy": "cross-origin",
				"X-Content-Type-Options":       "nosniff",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("a public file must not allow credentials")
			}
			etag := r.header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if r := c.do("GET", tc.path, nil, "If-None-Match", etag); r.status != http.StatusNotModified {
				t.Errorf("If-None-Match: got %s, want 304", r)
			}
			if r := c.do("POST", tc.path, "{}"); r.status != http.StatusMethodNotAllowed {
				t.Errorf("POST: got %s, want 405", r)
			}
		})
	}
	// The API keeps its origin policy.
	if r := c.do("POST", "/instant/get_token/", nil, "Origin", "https://elsewhere.example"); r.errorCode() != "origin_not_allowed" {
		t.Errorf("get_token from another origin: got %s, want origin_not_allowed", r)
	}
}

// TestDemoOff: without INSTANT_DEMO nothing of the demo is served.
func TestDemoOff(t *testing.T) {
	c := start(t, nil).client()
	for _, p := range []string{"/", "/demo/config.json", "/demo/demo.js"} {
		if r := c.do("GET", p, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: got %s, want 404", p, r)
		}
	}
}

// TestDemoOn: the page, its files and its configuration.
func TestDemoOn(t *testing.T) {
	const ws = "ws://127.0.0.1:18000/connection/websocket"
	h := start(t, nil, func(c *tokensvc.Config) { c.Demo, c.DemoWSURL, c.Anonymous = true, ws, true })
	c := h.client()
	r := c.do("GET", "/", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: got %d %s", r.status, r.header.Get("Content-Type"))
	}
	for _, want := range []string{`<script src="/instant/client.js">`, `id="login-form"`, `id="feed"`} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("page lacks %s", want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' ws://127.0.0.1:18000;") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("Content-Security-Policy = %q, want scripts from self and connections to self and Centrifugo", csp)
	}
	for _, p := range []string{"/demo/demo.js", "/demo/demo.css"} {
		if r := c.do("GET", p, nil); r.status != http.StatusOK || len(r.body) == 0 {
			t.Errorf("GET %s: got %d", p, r.status)
		}
	}
	r = c.do("GET", "/demo/config.json", nil)
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("config.json %s: %v", r, err)
	}
	want := map[string]any{"wsUrl": ws, "site": "testsite", "anonymous": true, "login": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("config.json %s = %v, want %v", k, got[k], v)
		}
	}
	// Other paths still reach the API.
	if r := c.do("GET", "/nope", nil); r.errorCode() != "not_found" {
		t.Errorf("GET /nope: got %s, want the API's not_found", r)
	}
}

func TestDemoValidate(t *testing.T) {
	c := tokensvc.DefaultConfig()
	c.ChannelsFile = writeTemp(t, "channels.yaml", channelsYAML)
	c.CentrifugoHMACKey = strings.Repeat("k", 32)
	c.Anonymous = true
	c.DemoWSURL = "http://127.0.0.1:8000/connection/websocket"
	if err := c.Validate(); err != nil {
		t.Fatalf("demo off: the demo URL is not checked, got %v", err)
	}
	c.Demo = true
	var ce *tokensvc.ConfigError
	if err := c.Validate(); !errors.As(err, &ce) || ce.Var != "INSTANT_DEMO_WS_URL" {
		t.Fatalf("got %v, want a ConfigError naming INSTANT_DEMO_WS_URL", err)
	}
	c.DemoWSURL = "wss://rt.example.com/connection/websocket"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid demo URL: %v", err)
	}
}

func writeTemp(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
