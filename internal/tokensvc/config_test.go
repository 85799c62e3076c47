package tokensvc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestHelpListsEveryVariable: tokensvc --help names every variable of
// Config with its default.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := tokensvc.Main(context.Background(), []string{"--help"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(tokensvc.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		if !strings.HasPrefix(name, "INSTANT_") || f.Tag.Get("desc") == "" {
			t.Errorf("field %s: envconfig %q, want an INSTANT_ name and a desc", f.Name, name)
			continue
		}
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, name+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("--help does not list %s", name)
		} else if def := f.Tag.Get("default"); def != "" && !strings.Contains(line, " "+def+" ") {
			t.Errorf("--help line of %s lacks its default %q: %s", name, def, line)
		}
	}
}

func TestHashPassword(t *testing.T) {
	for _, in := range []string{"pass word\n", "pass word", "pass word\r\n"} {
		var out bytes.Buffer
		rest := map[bool]string{true: "second line\n"}[strings.HasSuffix(in, "\n")]
		if err := tokensvc.Main(context.Background(), []string{"hash-password", "-cost", "4"}, strings.NewReader(in+rest), &out, &out); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		h := strings.TrimSpace(out.String())
		if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("pass word")); err != nil {
			t.Errorf("hash of %q does not match %q (the newline is not part of the password)", in, "pass word")
		}
	}
	// The default cost.
	var out bytes.Buffer
	if err := tokensvc.Main(context.Background(), []string{"hash-password"}, strings.NewReader("pw\n"), &out, &out); err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(bytes.TrimSpace(out.Bytes())); err != nil || cost != 12 {
		t.Errorf("default cost %d (%v), want 12", cost, err)
	}
	for _, args := range [][]string{{"hash-password"}, {"hash-password", "-cost", "3"}, {"hash-password", "-nope"}} {
		in := "\n"
		if len(args) > 1 {
			in = "pw\n"
		}
		if err := tokensvc.Main(context.Background(), args, strings.NewReader(in), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v with %q: want an error", args, in)
		}
	}
}

func TestValidate(t *testing.T) {
	channels := filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(channels, []byte(channelsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() tokensvc.Config {
		c := tokensvc.DefaultConfig()
		c.ChannelsFile = channels
		c.CentrifugoHMACKey = testenv.Secret(t)
		c.Anonymous = true
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name, wantVar string
		mod           func(*tokensvc.Config)
	}{
		{"no channels file", "INSTANT_CHANNELS_FILE", func(c *tokensvc.Config) { c.ChannelsFile = "" }},
		{"missing channels file", "INSTANT_CHANNELS_FILE", func(c *tokensvc.Config) { c.ChannelsFile = "/nonexistent/channels.yaml" }},
		{"no signing key", "INSTANT_CENTRIFUGO_HMAC_KEY", func(c *tokensvc.Config) { c.CentrifugoHMACKey = "" }},
		{"two signing keys", "INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE", func(c *tokensvc.Config) { c.CentrifugoPrivateKeyFile = "k.pem" }},
		{"no identity source", "INSTANT_USERS_FILE", func(c *tokensvc.Config) { c.Anonymous = false }},
		{"short session key", "INSTANT_SESSION_KEY", func(c *tokensvc.Config) { c.SessionKey = "short-secret-value" }},
		{"zero token ttl", "INSTANT_TOKEN_TTL", func(c *tokensvc.Config) { c.TokenTTL = 0 }},
		{"zero subscription ttl", "INSTANT_SUBSCRIPTION_TOKEN_TTL", func(c *tokensvc.Config) { c.SubscriptionTokenTTL = 0 }},
		{"bad samesite", "INSTANT_SESSION_COOKIE_SAMESITE", func(c *tokensvc.Config) { c.SessionCookieSame = "sometimes" }},
		{"samesite none without secure", "INSTANT_SESSION_COOKIE_SAMESITE", func(c *tokensvc.Config) { c.SessionCookieSame = "none"; c.SessionCookieSecure = false }},
		{"bad origin", "INSTANT_ALLOWED_ORIGINS", func(c *tokensvc.Config) { c.AllowedOrigins = []string{"app.example.com/path"} }},
		{"bad proxy", "INSTANT_TRUSTED_PROXIES", func(c *tokensvc.Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }},
		{"two jwt keys", "INSTANT_JWT_HMAC_KEY", func(c *tokensvc.Config) { c.JWTHMACKey = strings.Repeat("k", 32); c.JWTJWKSURL = "https://x/jwks" }},
		{"short jwt key", "INSTANT_JWT_HMAC_KEY", func(c *tokensvc.Config) { c.JWTHMACKey = "s3cr3tX" }},
		{"unknown algorithm", "INSTANT_JWT_ALGORITHMS", func(c *tokensvc.Config) { c.JWTHMACKey = strings.Repeat("k", 32); c.JWTAlgorithms = []string{"none"} }},
		{"RSA algorithm with HMAC key", "INSTANT_JWT_ALGORITHMS", func(c *tokensvc.Config) { c.JWTHMACKey = strings.Repeat("k", 32); c.JWTAlgorithms = []string{"RS256"} }},
		{"HMAC algorithm with JWKS", "INSTANT_JWT_ALGORITHMS", func(c *tokensvc.Config) { c.JWTJWKSURL = "https://x/jwks"; c.JWTAlgorithms = []string{"HS256"} }},
		{"algorithms without key", "INSTANT_JWT_ALGORITHMS", func(c *tokensvc.Config) { c.JWTAlgorithms = []string{"RS256"} }},
		{"jwks not a URL", "INSTANT_JWT_JWKS_URL", func(c *tokensvc.Config) { c.JWTJWKSURL = "file:///etc/jwks" }},
		{"tiny body cap", "INSTANT_MAX_BODY_BYTES", func(c *tokensvc.Config) { c.MaxBodyBytes = 10 }},
		{"zero rate", "INSTANT_LOGIN_RATE_PER_USER", func(c *tokensvc.Config) { c.LoginRatePerUser = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			var ce *tokensvc.ConfigError
			if !errors.As(err, &ce) || ce.Var != tc.wantVar {
				t.Fatalf("got %v, want a ConfigError naming %s", err, tc.wantVar)
			}
			for _, secret := range []string{c.CentrifugoHMACKey, c.SessionKey, c.JWTHMACKey} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes a secret", err)
				}
			}
		})
	}
}

