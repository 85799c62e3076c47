package tokensvc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestUsersFileSource: a users-file login gets tokens that the real
// Centrifugo accepts for exactly alice's channels, and a subscribe request
// for another channel is refused by the service and by Centrifugo.
func TestUsersFileSource(t *testing.T) {
	h := start(t, withCentrifugo(t))
	c := h.client()
	tr := c.login("alice", alicePW)
	if tr.CSRFToken == "" {
		t.Error("login answer has no csrf_token")
	}
	claims := h.claims(t, tr.WSToken)
	info, _ := claims["info"].(map[string]any)
	if info["username"] != "alice" || info["site"] != "testsite" {
		t.Errorf("connection info = %v, want username alice and site testsite", claims["info"])
	}
	h.checkOnCentrifugo(t, tr, "42", []string{"$group1", "$users", "public"}, []string{"$staff", "$group2", "$super", "$inactive"})

	// get_token with the session cookie gives the same channels.
	if got := names(c.tokens(c.do("POST", "/instant/get_token/", map[string]any{})).Channels); len(got) != 3 {
		t.Errorf("get_token channels = %v", got)
	}
	if r := c.do("POST", "/instant/get_token", nil); r.status != http.StatusOK {
		t.Errorf("get_token without the trailing slash: %s", r)
	}
	// subscribe: one channel (centrifuge-js getToken shape), then a list.
	r := c.do("POST", "/instant/subscribe/", map[string]any{"channel": "$users"})
	var one struct{ Token string }
	if r.status != http.StatusOK || json.Unmarshal(r.body, &one) != nil || one.Token == "" {
		t.Fatalf("subscribe $users: %s", r)
	}
	if cl := h.claims(t, one.Token); cl["sub"] != "42" || cl["channel"] != "$users" {
		t.Errorf("subscription token claims %v, want sub 42 channel $users", cl)
	}
	if r := c.do("POST", "/instant/subscribe/", map[string]any{"channels": []string{"$users", "$staff"}}); r.status != http.StatusForbidden || r.errorCode() != "forbidden_channel" {
		t.Errorf("subscribe [$users $staff] = %s, want 403 forbidden_channel", r)
	}
	subTok := one.Token
	// refresh: a fresh connection token for the same user.
	var refreshed struct{ Token string }
	r = c.do("POST", "/instant/refresh/", map[string]any{})
	if r.status != http.StatusOK || json.Unmarshal(r.body, &refreshed) != nil || h.claims(t, refreshed.Token)["sub"] != "42" {
		t.Fatalf("refresh = %s", r)
	}
	// Both work on Centrifugo: connect with the refreshed token, subscribe
	// with subscribe's token, receive.
	s2 := testenv.Connect(t, h.cf.WebsocketURL(), refreshed.Token)
	s2.MustSubscribe("$users", subTok)
	h.publish(t, h.bridge("object"), `{"channel":"$users","data":{"n":2}}`)
	if p := s2.Next(5 * time.Second); p.Channel != "$users" || !strings.Contains(string(p.Data), `"data":{"n":2}`) {
		t.Errorf("received %s %s, want the bridge's message with data {\"n\":2}", p.Channel, p.Data)
	}
	// channels: the list without tokens.
	r = c.do("GET", "/instant/channels/", nil)
	var list struct{ Channels []tokensvc.ChannelToken }
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil || len(list.Channels) != 3 || list.Channels[0].Token != "" {
		t.Errorf("channels = %s", r)
	}
	// logout with the CSRF token ends the session.
	if r := c.do("POST", "/instant/logout/", map[string]any{}, "X-CSRFToken", tr.CSRFToken); r.status != http.StatusOK || string(r.body) != "{\"response\":\"ok\"}\n" {
		t.Fatalf("logout = %s", r)
	}
	if r := c.do("POST", "/instant/get_token/", map[string]any{}); r.status != http.StatusForbidden {
		t.Errorf("get_token after logout = %s, want 403 (not logged in)", r)
	}
}

// TestDjangoInstantClientSequence plays django-instant's bundled client
// (COMPAT.md): log in, then get_token with the session cookie, body {} and
// no X-CSRFToken from a CORS page, then subscribe to every listed channel
// with its own token and receive a django-mode publication (a JSON string).
func TestDjangoInstantClientSequence(t *testing.T) {
	const origin = "http://app.example"
	h := start(t, withCentrifugo(t), func(c *tokensvc.Config) { c.AllowedOrigins = []string{origin} })
	c := h.client()
	// The client's login discards the answer.
	if r := c.do("POST", "/instant/login/", map[string]string{"username": "bob", "password": bobPW}, "Origin", origin); r.status != http.StatusOK {
		t.Fatalf("login = %s", r)
	}
	r := c.do("POST", "/instant/get_token/", map[string]any{}, "Origin", origin)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != origin || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("CORS headers: allow-origin %q, allow-credentials %q", got, r.header.Get("Access-Control-Allow-Credentials"))
	}
	tr := c.tokens(r)
	for _, ch := range tr.Channels {
		if ch.Level == "" {
			t.Errorf("channel %s has no level", ch.Name)
		}
	}
	h.checkOnCentrifugo(t, tr, "bob", []string{"$staff", "$users", "public"}, []string{"$group1", "$super"})

	// A django-mode message forwarded by a real bridge in django mode.
	s := testenv.Connect(t, h.cf.WebsocketURL(), tr.WSToken)
	for _, ch := range tr.Channels {
		s.MustSubscribe(ch.Name, ch.Token)
	}
	h.publish(t, h.bridge("django"), `{"channel":"$staff","message":"hello","data":{"k":1},"event_class":"info"}`)
	p := s.Next(5 * time.Second)
	var str string
	if err := json.Unmarshal(p.Data, &str); err != nil {
		t.Fatalf("publication data %s is not a JSON string (django mode): %v", p.Data, err)
	}
	var msg map[string]any
	if err := json.Unmarshal([]byte(str), &msg); err != nil {
		t.Fatalf("the client's JSON.parse of %q fails: %v", str, err)
	}
	if msg["channel"] != "$staff" || msg["message"] != "hello" || msg["site"] != "testsite" || msg["event_class"] != "info" {
		t.Errorf("message %v", msg)
	}
}

