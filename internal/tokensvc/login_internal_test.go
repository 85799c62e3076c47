package tokensvc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/tokens"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// loginServer is a Server with users alice and bob (password "pw").
func loginServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	uf, err := users.New([]users.User{{Username: "alice", PasswordHash: string(h)}, {Username: "bob", PasswordHash: string(h)}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := acl.NewRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := tokens.NewHMAC([]byte(strings.Repeat("h", 32)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ChannelsFile = filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(cfg.ChannelsFile, []byte("channels: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CentrifugoHMACKey, cfg.SessionKey = strings.Repeat("h", 32), strings.Repeat("s", 32)
	cfg.UsersFile = "users.yaml"
	mod(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(cfg, zap.NewNop(), Deps{
		Channels: func() *acl.Registry { return reg },
		Users:    func() *users.File { return uf },
		Signer:   signer,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// login posts a login from remote and returns the answer.
func login(s *Server, remote, user, pw string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	r := httptest.NewRequest(http.MethodPost, "/instant/login/", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func errorCode(w *httptest.ResponseRecorder) string {
	var e errorBody
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	return e.Error.Code
}

// TestHardening11LoginConcurrencyLimit (issue 12, point 11): with
// INSTANT_LOGIN_MAX_CONCURRENT password checks in flight (held by a hook),
// another login gets 429 login_busy with Retry-After and runs no check;
// once they end, logins pass again.
func TestHardening11LoginConcurrencyLimit(t *testing.T) {
	const limit = 2
	s := loginServer(t, func(c *Config) { c.LoginConcurrent = limit })
	entered, release := make(chan string, 10), make(chan struct{})
	s.checkPassword = func(f *users.File, username, password string) (users.User, error) {
		entered <- username
		<-release
		return f.Authenticate(username, password)
	}
	done := make(chan int, limit)
	for i := range limit {
		go func() { done <- login(s, "192.0.2.1:1000", []string{"alice", "bob"}[i], "pw").Code }()
	}
	for range limit {
		<-entered // both checks are now running, held by the hook
	}

	w := login(s, "198.51.100.7:1000", "alice", "pw")
	if w.Code != http.StatusTooManyRequests || errorCode(w) != codeLoginBusy || w.Header().Get("Retry-After") == "" {
		t.Errorf("login with %d checks running: %d %s (Retry-After %q), want 429 %s with Retry-After", limit, w.Code, w.Body, w.Header().Get("Retry-After"), codeLoginBusy)
	}
	select {
	case u := <-entered:
		t.Errorf("a password check for %s ran beyond the limit", u)
	default:
	}

	close(release)
	for range limit {
		if code := <-done; code != http.StatusOK {
			t.Errorf("held login: %d, want 200", code)
		}
	}
	if w := login(s, "198.51.100.7:1000", "alice", "pw"); w.Code != http.StatusOK {
		t.Errorf("login after the checks ended: %d %s, want 200", w.Code, w.Body)
	}
	<-entered
}

// TestHardening11IPv6RateKeyIsSlash64 (issue 12, point 11): the
// per-address login limit counts an IPv6 client by its /64, so a client
// cannot take a fresh address of its prefix for each attempt.
func TestHardening11IPv6RateKeyIsSlash64(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"not an address", "not an address"},
	} {
		if got := addrKey(tc.addr); got != tc.want {
			t.Errorf("addrKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}

	// End to end: one attempt a minute per address; a second address of
	// the same /64 is limited, another /64 is not.
	s := loginServer(t, func(c *Config) { c.LoginRatePerAddr = 1 })
	if w := login(s, "[2001:db8:1:2::1]:5000", "alice", "wrong"); w.Code != http.StatusUnauthorized {
		t.Fatalf("first attempt: %d %s, want 401", w.Code, w.Body)
	}
	if w := login(s, "[2001:db8:1:2::beef]:5000", "bob", "wrong"); w.Code != http.StatusTooManyRequests || errorCode(w) != codeRateLimited {
		t.Errorf("second address of the same /64: %d %s, want 429 %s", w.Code, w.Body, codeRateLimited)
	}
	if w := login(s, "[2001:db8:1:3::1]:5000", "bob", "wrong"); w.Code != http.StatusUnauthorized {
		t.Errorf("another /64: %d %s, want 401", w.Code, w.Body)
	}
}
