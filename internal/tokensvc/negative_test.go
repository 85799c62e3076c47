package tokensvc_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

func TestLoginRefused(t *testing.T) {
	h := start(t, nil)
	for _, tc := range []struct {
		name, user, pw string
	}{
		{"wrong password", "alice", "not alice's"},
		{"unknown user", "mallory", alicePW},
		{"other user's password", "alice", bobPW},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client()
			r := c.do("POST", "/instant/login/", map[string]string{"username": tc.user, "password": tc.pw})
			if r.status != http.StatusUnauthorized || r.errorCode() != "invalid_credentials" {
				t.Errorf("got %s, want 401 invalid_credentials", r)
			}
			if r.header.Get("Set-Cookie") != "" {
				t.Errorf("a refused login set a cookie: %s", r.header.Get("Set-Cookie"))
			}
			if r := c.do("POST", "/instant/get_token/", map[string]any{}); r.status != http.StatusForbidden || r.errorCode() != "not_authenticated" {
				t.Errorf("get_token after a refused login = %s, want 403 not_authenticated", r)
			}
		})
	}
	t.Run("form body", func(t *testing.T) {
		c := h.client()
		r := c.do("POST", "/instant/login/", "username=alice&password=x", "Content-Type", "application/x-www-form-urlencoded")
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("got %s, want 415", r)
		}
	})
	t.Run("GET", func(t *testing.T) {
		r := h.client().do("GET", "/instant/login/", nil)
		if r.status != http.StatusMethodNotAllowed || r.errorCode() != "method_not_allowed" {
			t.Errorf("got %s, want 405 method_not_allowed", r)
		}
	})
}

func TestOversizeBody(t *testing.T) {
	h := start(t, nil)
	big := fmt.Sprintf(`{"username":"alice","password":%q}`, strings.Repeat("x", int(h.cfg.MaxBodyBytes)))
	for _, path := range []string{"/instant/login/", "/instant/subscribe/", "/instant/get_token/"} {
		t.Run(path, func(t *testing.T) {
			c := h.client()
			if path != "/instant/login/" {
				c.login("alice", alicePW)
			}
			r := c.do("POST", path, big)
			if r.status != http.StatusRequestEntityTooLarge || r.errorCode() != "body_too_large" {
				t.Errorf("got %s, want 413 body_too_large", r)
			}
		})
	}
}

// TestLoginFlood: the 11th attempt in a minute for one username gets 429
// with Retry-After, even with the right password; the limit per address
// holds across usernames.
func TestLoginFlood(t *testing.T) {
	if d := tokensvc.DefaultConfig(); d.LoginRatePerUser < 10 || d.LoginRatePerAddr < 60 {
		t.Fatalf("default limits %d/user %d/address, want at least 10 and 60 a minute", d.LoginRatePerUser, d.LoginRatePerAddr)
	}
	t.Run("per username", func(t *testing.T) {
		h := start(t, nil)
		c := h.client()
		// Ten attempts a minute are allowed; the limit must then bite. The
		// bucket refills one attempt every 6s, so a slow machine may get
		// one or two more through before the 429.
		var r response
		n := 0
		for n = 1; n <= 20; n++ {
			r = c.do("POST", "/instant/login/", map[string]string{"username": "alice", "password": "guess" + strconv.Itoa(n)})
			if r.status == http.StatusTooManyRequests {
				break
			}
			if r.status != http.StatusUnauthorized && n <= 10 {
				t.Fatalf("attempt %d: got %s, want 401", n, r)
			}
		}
		if n <= 10 || r.status != http.StatusTooManyRequests || r.errorCode() != "rate_limited" {
			t.Fatalf("attempt %d: got %s; want 429 rate_limited after 10 attempts", n, r)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After %q, want 1..60 seconds", r.header.Get("Retry-After"))
		}
		// Even the right password is refused now.
		if r := c.do("POST", "/instant/login/", map[string]string{"username": "alice", "password": alicePW}); r.status != http.StatusTooManyRequests {
			t.Errorf("right password while limited: got %s, want 429", r)
		}
		// Another user is not limited by alice's attempts.
		c.login("bob", bobPW)
	})
	t.Run("per address", func(t *testing.T) {
		h := start(t, nil, func(c *tokensvc.Config) { c.LoginRatePerAddr = 4 })
		c := h.client()
		for i := range 4 {
			// Known users (cheap test hashes), two attempts each: under
			// the limit of 10 per username.
			user := []string{"alice", "bob"}[i%2]
			if r := c.do("POST", "/instant/login/", map[string]string{"username": user, "password": "x"}); r.status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: got %s, want 401", i+1, r)
			}
		}
		if r := c.do("POST", "/instant/login/", map[string]string{"username": "bob", "password": bobPW}); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("5th attempt from one address: got %s, want 429 with Retry-After", r)
		}
	})
}

