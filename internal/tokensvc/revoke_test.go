package tokensvc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// revokeWithin is how soon after a file changes its revocations must have
// reached the clients.
const revokeWithin = time.Second

// startRevoking runs the service with live revocation against a real
// Centrifugo (with mods applied to it), logging to an observer too.
func startRevoking(t *testing.T, opts []option, mods ...func(*stack.CentrifugoOptions)) (*harness, *observer.ObservedLogs) {
	t.Helper()
	cf := testenv.StartCentrifugo(t, mods...)
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	opts = append([]option{func(c *tokensvc.Config) { c.CentrifugoAPIURL, c.CentrifugoAPIKey = cf.APIURL(), cf.APIKey }}, opts...)
	return startLogged(t, cf, log, opts...), logs
}

// connectWith connects a websocket client with the tokens of an answer and
// subscribes to the channels named (each with its token).
func (h *harness) connectWith(t *testing.T, tr tokensvc.TokenResponse, channels ...string) *testenv.Subscriber {
	t.Helper()
	s := testenv.Connect(t, h.cf.WebsocketURL(), tr.WSToken)
	for _, name := range channels {
		s.MustSubscribe(name, channelToken(t, tr, name))
	}
	return s
}

// rewrite replaces old with new in the file at path (old must be there).
func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitUnsubscribed waits until the server unsubscribed s from channel.
func waitUnsubscribed(t *testing.T, s *testenv.Subscriber, channel string) {
	t.Helper()
	testenv.Eventually(t, revokeWithin, func() error {
		if _, ok := s.Unsubscribed(channel); !ok {
			return fmt.Errorf("still subscribed to %s", channel)
		}
		return nil
	})
}

// TestRevokeDemotedChannel: $users goes from level users to staff. Alice
// (users file, not staff) is unsubscribed within a second and receives
// nothing after; Bob (staff) keeps the channel throughout and receives.
func TestRevokeDemotedChannel(t *testing.T) {
	h, logs := startRevoking(t, nil)
	alice := h.connectWith(t, h.client().login("alice", alicePW), "$users")
	bob := h.connectWith(t, h.client().login("bob", bobPW), "$users")
	nc := h.bridge("object")
	h.publish(t, nc, `{"channel":"$users","message":"before","id":"m-1"}`)
	for _, s := range []*testenv.Subscriber{alice, bob} {
		if p := s.Next(5 * time.Second); !strings.Contains(string(p.Data), `"m-1"`) {
			t.Fatalf("before: got %s", p.Data)
		}
	}

	rewrite(t, h.cfg.ChannelsFile, "  - name: $users\n    level: users\n", "  - name: $users\n    level: staff\n")
	waitUnsubscribed(t, alice, "$users")
	h.publish(t, nc, `{"channel":"$users","message":"after","id":"m-2"}`)
	if p := bob.Next(5 * time.Second); !strings.Contains(string(p.Data), `"m-2"`) {
		t.Errorf("bob after the change: got %s, want m-2", p.Data)
	}
	if p, ok := alice.TryNext(300 * time.Millisecond); ok {
		t.Errorf("alice received %s after her access was revoked", p.Data)
	}
	if e, ok := bob.Unsubscribed("$users"); ok {
		t.Errorf("bob (staff) was unsubscribed: %+v", e)
	}
	entries := logs.FilterMessage("access revoked after reload").All()
	if len(entries) == 0 {
		t.Fatal("no log line with the numbers of the revocation")
	}
	if f := entries[len(entries)-1].ContextMap(); f["unsubscribed"] != int64(1) || f["presence_unavailable"] != int64(1) {
		t.Errorf("logged %v, want 1 unsubscribed, and presence unavailable for the changed channel", f)
	}
	if m := h.client().do("GET", "/metrics", nil); !strings.Contains(string(m.body), `instant_tokensvc_revocations_total{kind="unsubscribe"} 1`) {
		t.Errorf("metrics lack one unsubscribe revocation")
	}
}

