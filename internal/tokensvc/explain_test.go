package tokensvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instant-go/instant/internal/tokensvc"
)

// explainCase is one identity, asked of the running service and of
// tokensvc explain.
type explainCase struct {
	name    string
	args    []string                                                    // explain's identity flags
	request func(h *harness, c *client, path string, body any) response // the same identity asking the service
}

// runExplain runs "tokensvc explain" with args on the service's files and
// decodes its JSON; denied reports exit status 1.
func runExplain(t *testing.T, h *harness, args ...string) (e tokensvc.Explanation, denied bool) {
	t.Helper()
	t.Setenv("INSTANT_CHANNELS_FILE", h.cfg.ChannelsFile)
	t.Setenv("INSTANT_USERS_FILE", h.cfg.UsersFile)
	var out, errOut bytes.Buffer
	err := tokensvc.Main(context.Background(), append([]string{"explain", "--json"}, args...), nil, &out, &errOut)
	if err != nil && !errors.Is(err, tokensvc.ErrDenied) {
		t.Fatalf("explain %v: %v %s", args, err, errOut.String())
	}
	if jerr := json.Unmarshal(out.Bytes(), &e); jerr != nil {
		t.Fatalf("explain %v: %v in %s", args, jerr, out.String())
	}
	return e, errors.Is(err, tokensvc.ErrDenied)
}

// TestExplainAgreesWithService: for users of every identity source, the
// channels explain allows are exactly those the running service hands
// tokens for, and for each single channel (unknown and inactive ones too)
// explain's verdict and exit status are the service's subscribe answer.
func TestExplainAgreesWithService(t *testing.T) {
	jwtKey := strings.Repeat("j", 40)
	h := start(t, nil, func(c *tokensvc.Config) {
		c.Anonymous, c.JWTHMACKey = true, jwtKey
		c.ProxyAuth, c.ProxyAuthProxies = true, []string{"127.0.0.0/8"}
	})
	login := func(user, pw string) func(h *harness, c *client, path string, body any) response {
		return func(h *harness, c *client, path string, body any) response {
			if path == "/instant/get_token/" { // the first request: log in, answering the same
				return c.do("POST", "/instant/login/", map[string]string{"username": user, "password": pw})
			}
			return c.do("POST", path, body)
		}
	}
	bearer := func(claims jwt.MapClaims) func(h *harness, c *client, path string, body any) response {
		tok := signUpstream(t, jwt.SigningMethodHS256, []byte(jwtKey), upstreamClaims("u-1", claims), "")
		return func(h *harness, c *client, path string, body any) response {
			return c.do("POST", path, body, "Authorization", "Bearer "+tok)
		}
	}
	proxy := func(user, groups string) func(h *harness, c *client, path string, body any) response {
		return func(h *harness, c *client, path string, body any) response {
			return c.do("POST", path, body, "X-Forwarded-User", user, "X-Forwarded-Groups", groups)
		}
	}
	cases := []explainCase{
		{"users file alice", []string{"--user", "alice"}, login("alice", alicePW)},
		{"users file bob (staff)", []string{"--user", "bob"}, login("bob", bobPW)},
		{"jwt no attributes", []string{"--user", "u-1"}, bearer(nil)},
		{"jwt groups", []string{"--user", "u-1", "--groups", "group2,other"}, bearer(jwt.MapClaims{"groups": []string{"group2", "other"}})},
		{"jwt staff", []string{"--user", "u-1", "--staff"}, bearer(jwt.MapClaims{"staff": true})},
		{"jwt superuser", []string{"--user", "u-1", "--superuser"}, bearer(jwt.MapClaims{"superuser": true})},
		{"proxy groups", []string{"--user", "carol", "--groups", "group1"}, proxy("carol", "group1")},
		{"anonymous", []string{"--anonymous"}, func(h *harness, c *client, path string, body any) response { return c.do("POST", path, body) }},
	}
	all := []string{"public", "$users", "$group1", "$group2", "$staff", "$super", "$inactive", "$nope"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client()
			got := names(c.tokens(tc.request(h, c, "/instant/get_token/", nil)).Channels)
			e, denied := runExplain(t, h, tc.args...)
			var allowed []string
			for _, ce := range e.Channels {
				if ce.Allowed {
					allowed = append(allowed, ce.Channel)
				}
			}
			if !slices.Equal(allowed, got) {
				t.Errorf("explain allows %v, the service gives tokens for %v", allowed, got)
			}
			if denied != (len(got) == 0) {
				t.Errorf("explain's exit status says denied=%v for a listing with %d channels", denied, len(got))
			}
			for _, ch := range all {
				r := tc.request(h, c, "/instant/subscribe/", map[string]string{"channel": ch})
				e, denied := runExplain(t, h, append(tc.args, "--channel", ch)...)
				if len(e.Channels) != 1 || e.Channels[0].Allowed != (r.status == http.StatusOK) || denied == e.Channels[0].Allowed {
					t.Errorf("%s: explain %+v (denied=%v), service answered %s", ch, e.Channels, denied, r)
				}
			}
		})
	}
}

// TestExplainText: the one-line reasons name the rule, the channel's line
// and the user's line.
func TestExplainText(t *testing.T) {
	h := start(t, nil)
	t.Setenv("INSTANT_CHANNELS_FILE", h.cfg.ChannelsFile)
	t.Setenv("INSTANT_USERS_FILE", h.cfg.UsersFile)
	for _, tc := range []struct {
		args    []string
		want    string
		allowed bool
	}{
		{[]string{"--user", "alice", "--channel", "$staff"}, "denied: $staff has level staff (channels.yaml:13); alice is not staff (users.yaml:2)\n", false},
		{[]string{"--user", "alice", "--channel", "$group1"}, "allowed: $group1 has level groups [group1] (channels.yaml:8); alice is in group1 (users.yaml:5)\n", true},
		{[]string{"--user", "gina", "--groups", "group2", "--channel", "$group1"}, "denied: $group1 has level groups [group1] (channels.yaml:8); gina is in none of them (gina's groups: group2)\n", false},
		{[]string{"--anonymous", "--channel", "$inactive"}, "denied: $inactive is inactive (nobody may subscribe) (channels.yaml:18)\n", false},
	} {
		var out bytes.Buffer
		err := tokensvc.Main(context.Background(), append([]string{"explain"}, tc.args...), nil, &out, &bytes.Buffer{})
		if out.String() != tc.want || (err == nil) != tc.allowed {
			t.Errorf("explain %v:\n got %q (%v)\nwant %q", tc.args, out.String(), err, tc.want)
		}
	}
}