// TestUpstreamJWTRefused: bad upstream tokens get 401, never the anonymous
// fallback that is enabled here.
func TestUpstreamJWTRefused(t *testing.T) {
	key := testenv.Secret(t) + testenv.Secret(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := writePublicPEM(t, &rsaKey.PublicKey)
	pubPEM, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	iss := func(c *tokensvc.Config) {
		c.JWTIssuer, c.JWTAudience, c.Anonymous = "https://auth.example", "instant", true
	}
	good := jwt.MapClaims{"iss": "https://auth.example", "aud": "instant"}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		c := upstreamClaims("u1", good)
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	unsigned := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hmacSvc := start(t, nil, iss, func(c *tokensvc.Config) { c.JWTHMACKey = key })
	pemSvc := start(t, nil, iss, func(c *tokensvc.Config) { c.JWTPublicKeyFile = pubPath })
	noJWT := start(t, nil, func(c *tokensvc.Config) { c.Anonymous = true })

	// The good tokens pass: the cases below fail for their one defect.
	for _, ok := range []struct {
		h   *harness
		tok string
	}{
		{hmacSvc, signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(nil), "")},
		{pemSvc, signUpstream(t, jwt.SigningMethodRS256, rsaKey, with(nil), "")},
	} {
		if r := ok.h.client().do("GET", "/instant/get_token/", nil, "Authorization", "Bearer "+ok.tok); r.status != http.StatusOK {
			t.Fatalf("good token refused: %s", r)
		}
	}
	otherKey := testenv.Secret(t) + testenv.Secret(t)
	for _, tc := range []struct {
		name string
		h    *harness
		auth string
	}{
		{"expired", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), "")},
		{"no exp", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"exp": nil}), "")},
		{"not yet valid", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()}), "")},
		{"wrong key", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(otherKey), with(nil), "")},
		{"alg none", hmacSvc, "Bearer " + unsigned(with(nil))},
		{"alg none on public key", pemSvc, "Bearer " + unsigned(with(nil))},
		{"algorithm not configured", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS512, []byte(key), with(nil), "")},
		{"algorithm confusion: HS256 with the public key", pemSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, pubPEM, with(nil), "")},
		{"wrong issuer", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"iss": "https://evil.example"}), "")},
		{"no issuer", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"iss": nil}), "")},
		{"wrong audience", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"aud": "other"}), "")},
		{"no user", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"sub": nil}), "")},
		{"groups not strings", hmacSvc, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(jwt.MapClaims{"groups": []int{1}}), "")},
		{"garbage", hmacSvc, "Bearer not.a.jwt"},
		{"not bearer", hmacSvc, "Basic YWxpY2U6eA=="},
		{"empty bearer", hmacSvc, "Bearer "},
		{"no JWT source configured", noJWT, "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(key), with(nil), "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/instant/get_token/", "/instant/subscribe/", "/instant/refresh/", "/instant/channels/"} {
				method := "POST"
				if path == "/instant/channels/" {
					method = "GET"
				}
				r := tc.h.client().do(method, path, nil, "Authorization", tc.auth)
				if r.status != http.StatusUnauthorized || r.errorCode() != "invalid_credentials" {
					t.Errorf("%s: got %s, want 401 invalid_credentials", path, r)
				}
			}
		})
	}
}

