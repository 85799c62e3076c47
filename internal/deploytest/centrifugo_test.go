package deploytest

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// secretKey matches configuration keys whose value is a secret.
var secretKey = regexp.MustCompile(`(?i)(key|secret|password)$`)

func TestCentrifugoConfig(t *testing.T) {
	cfg := centrifugoConfig(t)
	noSecretValues(t, "", cfg)

	tests := []struct {
		path  string
		check func(v any) error
	}{
		{"http_server.port", func(v any) error {
			if f, ok := v.(float64); !ok || f < 1 || f > 65535 || f != float64(int(f)) {
				return fmt.Errorf("want a port number")
			}
			return nil
		}},
		{"http_api.key", wantString("")},
		{"client.token.hmac_secret_key", wantString("")},
		{"client.allowed_origins", func(v any) error {
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return fmt.Errorf("want a non-empty list of origins")
			}
			for _, o := range list {
				if s, _ := o.(string); s == "" || strings.Contains(s, "*") {
					return fmt.Errorf("origin %v: want an exact origin, no wildcard", o)
				}
			}
			return nil
		}},
		{"channel.without_namespace.history_size", func(v any) error {
			if f, ok := v.(float64); !ok || f < 1 {
				return fmt.Errorf("want a positive size (receipts carry offsets only with history)")
			}
			return nil
		}},
		{"channel.without_namespace.history_ttl", func(v any) error {
			s, _ := v.(string)
			if d, err := time.ParseDuration(s); err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration such as 300s")
			}
			return nil
		}},
		{"health.enabled", func(v any) error {
			if v != true {
				return fmt.Errorf("want true (the compose healthcheck fetches /health)")
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			v, ok := lookupPath(cfg, tc.path)
			if !ok {
				t.Fatalf("config.json: %s missing", tc.path)
			}
			if err := tc.check(v); err != nil {
				t.Errorf("config.json: %s=%v: %v", tc.path, v, err)
			}
		})
	}
	for _, path := range []string{"http_api.insecure", "client.insecure", "admin.insecure", "client.insecure_skip_token_signature_verify", "client.allow_anonymous_connect_without_token"} {
		if v, ok := lookupPath(cfg, path); ok && v != false {
			t.Errorf("config.json: %s=%v, want it off", path, v)
		}
	}
	composeOriginsMatch(t, cfg)
}

// composeOriginsMatch: the origins compose gives Centrifugo and the token
// service by default are those of config.json.
func composeOriginsMatch(t *testing.T, cfg map[string]any) {
	t.Helper()
	var origins []string
	list, _ := lookupPath(cfg, "client.allowed_origins")
	for _, o := range list.([]any) {
		origins = append(origins, o.(string))
	}
	_, defaults := composeRefs(t, loadCompose(t))
	c := loadCompose(t)
	for svc, want := range map[string]struct{ key, value string }{
		"centrifugo": {"CENTRIFUGO_CLIENT_ALLOWED_ORIGINS", strings.Join(origins, " ")},
		"tokensvc":   {"INSTANT_ALLOWED_ORIGINS", strings.Join(origins, ",")},
	} {
		got, _, err := interpolate(c.mustService(t, svc).Environment[want.key], func(k string) (string, bool) { d, ok := defaults[k]; return d, ok })
		if err != nil || got != want.value {
			t.Errorf("%s: %s defaults to %q (err %v), want config.json's origins %q", svc, want.key, got, err, want.value)
		}
	}
}

// noSecretValues: no secret in the file: they come from CENTRIFUGO_*
// variables.
func noSecretValues(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			noSecretValues(t, strings.TrimPrefix(path+"."+k, "."), x)
		}
	case []any:
		for i, x := range v {
			noSecretValues(t, path+"["+strconv.Itoa(i)+"]", x)
		}
	case string:
		last := path[strings.LastIndex(path, ".")+1:]
		if secretKey.MatchString(last) && v != "" {
			t.Errorf("config.json: %s holds a value; secrets come from the environment (CENTRIFUGO_...)", path)
		}
	}
}

func wantString(want string) func(any) error {
	return func(v any) error {
		if s, ok := v.(string); !ok || s != want {
			return fmt.Errorf("want %q", want)
		}
		return nil
	}
}

// composedCentrifugo is a real Centrifugo process run the way the compose
// file runs it: its command, the mounted config.json and its environment
// (nothing else), on a free port of 127.0.0.1 instead of the published one.
type composedCentrifugo struct {
	*testenv.Centrifugo
	env map[string]string
}

// WSURL is the client websocket endpoint.
func (c *composedCentrifugo) WSURL() string { return c.WebsocketURL() }

// Stop ends the process and returns all it wrote.
func (c *composedCentrifugo) Stop(tb testing.TB) string {
	tb.Helper()
	if err := c.Centrifugo.Stop(); err != nil {
		tb.Fatal(err)
	}
	return c.Log(tb)
}

