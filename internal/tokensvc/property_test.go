package tokensvc_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
	"github.com/instant-go/instant/internal/tokensvc"
	"github.com/instant-go/instant/pkg/acl"
)

// TestPropertyTokensFollowACL: over random channel registries and random
// users (upstream JWT or anonymous), get_token, channels and subscribe
// hand out exactly what acl allows, never more; every issued token has
// the user's sub, its channel and the configured lifetime.
func TestPropertyTokensFollowACL(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x1157a47))
	hmacKey := testenv.Secret(t)
	jwtKey := testenv.Secret(t) + testenv.Secret(t)
	signer, err := tokens.NewHMAC([]byte(hmacKey))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tokensvc.DefaultConfig()
	cfg.JWTHMACKey = jwtKey
	cfg.Anonymous = true
	cfg.SessionKey = strings.Repeat("k", 32)
	cfg.TokenTTL = time.Duration(1+rng.IntN(600)) * time.Second
	cfg.SubscriptionTokenTTL = time.Duration(1+rng.IntN(600)) * time.Second
	groups := []string{"g1", "g2", "g3", "g4"}
	levels := []acl.Level{acl.LevelPublic, acl.LevelUsers, acl.LevelGroups, acl.LevelStaff, acl.LevelSuperuser}
	subset := func() []string {
		var out []string
		for _, g := range groups {
			if rng.IntN(3) == 0 {
				out = append(out, g)
			}
		}
		return out
	}
	verify := func(tok string) jwt.MapClaims {
		c := jwt.MapClaims{}
		if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).
			ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return []byte(hmacKey), nil }); err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
		return c
	}
	lifetime := func(c jwt.MapClaims) time.Duration {
		exp, _ := c.GetExpirationTime()
		iat, _ := c.GetIssuedAt()
		if exp == nil || iat == nil {
			t.Fatalf("token without exp or iat: %v", c)
		}
		if exp.Before(time.Now()) {
			t.Errorf("token already expired: %v", c)
		}
		return exp.Sub(iat.Time)
	}

	for iter := range 300 {
		var chs []acl.Channel
		var all []string
		for i := range rng.IntN(14) {
			c := acl.Channel{Name: fmt.Sprintf("c%d", i), Level: levels[rng.IntN(len(levels))], Active: rng.IntN(5) != 0}
			if rng.IntN(2) == 0 {
				c.Name = "$" + c.Name
			}
			if c.Level == acl.LevelGroups {
				c.Groups = subset()
				if len(c.Groups) == 0 {
					c.Groups = []string{groups[rng.IntN(len(groups))]}
				}
			}
			chs = append(chs, c)
			all = append(all, c.Name)
		}
		reg, err := acl.NewRegistry(chs)
		if err != nil {
			t.Fatal(err)
		}
		var u acl.User
		var auth []string
		if rng.IntN(4) != 0 {
			u = acl.User{ID: fmt.Sprintf("id%d", rng.IntN(1000)), Username: fmt.Sprintf("user%d", iter), Groups: subset(), Staff: rng.IntN(3) == 0, Superuser: rng.IntN(6) == 0}
			claims := upstreamClaims(u.ID, jwt.MapClaims{"preferred_username": u.Username, "groups": u.Groups, "staff": u.Staff, "superuser": u.Superuser})
			if u.Groups == nil {
				delete(claims, "groups")
			}
			auth = []string{"Authorization", "Bearer " + signUpstream(t, jwt.SigningMethodHS256, []byte(jwtKey), claims, "")}
		}
		srv, err := tokensvc.NewServer(cfg, zap.NewNop(), tokensvc.Deps{Channels: func() *acl.Registry { return reg }, Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		call := func(method, path, body string) (int, []byte) {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(auth); i += 2 {
				req.Header.Set(auth[i], auth[i+1])
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			return rec.Code, rec.Body.Bytes()
		}
		desc := fmt.Sprintf("iteration %d: user %+v, channels %+v", iter, u, chs)
		var want []string
		for _, c := range reg.ChannelsFor(u) {
			want = append(want, c.Name)
		}
		wantSub := u.ID

		// get_token
		code, body := call("POST", "/instant/get_token/", "{}")
		var tr tokensvc.TokenResponse
		if code != http.StatusOK || json.Unmarshal(body, &tr) != nil {
			t.Fatalf("%s: get_token %d %s", desc, code, body)
		}
		wc := verify(tr.WSToken)
		if sub, _ := wc["sub"].(string); sub != wantSub {
			t.Fatalf("%s: connection sub %q, want %q", desc, sub, wantSub)
		}
		if d := lifetime(wc); d != cfg.TokenTTL {
			t.Errorf("%s: connection token lifetime %v, want %v", desc, d, cfg.TokenTTL)
		}
		got := names(tr.Channels)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: get_token channels %v, acl says %v", desc, got, want)
		}
		for _, ct := range tr.Channels {
			c := verify(ct.Token)
			sub, _ := c["sub"].(string)
			if sub != wantSub || c["channel"] != ct.Name {
				t.Fatalf("%s: token for %s has sub %q channel %v, want %q %s", desc, ct.Name, sub, c["channel"], wantSub, ct.Name)
			}
			if lc, _ := reg.Lookup(ct.Name); string(lc.Level) != ct.Level {
				t.Errorf("%s: %s level %q, want %q", desc, ct.Name, ct.Level, lc.Level)
			}
			if d := lifetime(c); d != cfg.SubscriptionTokenTTL {
				t.Errorf("%s: subscription token lifetime %v, want %v", desc, d, cfg.SubscriptionTokenTTL)
			}
		}

		// channels
		code, body = call("GET", "/instant/channels/", "")
		var list struct{ Channels []tokensvc.ChannelToken }
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil || !slices.Equal(names(list.Channels), want) {
			t.Fatalf("%s: channels %d %s, want %v", desc, code, body, want)
		}

		// subscribe, one channel at a time, including unknown ones
		for _, name := range append(slices.Clone(all), "$nope", "nope") {
			code, body := call("POST", "/instant/subscribe/", fmt.Sprintf(`{"channel":%q}`, name))
			allowed := reg.CanSubscribe(u, name)
			if allowed != (code == http.StatusOK) {
				t.Fatalf("%s: subscribe %s: %d %s, acl allows: %v", desc, name, code, body, allowed)
			}
			if allowed {
				var one struct{ Token string }
				_ = json.Unmarshal(body, &one)
				c := verify(one.Token)
				if sub, _ := c["sub"].(string); sub != wantSub || c["channel"] != name {
					t.Fatalf("%s: subscribe %s: token %v", desc, name, c)
				}
			}
		}

		// subscribe, a random list: all or nothing
		req := []string{}
		for range rng.IntN(5) {
			if len(all) > 0 && rng.IntN(5) != 0 {
				req = append(req, all[rng.IntN(len(all))])
			} else {
				req = append(req, "$ghost")
			}
		}
		b, _ := json.Marshal(map[string]any{"channels": req})
		code, body = call("POST", "/instant/subscribe/", string(b))
		allAllowed := true
		var wantReq []string
		for _, n := range req {
			allAllowed = allAllowed && reg.CanSubscribe(u, n)
			if !slices.Contains(wantReq, n) {
				wantReq = append(wantReq, n)
			}
		}
		if allAllowed != (code == http.StatusOK) {
			t.Fatalf("%s: subscribe %v: %d %s, all allowed: %v", desc, req, code, body, allAllowed)
		}
		if allAllowed {
			var resp struct{ Channels []tokensvc.ChannelToken }
			_ = json.Unmarshal(body, &resp)
			if got := names(resp.Channels); !slices.Equal(got, wantReq) {
				t.Fatalf("%s: subscribe %v gave %v", desc, req, got)
			}
		}
	}
}