// TestMainServes runs the program as main does, configured by the
// environment, and stops it with its context.
func TestMainServes(t *testing.T) {
	dir := t.TempDir()
	channels := filepath.Join(dir, "channels.yaml")
	if err := os.WriteFile(channels, []byte(channelsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("INSTANT_TOKENSVC_HTTP_ADDR", "127.0.0.1:"+strconv.Itoa(port))
	t.Setenv("INSTANT_CHANNELS_FILE", channels)
	t.Setenv("INSTANT_CENTRIFUGO_HMAC_KEY", testenv.Secret(t))
	t.Setenv("INSTANT_ANONYMOUS", "true")
	t.Setenv("INSTANT_LOG_LEVEL", "error")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tokensvc.Main(ctx, nil, nil, &bytes.Buffer{}, &bytes.Buffer{}) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(base + p)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %d", p, resp.StatusCode)
			}
		}
		return nil
	})
	resp, err := http.Post(base+"/instant/get_token/", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get_token: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	_, _ = m.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(m.String(), `instant_tokensvc_tokens_issued_total{kind="connection"} 1`) {
		t.Errorf("metrics lack the issued connection token:\n%s", m.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Main after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Main did not return after its context was cancelled")
	}
}

// TestSecretsNotLogged runs logins, refusals and token requests and checks
// that no log entry contains a secret, a password or an issued token.
func TestSecretsNotLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	jwtKey := testenv.Secret(t) + testenv.Secret(t)
	h := startLogged(t, nil, zap.New(core), func(c *tokensvc.Config) { c.JWTHMACKey = jwtKey; c.SessionKey = "" })
	c := h.client()
	tr := c.login("alice", alicePW)
	c.do("POST", "/instant/login/", map[string]string{"username": "bob", "password": "wrong " + bobPW})
	c.do("POST", "/instant/logout/", nil, "X-CSRFToken", "bad")
	c.do("POST", "/instant/subscribe/", map[string]any{"channel": "$staff"})
	bad := signUpstream(t, jwt.SigningMethodHS256, []byte("wrong key wrong key wrong key 123"), upstreamClaims("x", nil), "")
	h.client().do("GET", "/instant/get_token/", nil, "Authorization", "Bearer "+bad)
	h.client().do("GET", "/instant/get_token/", nil, "Cookie", h.cfg.SessionCookieName+"=forged.value")
	secrets := []string{h.hmac, jwtKey, alicePW, bobPW, tr.WSToken, tr.CSRFToken, bad}
	for _, ch := range tr.Channels {
		secrets = append(secrets, ch.Token)
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the check would be empty")
	}
	sawWarning := false
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += fmt.Sprintf(" %s=%v", k, v)
		}
		sawWarning = sawWarning || strings.Contains(text, "INSTANT_SESSION_KEY is not set")
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("log entry %q contains a secret", text)
			}
		}
	}
	if !sawWarning {
		t.Error("no warning about the random session key")
	}
}

// TestDocsListEveryVariable: README.md's token service configuration table has
// every variable with its default.
func TestDocsListEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(tokensvc.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		def := ""
		if d := f.Tag.Get("default"); d != "" {
			def = "`" + d + "`"
		}
		row := fmt.Sprintf("| `%s` | %s |", f.Tag.Get("envconfig"), def)
		if !strings.Contains(string(doc), row) {
			t.Errorf("README.md lacks the row %s", row)
		}
	}
}

// TestHardening10CentrifugoHMACKeyMinLength (issue 12, point 10): the key
// signing the Centrifugo tokens has at least 32 bytes, and the error says
// which variable and how to make a good key, without quoting the key.
func TestHardening10CentrifugoHMACKeyMinLength(t *testing.T) {
	for _, tc := range []struct {
		key     string
		wantErr bool
	}{
		{"Q", true},
		{"secret-centrifugo-key", true},
		{strings.Repeat("k", 31), true},
		{strings.Repeat("k", 32), false},
		{testenv.Secret(t) + testenv.Secret(t), false},
	} {
		c := tokensvc.DefaultConfig()
		c.ChannelsFile, c.CentrifugoHMACKey, c.Anonymous = writeChannels(t), tc.key, true
		err := c.Validate()
		if !tc.wantErr {
			if err != nil {
				t.Errorf("%d-byte key: %v, want valid", len(tc.key), err)
			}
			continue
		}
		var ce *tokensvc.ConfigError
		if !errors.As(err, &ce) || ce.Var != "INSTANT_CENTRIFUGO_HMAC_KEY" {
			t.Errorf("%d-byte key: got %v, want a ConfigError naming INSTANT_CENTRIFUGO_HMAC_KEY", len(tc.key), err)
			continue
		}
		if !strings.Contains(ce.Msg, "openssl rand -hex 32") || strings.Contains(ce.Msg, tc.key) || strings.Contains(ce.Msg, "kkkk") {
			t.Errorf("%d-byte key: message %q should say how to make a key and never quote it", len(tc.key), ce.Msg)
		}
	}
}