// TestRevokeRemovedUser: Alice is removed from the users file. Her
// connection ends within a second with a code that tells clients not to
// reconnect, and her session no longer refreshes; Bob keeps his.
func TestRevokeRemovedUser(t *testing.T) {
	h, _ := startRevoking(t, nil)
	aliceHTTP := h.client()
	alice := h.connectWith(t, aliceHTTP.login("alice", alicePW), "$users")
	bob := h.connectWith(t, h.client().login("bob", bobPW), "$users", "$staff")

	b, err := os.ReadFile(h.cfg.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	_, bobEntry, _ := strings.Cut(string(b), "  - username: bob\n")
	if err := os.WriteFile(h.cfg.UsersFile, []byte("users:\n  - username: bob\n"+bobEntry), 0o600); err != nil {
		t.Fatal(err)
	}
	var code uint32
	testenv.Eventually(t, revokeWithin, func() error {
		e, ok := alice.Disconnected()
		if !ok {
			return fmt.Errorf("alice still connected")
		}
		code = e.Code
		return nil
	})
	// centrifuge-go and centrifuge-js reconnect unless the code is in
	// 3500-3999 or 4500-4999.
	if !(code >= 3500 && code < 4000 || code >= 4500 && code < 5000) {
		t.Errorf("disconnect code %d tells clients to reconnect", code)
	}
	if r := aliceHTTP.do("POST", "/instant/refresh/", nil); r.status != http.StatusUnauthorized {
		t.Errorf("refresh with the removed user's session: %s, want 401", r)
	}
	h.publish(t, h.bridge("object"), `{"channel":"$staff","message":"still here","id":"m-3"}`)
	if p := bob.Next(5 * time.Second); !strings.Contains(string(p.Data), `"m-3"`) {
		t.Errorf("bob: got %s", p.Data)
	}
	if e, ok := bob.Disconnected(); ok {
		t.Errorf("bob was disconnected: %+v", e)
	}
}

// TestRevokeUpstreamUsersWithPresence: users who exist only in upstream
// JWTs, and anonymous users, are found with presence (enabled here) and
// lose the channels a new file closes to them: $group2 given to other
// groups, public made users-only; a staff JWT user keeps $users made staff.
func TestRevokeUpstreamUsersWithPresence(t *testing.T) {
	jwtKey := strings.Repeat("j", 40)
	h, _ := startRevoking(t, []option{func(c *tokensvc.Config) { c.JWTHMACKey, c.Anonymous = jwtKey, true }},
		func(o *stack.CentrifugoOptions) {
			o.Env = append(o.Env, "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_PRESENCE=true")
		})
	bearer := func(sub string, claims jwt.MapClaims) tokensvc.TokenResponse {
		tok := signUpstream(t, jwt.SigningMethodHS256, []byte(jwtKey), upstreamClaims(sub, claims), "")
		c := h.client()
		return c.tokens(c.do("POST", "/instant/get_token/", nil, "Authorization", "Bearer "+tok))
	}
	gina := h.connectWith(t, bearer("u-7", jwt.MapClaims{"groups": []string{"group2"}}), "$group2", "$users")
	boss := h.connectWith(t, bearer("u-8", jwt.MapClaims{"staff": true}), "$users")
	anonHTTP := h.client()
	anon := h.connectWith(t, anonHTTP.tokens(anonHTTP.do("POST", "/instant/get_token/", nil)), "public")

	b, err := os.ReadFile(h.cfg.ChannelsFile)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "groups: [group2]", "groups: [group3]", 1)
	s = strings.Replace(s, "  - name: $users\n    level: users\n", "  - name: $users\n    level: staff\n", 1)
	s = strings.Replace(s, "  - name: public\n    level: public\n", "  - name: public\n    level: users\n", 1)
	if err := os.WriteFile(h.cfg.ChannelsFile, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUnsubscribed(t, gina, "$group2")
	waitUnsubscribed(t, gina, "$users")
	waitUnsubscribed(t, anon, "public")
	if e, ok := boss.Unsubscribed("$users"); ok {
		t.Errorf("the staff JWT user lost $users: %+v", e)
	}
}

// TestRevokedTokenWindowEndsAtExpiry: Centrifugo cannot revoke a token, so
// a client that kept its subscription token can subscribe again after live
// revocation took the channel away, but only until the token expires; after
// that the old token is refused, and so is a new one.
func TestRevokedTokenWindowEndsAtExpiry(t *testing.T) {
	const subTTL = 4 * time.Second
	h, _ := startRevoking(t, []option{func(c *tokensvc.Config) { c.SubscriptionTokenTTL = subTTL }})
	aliceHTTP := h.client()
	tr := aliceHTTP.login("alice", alicePW)
	alice := h.connectWith(t, tr, "$group1")
	old := channelToken(t, tr, "$group1")
	exp := tokenExpiry(t, old)

	rewrite(t, h.cfg.UsersFile, "groups: [group1]", "groups: []") // alice demoted
	waitUnsubscribed(t, alice, "$group1")
	if left := time.Until(exp); left > time.Second {
		// The window the README states: her old tokens still admit her.
		again := testenv.Connect(t, h.cf.WebsocketURL(), tr.WSToken)
		if err := again.Subscribe("$group1", old); err != nil {
			t.Errorf("with %v of the old token left: %v, want admitted (the README's window)", left.Round(time.Millisecond), err)
		}
	} else {
		t.Logf("only %v of the old token left: the window before expiry is not checked", left)
	}

	// Centrifugo compares whole seconds: exp has passed once the clock is a
	// second beyond it.
	testenv.Eventually(t, subTTL+5*time.Second, func() error {
		if time.Now().Before(exp.Add(time.Second)) {
			return fmt.Errorf("the old token is valid until %v", exp)
		}
		return nil
	})
	late := testenv.Connect(t, h.cf.WebsocketURL(), tr.WSToken)
	if err := late.Subscribe("$group1", old); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("subscribe with the expired token: %v, want refused as expired", err)
	}
	if r := aliceHTTP.do("POST", "/instant/subscribe/", map[string]string{"channel": "$group1"}); r.status != http.StatusForbidden || r.errorCode() != "forbidden_channel" {
		t.Errorf("new subscription token for the demoted user: %s, want 403 forbidden_channel", r)
	}
}

