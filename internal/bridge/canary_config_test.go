package bridge

import (
	"strings"
	"testing"
	"time"
)

// TestCanaryConfig: the canary's settings are checked only when it is on,
// errors name the variable, and the websocket URL is derived from the
// (first) API URL unless given.
func TestCanaryConfig(t *testing.T) {
	key := strings.Repeat("k", 32)
	for _, tc := range []struct {
		name   string
		mod    func(*Config)
		wantIn string // "" for valid
		ws     string
	}{
		{"off", func(c *Config) { c.CanaryInterval = 0 }, "", ""},
		{"on, derived from http", func(c *Config) { c.CanaryInterval, c.CentrifugoHMACKey = time.Second, key }, "", "ws://127.0.0.1:8000/connection/websocket"},
		{"on, derived from https", func(c *Config) {
			c.CanaryInterval, c.CentrifugoHMACKey, c.CentrifugoAPIURL = time.Second, key, "https://rt.example.com/api"
		}, "", "wss://rt.example.com/connection/websocket"},
		{"on, derived from the first of several", func(c *Config) {
			c.CanaryInterval, c.CentrifugoHMACKey, c.CentrifugoAPIURL = time.Second, key, " https://cf-0.example.com:9000/api , http://cf-1:8000/api"
		}, "", "wss://cf-0.example.com:9000/connection/websocket"},
		{"on, given", func(c *Config) {
			c.CanaryInterval, c.CentrifugoHMACKey, c.CentrifugoWSURL = time.Second, key, "wss://edge.example.com/ws"
		}, "", "wss://edge.example.com/ws"},
		{"no key", func(c *Config) { c.CanaryInterval = time.Second }, "INSTANT_CENTRIFUGO_HMAC_KEY", ""},
		{"short key", func(c *Config) { c.CanaryInterval, c.CentrifugoHMACKey = time.Second, "short" }, "INSTANT_CENTRIFUGO_HMAC_KEY", ""},
		{"too often", func(c *Config) { c.CanaryInterval, c.CentrifugoHMACKey = time.Millisecond, key }, "INSTANT_CANARY_INTERVAL", ""},
		{"no misses", func(c *Config) { c.CanaryInterval, c.CentrifugoHMACKey, c.CanaryMaxMisses = time.Second, key, 0 }, "INSTANT_CANARY_MAX_MISSES", ""},
		{"bad ws url", func(c *Config) {
			c.CanaryInterval, c.CentrifugoHMACKey, c.CentrifugoWSURL = time.Second, key, "http://x/connection/websocket"
		}, "INSTANT_CENTRIFUGO_WS_URL", ""},
		{"subject around the canary's", func(c *Config) { c.CanaryInterval, c.CentrifugoHMACKey, c.Subject = time.Second, key, "instant" }, "INSTANT_SUBJECT", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.wantIn == "" {
				if err != nil {
					t.Fatalf("valid: %v", err)
				}
				if ws, _ := c.canaryWSURL(); tc.ws != "" && ws != tc.ws {
					t.Errorf("websocket URL %q, want %q", ws, tc.ws)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) || strings.Contains(err.Error(), key) {
				t.Errorf("got %v, want an error naming %s (never the key)", err, tc.wantIn)
			}
		})
	}
}
