package tokensvc_test

import (
	"errors"
	"testing"

	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestRevocationConfig: revocation is off without the API URL; with it the
// key is required, and a key without the URL is a mistake named as such.
// The URL may be a comma-separated list, each checked.
func TestRevocationConfig(t *testing.T) {
	for _, tc := range []struct {
		name, url, key, wantVar string
	}{
		{"off", "", "", ""},
		{"on", "http://127.0.0.1:8000/api", "k", ""},
		{"no key", "http://127.0.0.1:8000/api", "", "INSTANT_CENTRIFUGO_API_KEY"},
		{"key without url", "", "k", "INSTANT_CENTRIFUGO_API_URL"},
		{"not a url", "127.0.0.1:8000", "k", "INSTANT_CENTRIFUGO_API_URL"},
		{"several nodes", "http://cf-0:8000/api, https://cf-1/api", "k", ""},
		{"not a url in a list", "http://cf-0:8000/api,cf-1:8000", "k", "INSTANT_CENTRIFUGO_API_URL"},
		{"empty entry in a list", "http://cf-0:8000/api,", "k", "INSTANT_CENTRIFUGO_API_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tokensvc.DefaultConfig()
			c.ChannelsFile, c.CentrifugoHMACKey, c.Anonymous = writeChannels(t), testenv.Secret(t)+testenv.Secret(t), true
			c.CentrifugoAPIURL, c.CentrifugoAPIKey = tc.url, tc.key
			err := c.Validate()
			var ce *tokensvc.ConfigError
			switch {
			case tc.wantVar == "" && err != nil:
				t.Errorf("valid: %v", err)
			case tc.wantVar != "" && (!errors.As(err, &ce) || ce.Var != tc.wantVar):
				t.Errorf("got %v, want an error naming %s", err, tc.wantVar)
			}
		})
	}
}