// TestUpstreamJWTSource: application JWTs verified with an HMAC key, an RSA
// public key file, and a JWKS URL (RSA and ECDSA keys).
func TestUpstreamJWTSource(t *testing.T) {
	cf := withCentrifugo(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hmacKey := testenv.Secret(t) + testenv.Secret(t)
	pubPEM := writePublicPEM(t, &rsaKey.PublicKey)
	jwks := serveJWKS(t, map[string]any{"rsa1": &rsaKey.PublicKey, "ec1": &ecKey.PublicKey})

	claims := upstreamClaims("u-7", jwt.MapClaims{"preferred_username": "gina", "groups": []string{"group2"}, "iss": "https://auth.example", "aud": "instant"})
	for _, tc := range []struct {
		name string
		opt  option
		tok  string
	}{
		{"hmac", func(c *tokensvc.Config) { c.JWTHMACKey = hmacKey }, signUpstream(t, jwt.SigningMethodHS256, []byte(hmacKey), claims, "")},
		{"public key file", func(c *tokensvc.Config) { c.JWTPublicKeyFile = pubPEM }, signUpstream(t, jwt.SigningMethodRS256, rsaKey, claims, "")},
		{"jwks rsa", func(c *tokensvc.Config) { c.JWTJWKSURL = jwks }, signUpstream(t, jwt.SigningMethodRS256, rsaKey, claims, "rsa1")},
		{"jwks ecdsa", func(c *tokensvc.Config) { c.JWTJWKSURL = jwks }, signUpstream(t, jwt.SigningMethodES256, ecKey, claims, "ec1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, cf, tc.opt, func(c *tokensvc.Config) {
				c.JWTIssuer, c.JWTAudience = "https://auth.example", "instant"
			})
			c := h.client()
			tr := c.tokens(c.do("GET", "/instant/get_token/", nil, "Authorization", "Bearer "+tc.tok))
			if tr.CSRFToken != "" {
				t.Errorf("csrf_token %q for a JWT caller, want none (no session)", tr.CSRFToken)
			}
			if info, _ := h.claims(t, tr.WSToken)["info"].(map[string]any); info["username"] != "gina" {
				t.Errorf("info %v, want username gina", info)
			}
			h.checkOnCentrifugo(t, tr, "u-7", []string{"$group2", "$users", "public"}, []string{"$group1", "$staff"})
		})
	}
}

// TestProxySource: an auth proxy at a trusted address names the user and
// groups in headers.
func TestProxySource(t *testing.T) {
	h := start(t, withCentrifugo(t), func(c *tokensvc.Config) { c.ProxyAuth, c.ProxyAuthProxies = true, []string{"127.0.0.0/8"} })
	c := h.client()
	tr := c.tokens(c.do("POST", "/instant/get_token/", map[string]any{}, "X-Forwarded-User", "carol", "X-Forwarded-Groups", "group2, other"))
	h.checkOnCentrifugo(t, tr, "carol", []string{"$group2", "$users", "public"}, []string{"$group1", "$staff"})
}

// TestAnonymousSource: with INSTANT_ANONYMOUS a caller without credentials
// gets an anonymous connection (empty sub) and the public channels only.
func TestAnonymousSource(t *testing.T) {
	h := start(t, withCentrifugo(t), func(c *tokensvc.Config) { c.Anonymous = true })
	c := h.client()
	tr := c.tokens(c.do("POST", "/instant/get_token/", map[string]any{}))
	h.checkOnCentrifugo(t, tr, "", []string{"public"}, []string{"$users", "$group1"})
	if r := c.do("POST", "/instant/subscribe/", map[string]any{"channel": "$users"}); r.status != http.StatusForbidden {
		t.Errorf("anonymous subscribe $users = %s, want 403", r)
	}
}

func writePublicPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "upstream.pub.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveJWKS serves a JWK set with the keys and returns its URL.
func serveJWKS(t *testing.T, keys map[string]any) string {
	t.Helper()
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			raw, err := k.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			n := (len(raw) - 1) / 2
			set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1 : 1+n]), "y": b64(raw[1+n:])})
		}
	}
	body, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