// TestProxyHeadersRefused: identity headers from an address that is not an
// authenticating proxy are refused (401), and ignored when proxy identity is
// off.
func TestProxyHeadersRefused(t *testing.T) {
	h := start(t, nil, func(c *tokensvc.Config) {
		c.ProxyAuth, c.ProxyAuthProxies, c.Anonymous = true, []string{"10.0.0.0/8"}, true
	})
	r := h.client().do("POST", "/instant/get_token/", nil, "X-Forwarded-User", "bob", "X-Forwarded-Groups", "group1")
	if r.status != http.StatusUnauthorized {
		t.Errorf("spoofed headers from 127.0.0.1: got %s, want 401", r)
	}
	h = start(t, nil, func(c *tokensvc.Config) { c.Anonymous = true })
	c := h.client()
	tr := c.tokens(c.do("POST", "/instant/get_token/", nil, "X-Forwarded-User", "bob"))
	if got := names(tr.Channels); len(got) != 1 || got[0] != "public" {
		t.Errorf("headers with proxy identity off: channels %v, want only public (anonymous)", got)
	}
	if sub, _ := h.claims(t, tr.WSToken)["sub"].(string); sub != "" {
		t.Errorf("sub %q, want anonymous", sub)
	}
}

func TestCSRF(t *testing.T) {
	h := start(t, nil)
	c := h.client()
	tr := c.login("alice", alicePW)
	for _, tc := range []struct{ name, header string }{
		{"missing", ""},
		{"wrong", tr.CSRFToken + "x"},
		{"other session's", h.client().login("alice", alicePW).CSRFToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"X-CSRFToken", tc.header}
			}
			for _, m := range []string{"POST", "GET"} {
				if r := c.do(m, "/instant/logout/", nil, hdr...); r.status != http.StatusForbidden || r.errorCode() != "csrf_failed" {
					t.Errorf("%s logout: got %s, want 403 csrf_failed", m, r)
				}
			}
			if r := c.do("POST", "/instant/get_token/", nil); r.status != http.StatusOK {
				t.Errorf("session ended by a refused logout: %s", r)
			}
		})
	}
	// The token endpoints need no CSRF header (django-instant's client).
	for _, p := range []string{"/instant/get_token/", "/instant/subscribe/", "/instant/refresh/", "/instant/login/"} {
		if r := c.do("POST", p, map[string]any{}); r.status != http.StatusOK {
			t.Errorf("%s without X-CSRFToken: %s, want 200", p, r)
		}
	}
	if r := c.do("POST", "/instant/logout/", nil, "X-CSRFToken", tr.CSRFToken); r.status != http.StatusOK {
		t.Fatalf("logout with the right token: %s", r)
	}
	if r := c.do("POST", "/instant/logout/", nil, "X-CSRFToken", tr.CSRFToken); r.status != http.StatusForbidden {
		t.Errorf("second logout: %s, want 403 not logged in", r)
	}
}

