package tokensvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// channelsYAML is the channels file of most tests.
const channelsYAML = `channels:
  - name: public
    level: public
  - name: $users
    level: users
  - name: $group1
    level: groups
    groups: [group1]
  - name: $group2
    level: groups
    groups: [group2]
  - name: $staff
    level: staff
  - name: $super
    level: superuser
  - name: $inactive
    level: users
    active: false
`

// The users of the users file, by password.
const (
	alicePW = "alice password"
	bobPW   = "bob password"
)

func bcryptHash(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(h)
}

func usersYAML(tb testing.TB) string {
	return fmt.Sprintf(`users:
  - username: alice
    id: "42"
    password_hash: %q
    groups: [group1]
  - username: bob
    password_hash: %q
    staff: true
`, bcryptHash(tb, alicePW), bcryptHash(tb, bobPW))
}

// writeChannels writes the test channels file and returns its path.
func writeChannels(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "channels.yaml")
	if err := os.WriteFile(p, []byte(channelsYAML), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// harness is a running token service, on a free port, with the real
// Centrifugo when asked for.
type harness struct {
	t    *testing.T
	cf   *testenv.Centrifugo
	svc  *tokensvc.Service
	cfg  tokensvc.Config
	base string
	// hmac is the key Centrifugo and the service share.
	hmac string
	// bridges are the NATS connections of the bridges started, by payload mode.
	bridges map[string]*nats.Conn
}

type option func(*tokensvc.Config)

func withCentrifugo(t *testing.T) *testenv.Centrifugo { return testenv.StartCentrifugo(t) }

// start runs the service with the test channels and users files. cf may be
// nil for tests that do not need Centrifugo.
func start(t *testing.T, cf *testenv.Centrifugo, opts ...option) *harness {
	t.Helper()
	return startLogged(t, cf, zaptest.NewLogger(t), opts...)
}

// startLogged is start with a given logger.
func startLogged(t *testing.T, cf *testenv.Centrifugo, log *zap.Logger, opts ...option) *harness {
	t.Helper()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := &harness{t: t, cf: cf, hmac: testenv.Secret(t)}
	if cf != nil {
		h.hmac = cf.HMACSecret
	}
	cfg := tokensvc.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.ChannelsFile = write("channels.yaml", channelsYAML)
	cfg.UsersFile = write("users.yaml", usersYAML(t))
	cfg.CentrifugoHMACKey = h.hmac
	cfg.SessionKey = testenv.Secret(t) + testenv.Secret(t)
	cfg.SessionCookieSecure = false
	cfg.SiteName = "testsite"
	for _, o := range opts {
		o(&cfg)
	}
	h.cfg = cfg
	svc, err := tokensvc.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start token service: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	h.svc = svc
	h.base = "http://" + svc.Addr()
	return h
}

// client is an HTTP client with a cookie jar, like a browser.
type client struct {
	t    *testing.T
	h    *harness
	http *http.Client
}

func (h *harness) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &client{t: h.t, h: h, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errorCode is the code of a JSON error answer.
func (r response) errorCode() string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// do sends a request; body is JSON-encoded unless it is a string. Headers
// are pairs.
func (c *client) do(method, path string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.h.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// tokens decodes a 200 login/get_token answer.
func (c *client) tokens(r response) tokensvc.TokenResponse {
	c.t.Helper()
	if r.status != http.StatusOK {
		c.t.Fatalf("got %s, want 200", r)
	}
	var tr tokensvc.TokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		c.t.Fatalf("decode %s: %v", r.body, err)
	}
	return tr
}

func (c *client) login(user, pw string) tokensvc.TokenResponse {
	c.t.Helper()
	return c.tokens(c.do("POST", "/instant/login/", map[string]string{"username": user, "password": pw}))
}

func names(chs []tokensvc.ChannelToken) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = c.Name
	}
	return out
}

// claims verifies a token the service issued with the Centrifugo key.
func (h *harness) claims(tb testing.TB, tok string) jwt.MapClaims {
	tb.Helper()
	c := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).
		ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return []byte(h.hmac), nil })
	if err != nil {
		tb.Fatalf("issued token does not verify with the Centrifugo key: %v", err)
	}
	return c
}

