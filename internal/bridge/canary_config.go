package bridge

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/instant-go/instant/internal/tokens"
)

// CanarySubjectPrefix is where the canary publishes its probes: each bridge
// process on CanarySubjectPrefix + a random nonce of its own, outside
// INSTANT_SUBJECT, so no producer subject reaches it and no queue group
// hands a probe to another bridge.
const CanarySubjectPrefix = "instant.canary."

// minCanaryInterval is the shortest INSTANT_CANARY_INTERVAL.
const minCanaryInterval = 100 * time.Millisecond

// validateCanary checks the canary's settings when it is on.
func (c Config) validateCanary() error {
	switch {
	case c.CanaryInterval == 0:
		return nil
	case c.CanaryInterval < minCanaryInterval:
		return fmt.Errorf("INSTANT_CANARY_INTERVAL=%s: want at least %s (e.g. 5s), or leave it empty to turn the canary off", c.CanaryInterval, minCanaryInterval)
	case c.CanaryMaxMisses < 1:
		return fmt.Errorf("INSTANT_CANARY_MAX_MISSES=%d: must be at least 1", c.CanaryMaxMisses)
	case c.CentrifugoHMACKey == "":
		return fmt.Errorf("INSTANT_CENTRIFUGO_HMAC_KEY is empty: the canary (INSTANT_CANARY_INTERVAL) signs its own websocket tokens with Centrifugo's client.token.hmac_secret_key")
	case len(c.CentrifugoHMACKey) < tokens.MinHMACSecret:
		return fmt.Errorf("INSTANT_CENTRIFUGO_HMAC_KEY: too short: %d bytes (want Centrifugo's client.token.hmac_secret_key, at least %d bytes)", len(c.CentrifugoHMACKey), tokens.MinHMACSecret)
	case strings.HasPrefix(CanarySubjectPrefix, c.Subject+"."):
		return fmt.Errorf("INSTANT_SUBJECT=%q: the canary publishes on %s<nonce>, inside it; choose another subject or turn the canary off", c.Subject, CanarySubjectPrefix)
	}
	if _, err := c.canaryWSURL(); err != nil {
		return err
	}
	return nil
}

// canaryWSURL is INSTANT_CENTRIFUGO_WS_URL, or the websocket endpoint on the
// first API URL's host and port (ws for http, wss for https).
func (c Config) canaryWSURL() (string, error) {
	if c.CentrifugoWSURL != "" {
		u, err := url.Parse(c.CentrifugoWSURL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return "", fmt.Errorf("INSTANT_CENTRIFUGO_WS_URL=%q: want a ws(s) URL such as ws://127.0.0.1:8000/connection/websocket", c.CentrifugoWSURL)
		}
		return c.CentrifugoWSURL, nil
	}
	first := c.CentrifugoAPIURLs()[0]
	u, err := url.Parse(first)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("INSTANT_CENTRIFUGO_API_URL=%q: cannot derive the canary's websocket URL from %q; set INSTANT_CENTRIFUGO_WS_URL", c.CentrifugoAPIURL, first)
	}
	ws := url.URL{Scheme: "ws", Host: u.Host, Path: "/connection/websocket"}
	if u.Scheme == "https" {
		ws.Scheme = "wss"
	}
	return ws.String(), nil
}