func TestSessionCookie(t *testing.T) {
	h := start(t, nil)
	c := h.client()
	c.login("alice", alicePW)
	// Already logged in: django-instant answers whatever the body.
	for _, body := range []any{map[string]string{}, "", "not json", map[string]string{"username": "alice", "password": "wrong"}} {
		if r := c.do("POST", "/instant/login/", body, "Content-Type", "application/json"); r.status != http.StatusOK {
			t.Errorf("login while logged in with body %v: %s, want 200", body, r)
		}
	}
	if r := h.client().do("POST", "/instant/login/", "not json"); r.status != http.StatusBadRequest {
		t.Errorf("login with a bad body and no session: %s, want 400", r)
	}
	raw := h.client()
	login := raw.do("POST", "/instant/login/", map[string]string{"username": "alice", "password": alicePW})
	cookie := login.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	value := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], h.cfg.SessionCookieName+"=")
	payload, sig, _ := strings.Cut(value, ".")
	for name, v := range map[string]string{
		"tampered signature": payload + "." + sig[:len(sig)-2] + "AA",
		"tampered payload":   "e30." + sig,
		"garbage":            "garbage",
	} {
		r := h.client().do("POST", "/instant/get_token/", nil, "Cookie", h.cfg.SessionCookieName+"="+v)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s cookie: got %s, want 401", name, r)
		}
		if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("%s cookie: not cleared (Set-Cookie %q)", name, sc)
		}
	}
	if r := h.client().do("POST", "/instant/get_token/", nil, "Cookie", h.cfg.SessionCookieName+"="+value); r.status != http.StatusOK {
		t.Errorf("the untampered cookie: %s", r)
	}

	// A new password for alice in the users file (hot-reloaded) ends her
	// sessions; removing her too.
	get := func(v string) response {
		return h.client().do("POST", "/instant/get_token/", nil, "Cookie", h.cfg.SessionCookieName+"="+v)
	}
	bobCookie := strings.SplitN(h.client().do("POST", "/instant/login/", map[string]string{"username": "bob", "password": bobPW}).header.Get("Set-Cookie"), ";", 2)[0]
	bobValue := strings.TrimPrefix(bobCookie, h.cfg.SessionCookieName+"=")
	if err := os.WriteFile(h.cfg.UsersFile, []byte(usersYAML(t)), 0o600); err != nil { // new hashes, same passwords
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := get(value); r.status != http.StatusUnauthorized {
			return fmt.Errorf("session after a password change: %s, want 401", r)
		}
		if r := get(bobValue); r.status != http.StatusUnauthorized {
			return fmt.Errorf("bob's session after a password change: %s, want 401", r)
		}
		return nil
	})
	c2 := h.client()
	c2.login("alice", alicePW)
	if err := os.WriteFile(h.cfg.UsersFile, []byte(strings.Replace(usersYAML(t), "username: alice", "username: alicia", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := c2.do("POST", "/instant/get_token/", nil); r.status != http.StatusUnauthorized {
			return fmt.Errorf("removed user's session: %s, want 401", r)
		}
		return nil
	})
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example"
	h := start(t, nil, func(c *tokensvc.Config) { c.AllowedOrigins = []string{allowed}; c.Anonymous = true })
	c := h.client()
	r := c.do("OPTIONS", "/instant/get_token/", nil, "Origin", allowed, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-csrftoken")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != allowed ||
		r.header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "X-CSRFToken") {
		t.Errorf("preflight from an allowed origin: %s %v", r, r.header)
	}
	for _, origin := range []string{"https://evil.example", "null", "https://app.example.evil"} {
		r := c.do("POST", "/instant/get_token/", map[string]any{}, "Origin", origin)
		if r.status != http.StatusForbidden || r.errorCode() != "origin_not_allowed" || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("origin %s: got %s, want 403 origin_not_allowed without CORS headers", origin, r)
		}
	}
	// Same origin (the Origin names the Host) needs no approval.
	host := strings.TrimPrefix(h.base, "http://")
	if r := c.do("POST", "/instant/get_token/", map[string]any{}, "Origin", h.base); r.status != http.StatusOK {
		t.Errorf("same-origin request (Host %s): %s", host, r)
	}
}

func TestSubscribeRefused(t *testing.T) {
	h := start(t, nil)
	c := h.client()
	c.login("alice", alicePW)
	for _, body := range []map[string]any{
		{"channel": "$staff"},
		{"channel": "$inactive"},
		{"channel": "$unknown"},
		{"channels": []string{"public", "$group2"}},
	} {
		if r := c.do("POST", "/instant/subscribe/", body); r.status != http.StatusForbidden || r.errorCode() != "forbidden_channel" {
			t.Errorf("subscribe %v: got %s, want 403 forbidden_channel", body, r)
		}
	}
	if r := c.do("POST", "/instant/subscribe/", map[string]any{"channel": "public", "channels": []string{"public"}}); r.status != http.StatusBadRequest {
		t.Errorf("channel and channels: %s, want 400", r)
	}
	if r := c.do("POST", "/instant/subscribe/", "{not json"); r.status != http.StatusBadRequest {
		t.Errorf("bad JSON: %s, want 400", r)
	}
	if r := h.client().do("POST", "/instant/subscribe/", map[string]any{"channel": "public"}); r.status != http.StatusForbidden || r.errorCode() != "not_authenticated" {
		t.Errorf("not logged in, no anonymous: %s, want 403 not_authenticated", r)
	}
}

