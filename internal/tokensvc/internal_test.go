package tokensvc

import (
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies, err := parsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, want string
	}{
		{"direct", "203.0.113.7:5000", "", "203.0.113.7"},
		{"untrusted peer's header ignored", "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},
		{"proxy chain, client spoofs the left", "10.1.2.3:5000", "1.1.1.1, 198.51.100.1, 192.0.2.1", "198.51.100.1"},
		{"trusted proxy without header", "192.0.2.1:80", "", "192.0.2.1"},
		{"garbage header", "10.1.2.3:5000", "nonsense", "10.1.2.3"},
		{"ipv4-mapped peer", "[::ffff:10.1.2.3]:5000", "198.51.100.9", "198.51.100.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientAddr(r, proxies, "X-Forwarded-For"); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"http://example.com", "example.com", true},
		{"https://Example.com:8443", "example.com:8443", true},
		{"http://example.com.evil", "example.com", false},
		{"http://example.com:81", "example.com", false},
		{"null", "example.com", false},
		{"http://x", "", false},
	} {
		if got := sameOrigin(tc.origin, tc.host); got != tc.want {
			t.Errorf("sameOrigin(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
}

// TestLoadConfigDefaults: envconfig's defaults and DefaultConfig agree.
func TestLoadConfigDefaults(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "INSTANT_") {
			t.Setenv(k, "") // restored after the test
			_ = os.Unsetenv(k)
		}
	}
	dir := t.TempDir()
	channels := dir + "/channels.yaml"
	if err := os.WriteFile(channels, []byte("channels: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INSTANT_CHANNELS_FILE", channels)
	hmacKey := strings.Repeat("k", 32)
	t.Setenv("INSTANT_CENTRIFUGO_HMAC_KEY", hmacKey)
	t.Setenv("INSTANT_ANONYMOUS", "true")
	got, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.ChannelsFile, want.CentrifugoHMACKey, want.Anonymous = channels, hmacKey, true
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig = %+v\nwant %+v", got, want)
	}
	if want.TokenTTL > 2*time.Minute || want.SubscriptionTokenTTL > 2*time.Minute {
		t.Errorf("default token lifetimes %v, %v: want at most 2m (the revocation window)", want.TokenTTL, want.SubscriptionTokenTTL)
	}
	t.Setenv("INSTANT_TOKEN_TTL", "soon")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "INSTANT_TOKEN_TTL") {
		t.Errorf("bad duration: %v, want an error naming INSTANT_TOKEN_TTL", err)
	}
}

func FuzzSessionParse(f *testing.F) {
	s := newSessions([]byte(strings.Repeat("k", 32)), time.Hour)
	other := newSessions([]byte(strings.Repeat("o", 32)), time.Hour)
	_, good := s.issue("alice", "$2a$04$hash")
	f.Add(good)
	f.Add("e30.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		ss, err := s.parse(v)
		if err != nil {
			return
		}
		// Only values signed with the key parse: the seeds are alice's, and
		// the fuzzer cannot forge an HMAC for anyone else.
		if ss.Username != "alice" {
			t.Fatalf("forged session accepted: %q → %+v", v, ss)
		}
		if _, err := other.parse(v); err == nil {
			t.Fatalf("session %q accepted under another key", v)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseJWKS(b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
	})
}