// Log is what the process wrote so far.
func (c *composedCentrifugo) Log(tb testing.TB) string {
	tb.Helper()
	out, err := os.ReadFile(c.LogPath())
	if err != nil {
		tb.Fatal(err)
	}
	return string(out)
}

func startComposedCentrifugo(tb testing.TB, c *composeFile, secrets map[string]string) *composedCentrifugo {
	tb.Helper()
	s := c.mustService(tb, "centrifugo")
	if len(s.Command) == 0 || s.Command[0] != "centrifugo" {
		tb.Fatalf("centrifugo: command %v does not run centrifugo", s.Command)
	}
	args := slices.Clone(s.Command[1:])
	for i, a := range args {
		if host, ok := s.hostPath(tb, a); ok {
			args[i] = host
		}
	}
	env := resolveEnv(tb, "centrifugo", s.Environment, func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
	var procEnv []string
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	// stack gives it a free port on the loopback interface, not the
	// published one, with CENTRIFUGO_HTTP_SERVER_PORT and _ADDRESS.
	cf := testenv.StartCentrifugo(tb, func(o *stack.CentrifugoOptions) {
		o.Args, o.Env, o.ExactEnv = args, procEnv, true
		o.APIKey, o.HMACSecret = env["CENTRIFUGO_HTTP_API_KEY"], env["CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY"]
	})
	return &composedCentrifugo{Centrifugo: cf, env: env}
}

// apiInfo calls Centrifugo's info API method with key ("" for none).
func apiInfo(tb testing.TB, base, key string) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/info", strings.NewReader("{}"))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("centrifugo info: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestCentrifugoAsComposed runs the real Centrifugo with config.json and the
// compose environment, and checks that the secrets and origins it gets from
// the CENTRIFUGO_* variables are the ones in effect: this is what proves the
// variable names right.
func TestCentrifugoAsComposed(t *testing.T) {
	c := loadCompose(t)
	secrets := fakeSecrets(t, c)
	cf := startComposedCentrifugo(t, c, secrets)
	apiKey := cf.env["CENTRIFUGO_HTTP_API_KEY"]
	hmacKey := cf.env["CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY"]
	if apiKey == "" || hmacKey == "" {
		t.Fatalf("compose gives centrifugo no CENTRIFUGO_HTTP_API_KEY or CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY")
	}

	t.Run("api key", func(t *testing.T) {
		for _, tc := range []struct {
			name, key string
			want      int
		}{
			{"none", "", http.StatusUnauthorized},
			{"wrong", apiKey + "x", http.StatusUnauthorized},
			{"from compose", apiKey, http.StatusOK},
		} {
			if got := apiInfo(t, cf.URL(), tc.key); got != tc.want {
				t.Errorf("info with %s key: status %d, want %d", tc.name, got, tc.want)
			}
		}
	})

	t.Run("hmac key", func(t *testing.T) {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "deploytest", "exp": time.Now().Add(time.Minute).Unix(),
		}).SignedString([]byte(hmacKey))
		if err != nil {
			t.Fatal(err)
		}
		testenv.Connect(t, cf.WSURL(), tok) // fails the test when refused
	})

	t.Run("allowed origins", func(t *testing.T) {
		allowed := strings.Fields(cf.env["CENTRIFUGO_CLIENT_ALLOWED_ORIGINS"])
		if len(allowed) == 0 {
			t.Fatal("no CENTRIFUGO_CLIENT_ALLOWED_ORIGINS")
		}
		for _, tc := range []struct {
			origin string
			want   int
		}{
			{allowed[0], http.StatusSwitchingProtocols},
			{"http://evil.example", http.StatusForbidden},
		} {
			conn, resp, err := websocket.DefaultDialer.Dial(cf.WSURL(), http.Header{"Origin": {tc.origin}})
			if conn != nil {
				_ = conn.Close()
			}
			if resp == nil {
				t.Fatalf("origin %s: %v", tc.origin, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("websocket from origin %s: status %d, want %d", tc.origin, resp.StatusCode, tc.want)
			}
		}
	})

	checkComposedLog(t, cf.Stop(t), apiKey, hmacKey)
}

// checkComposedLog checks the whole output of a stopped composed
// Centrifugo: it stopped on the signal, warned about no configuration key
// or CENTRIFUGO_* variable it does not know, and logged no secret.
func checkComposedLog(t *testing.T, log string, secrets ...string) {
	t.Helper()
	if !strings.Contains(log, "signal received") {
		t.Fatalf("centrifugo did not stop normally:\n%s", log)
	}
	for _, w := range []string{"unknown key in configuration file", "unknown var in environment"} {
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, w) {
				t.Errorf("centrifugo: %s", line)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Error("centrifugo logged a secret")
		}
	}
	if t.Failed() {
		t.Logf("centrifugo log:\n%s", log)
	}
}