// TestHardening9ProxyIdentityHasItsOwnSwitch (issue 12, point 9):
// INSTANT_TRUSTED_PROXIES only chooses whose X-Forwarded-For names the
// client; the user header is only read with INSTANT_PROXY_AUTH=true, and
// only from INSTANT_PROXY_AUTH_PROXIES.
func TestHardening9ProxyIdentityHasItsOwnSwitch(t *testing.T) {
	headers := []string{"X-Forwarded-User", "bob", "X-Forwarded-Groups", "group1", "X-Forwarded-For", "203.0.113.9"}
	for _, tc := range []struct {
		name       string
		mod        func(*tokensvc.Config)
		wantStatus int
		wantSub    string
	}{
		{"trusted proxies alone: headers ignored", func(c *tokensvc.Config) {
			c.TrustedProxies = []string{"127.0.0.0/8"}
		}, http.StatusOK, ""},
		{"proxy auth from another list: refused", func(c *tokensvc.Config) {
			c.TrustedProxies = []string{"127.0.0.0/8"}
			c.ProxyAuth, c.ProxyAuthProxies = true, []string{"10.0.0.0/8"}
		}, http.StatusUnauthorized, ""},
		{"proxy auth from its list: accepted", func(c *tokensvc.Config) {
			c.ProxyAuth, c.ProxyAuthProxies = true, []string{"127.0.0.0/8"}
		}, http.StatusOK, "bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil, func(c *tokensvc.Config) { c.Anonymous = true; tc.mod(c) })
			r := h.client().do("POST", "/instant/get_token/", nil, headers...)
			if r.status != tc.wantStatus {
				t.Fatalf("got %s, want %d", r, tc.wantStatus)
			}
			if r.status != http.StatusOK {
				return
			}
			tr := h.client().tokens(r)
			if sub, _ := h.claims(t, tr.WSToken)["sub"].(string); sub != tc.wantSub {
				t.Errorf("sub %q, want %q", sub, tc.wantSub)
			}
		})
	}
	// The settings are checked: a list without the switch, the switch
	// without a list.
	for _, mod := range []func(*tokensvc.Config){
		func(c *tokensvc.Config) { c.ProxyAuthProxies = []string{"10.0.0.5"} },
		func(c *tokensvc.Config) { c.ProxyAuth = true },
	} {
		c := tokensvc.DefaultConfig()
		c.ChannelsFile, c.CentrifugoHMACKey, c.Anonymous = writeChannels(t), strings.Repeat("k", 32), true
		mod(&c)
		var ce *tokensvc.ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Var != "INSTANT_PROXY_AUTH_PROXIES" {
			t.Errorf("Validate = %v, want an error naming INSTANT_PROXY_AUTH_PROXIES", err)
		}
	}
}

// TestHardening9MultipleProxyUsersRefused (issue 12, point 9): a request
// whose user header has more than one value, on two lines or as a list, is
// refused with 400 ambiguous_proxy_user, whoever sent it.
func TestHardening9MultipleProxyUsersRefused(t *testing.T) {
	h := start(t, nil, func(c *tokensvc.Config) { c.ProxyAuth, c.ProxyAuthProxies = true, []string{"127.0.0.0/8"} })
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"two lines", []string{"admin", "bob"}},
		{"a list", []string{"admin, bob"}},
		{"a list without spaces", []string{"admin,bob"}},
		{"an empty line and a name", []string{"", "bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", h.base+"/instant/get_token/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.values {
				req.Header.Add("X-Forwarded-User", v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			r := response{status: resp.StatusCode, header: resp.Header, body: b}
			if r.status != http.StatusBadRequest || r.errorCode() != "ambiguous_proxy_user" {
				t.Errorf("got %s, want 400 ambiguous_proxy_user", r)
			}
		})
	}
}