// checkOnCentrifugo connects to the real Centrifugo with the answer's
// tokens, subscribes to every channel given with its token, receives a
// publication on each, and checks that Centrifugo refuses the denied
// channels, with no token and with another channel's token.
func (h *harness) checkOnCentrifugo(t *testing.T, tr tokensvc.TokenResponse, wantSub string, want, denied []string) {
	t.Helper()
	if got := names(tr.Channels); !slices.Equal(got, want) {
		t.Fatalf("channels = %v, want %v", got, want)
	}
	if sub, _ := h.claims(t, tr.WSToken)["sub"].(string); sub != wantSub {
		t.Errorf("connection token sub = %v, want %q", sub, wantSub)
	}
	s := testenv.Connect(t, h.cf.WebsocketURL(), tr.WSToken)
	for _, c := range tr.Channels {
		s.MustSubscribe(c.Name, c.Token)
	}
	nc := h.bridge("object")
	for _, c := range tr.Channels {
		h.publish(t, nc, fmt.Sprintf(`{"channel":%q,"data":{"to":%q}}`, c.Name, c.Name))
		p := s.Next(5 * time.Second)
		var got struct {
			Channel string
			Data    struct{ To string }
		}
		if err := json.Unmarshal(p.Data, &got); err != nil || p.Channel != c.Name || got.Channel != c.Name || got.Data.To != c.Name {
			t.Errorf("received %s %s, want the bridge's message to %s", p.Channel, p.Data, c.Name)
		}
	}
	for _, d := range denied {
		// Centrifugo answers 103 permission denied.
		if err := s.Subscribe(d, ""); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("subscribe to %s without a token: got %v, want Centrifugo's permission denied", d, err)
		}
	}
	if len(denied) > 0 && len(tr.Channels) > 0 {
		// Another channel's token: Centrifugo refuses it by disconnecting
		// the client, so this runs last, on its own connection.
		s2 := testenv.Connect(t, h.cf.WebsocketURL(), tr.WSToken)
		err := s2.Subscribe(denied[0], tr.Channels[0].Token)
		if err == nil || strings.Contains(err.Error(), "no answer") {
			t.Errorf("subscribe to %s with the token of %s: got %v, want a refusal", denied[0], tr.Channels[0].Name, err)
		}
	}
}

// signUpstream signs an upstream (application) JWT.
func signUpstream(tb testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func upstreamClaims(sub string, extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// bridge starts, once per payload mode, an embedded NATS and a real bridge
// in that mode, forwarding to the harness's Centrifugo with the same
// channels file, and returns a NATS connection to publish envelopes on.
func (h *harness) bridge(mode string) *nats.Conn {
	h.t.Helper()
	if nc, ok := h.bridges[mode]; ok {
		return nc
	}
	n := testenv.StartNATS(h.t)
	cfg := bridge.DefaultConfig()
	cfg.NATSURL, cfg.CentrifugoAPIURL, cfg.CentrifugoAPIKey = n.URL(), h.cf.APIURL(), h.cf.APIKey
	cfg.ChannelsFile, cfg.SiteName, cfg.PayloadMode, cfg.HTTPAddr = h.cfg.ChannelsFile, h.cfg.SiteName, mode, ""
	b, err := bridge.New(cfg, zaptest.NewLogger(h.t))
	if err != nil {
		h.t.Fatalf("bridge: %v", err)
	}
	if err := b.Start(); err != nil {
		h.t.Fatalf("bridge: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	nc := n.Connect(h.t)
	if h.bridges == nil {
		h.bridges = map[string]*nats.Conn{}
	}
	h.bridges[mode] = nc
	return nc
}

// publish sends an envelope through the bridge and requires an ok receipt.
func (h *harness) publish(t *testing.T, nc *nats.Conn, envelope string) {
	t.Helper()
	msg, err := nc.Request("instant.publish", []byte(envelope), 10*time.Second)
	if err != nil {
		t.Fatalf("publish %s: %v", envelope, err)
	}
	var r struct{ OK bool }
	if err := json.Unmarshal(msg.Data, &r); err != nil || !r.OK {
		t.Fatalf("publish %s: receipt %s", envelope, msg.Data)
	}
}
