package tokensvc

import (
	"embed"
	"fmt"
	"net/http"
	"net/url"
)

// The demo page (INSTANT_DEMO=true): static files that use only the
// browser client, plus a small configuration answer.
//
//go:embed demo/index.html demo/demo.js demo/demo.css
var demoFiles embed.FS

func demoAsset(name, contentType string) asset {
	b, err := demoFiles.ReadFile("demo/" + name)
	if err != nil {
		panic(err) // embedded at build time: missing means a broken build
	}
	return newAsset("demo", b, contentType)
}

var (
	demoPage   = demoAsset("index.html", "text/html; charset=utf-8")
	demoScript = demoAsset("demo.js", "text/javascript; charset=utf-8")
	demoStyle  = demoAsset("demo.css", "text/css; charset=utf-8")
)

// validateDemo checks the demo's settings when the demo is on.
func (c Config) validateDemo() error {
	if !c.Demo {
		return nil
	}
	u, err := url.Parse(c.DemoWSURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return &ConfigError{Var: "INSTANT_DEMO_WS_URL", Msg: fmt.Sprintf("%q is not a websocket URL (want ws:// or wss://, e.g. ws://127.0.0.1:8000/connection/websocket)", c.DemoWSURL)}
	}
	return nil
}

// demoConfig is what the demo page reads at /demo/config.json.
type demoConfig struct {
	WSURL     string `json:"wsUrl"`
	Site      string `json:"site"`
	Anonymous bool   `json:"anonymous"`
	Login     bool   `json:"login"`
}

// addDemo serves the demo page at /, its files under /demo/.
func (s *Server) addDemo(mux *http.ServeMux, get []string) {
	u, _ := url.Parse(s.cfg.DemoWSURL) // validated
	// The page runs only its own scripts and talks only to this service
	// and Centrifugo.
	page := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
			"connect-src 'self' " + u.Scheme + "://" + u.Host + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"Referrer-Policy": "no-referrer",
	}
	const noCache = "no-cache"
	mux.Handle("/{$}", s.instrument(endpoint{"demo", get, demoPage.serve(noCache, page)}))
	mux.Handle("/demo/demo.js", s.instrument(endpoint{"demo", get, demoScript.serve(noCache, nil)}))
	mux.Handle("/demo/demo.css", s.instrument(endpoint{"demo", get, demoStyle.serve(noCache, nil)}))
	cfg := demoConfig{WSURL: s.cfg.DemoWSURL, Site: s.cfg.SiteName, Anonymous: s.cfg.Anonymous, Login: s.deps.Users != nil}
	mux.Handle("/demo/config.json", s.instrument(endpoint{"demo", get, func(w http.ResponseWriter, _ *http.Request) *apiError {
		writeJSON(w, http.StatusOK, cfg)
		return nil
	}}))
}