// channelToken is the subscription token for name in an answer.
func channelToken(t *testing.T, tr tokensvc.TokenResponse, name string) string {
	t.Helper()
	for _, c := range tr.Channels {
		if c.Name == name {
			return c.Token
		}
	}
	t.Fatalf("no token for %s in %v", name, names(tr.Channels))
	return ""
}

// tokenExpiry is a token's exp (read without checking the signature).
func tokenExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil || claims.ExpiresAt == nil {
		t.Fatalf("token without exp: %v", err)
	}
	return claims.ExpiresAt.Time
}

// TestRevokeThroughSecondNode: with INSTANT_CENTRIFUGO_API_URL listing a
// node that is down before the one that answers, revocation still reaches
// the client within a second.
func TestRevokeThroughSecondNode(t *testing.T) {
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("http://127.0.0.1:%d/api", port) // nothing listens there
	h, logs := startRevoking(t, []option{func(c *tokensvc.Config) { c.CentrifugoAPIURL = down + "," + c.CentrifugoAPIURL }})
	alice := h.connectWith(t, h.client().login("alice", alicePW), "$users")
	rewrite(t, h.cfg.ChannelsFile, "  - name: $users\n    level: users\n", "  - name: $users\n    level: staff\n")
	waitUnsubscribed(t, alice, "$users")
	testenv.Eventually(t, revokeWithin, func() error {
		entries := logs.FilterMessage("access revoked after reload").All()
		if len(entries) == 0 {
			return errors.New("no revocation logged")
		}
		if f := entries[len(entries)-1].ContextMap(); f["errors"] != int64(0) || f["unsubscribed"] != int64(1) {
			return fmt.Errorf("logged %v, want 1 unsubscribed and no error", f)
		}
		return nil
	})
}

// TestRevokeRetriedAfterCentrifugoOutage: the Centrifugo node the token
// service calls is stopped when the channels file changes, so the
// revocation fails; when the node is started again, the revocation is
// retried and reaches the client, who is on another node of the same Redis
// (its connection lives through the outage).
func TestRevokeRetriedAfterCentrifugoOutage(t *testing.T) {
	redis := testenv.StartRedis(t)
	onRedis := func(o *stack.CentrifugoOptions) { o.RedisAddress = redis.URL() }
	api := testenv.StartCentrifugo(t, onRedis)
	edge := testenv.StartCentrifugo(t, onRedis, func(o *stack.CentrifugoOptions) { o.APIKey, o.HMACSecret = api.APIKey, api.HMACSecret })
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	h := startLogged(t, edge, log, func(c *tokensvc.Config) { c.CentrifugoAPIURL, c.CentrifugoAPIKey = api.APIURL(), api.APIKey })
	alice := h.connectWith(t, h.client().login("alice", alicePW), "$users")
	bob := h.connectWith(t, h.client().login("bob", bobPW), "$users")

	if err := api.Stop(); err != nil {
		t.Fatal(err)
	}
	rewrite(t, h.cfg.ChannelsFile, "  - name: $users\n    level: users\n", "  - name: $users\n    level: staff\n")
	lastRun := func() map[string]any {
		entries := logs.FilterMessage("access revoked after reload").All()
		if len(entries) == 0 {
			return nil
		}
		return entries[len(entries)-1].ContextMap()
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if f := lastRun(); f == nil || f["retrying"] != true {
			return fmt.Errorf("last run %v, want a failed run to be retried", f)
		}
		return nil
	})
	if _, ok := alice.Unsubscribed("$users"); ok {
		t.Fatal("alice unsubscribed while the API node was down: the outage did not happen")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := api.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := alice.Unsubscribed("$users"); !ok {
			return errors.New("alice still subscribed to $users")
		}
		return nil
	})
	if f := lastRun(); f["retrying"] != false || f["unsubscribed"] != int64(1) {
		t.Errorf("last run %v, want complete with 1 unsubscribed", f)
	}
	if e, ok := bob.Unsubscribed("$users"); ok {
		t.Errorf("bob (staff) was unsubscribed: %+v", e)
	}
}
