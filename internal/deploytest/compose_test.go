package deploytest

import (
	"bufio"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// secretName matches variables whose value is a secret.
var secretName = regexp.MustCompile(`^[A-Z0-9_]*(_KEY|_PASSWORD|_SECRET|_TOKEN)$`)

// serviceNames are the services the stack needs.
var serviceNames = []string{"nats", "centrifugo", "bridge", "tokensvc"}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range serviceNames {
		c.mustService(t, name)
	}
	if got, want := c.mustService(t, "centrifugo").Image, "centrifugo/centrifugo:"+stack.CentrifugoVersion; got != want {
		t.Errorf("centrifugo image %q, want %q (the version the tests run against)", got, want)
	}
	if got, want := c.mustService(t, "nats").Image, "nats:2.11"; got != want {
		t.Errorf("nats image %q, want %q", got, want)
	}
	for _, p := range programs {
		s := c.mustService(t, p.name)
		if s.Build == nil {
			t.Errorf("%s: no build section", p.name)
			continue
		}
		ctx := filepath.Join(root(t), filepath.FromSlash(s.Build.Context))
		if fi, err := os.Stat(ctx); err != nil || !fi.IsDir() {
			t.Errorf("%s: build context %q is not a directory (err %v)", p.name, s.Build.Context, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
			t.Errorf("%s: build context %q has no go.mod: %v", p.name, s.Build.Context, err)
		}
		if _, err := os.Stat(filepath.Join(ctx, ".dockerignore")); err != nil {
			t.Errorf("%s: build context %q has no .dockerignore: %v", p.name, s.Build.Context, err)
		}
		// The Dockerfile is named relative to the context; TestDockerfiles
		// checks that it builds ./cmd/<name>.
		if want := "deployments/" + p.name + ".Dockerfile"; filepath.ToSlash(filepath.Clean(s.Build.Dockerfile)) != want {
			t.Errorf("%s: dockerfile %q, want %q", p.name, s.Build.Dockerfile, want)
		}
		if _, err := os.Stat(filepath.Join(ctx, filepath.FromSlash(s.Build.Dockerfile))); err != nil {
			t.Errorf("%s: dockerfile: %v", p.name, err)
		}
	}
}

func TestComposeMounts(t *testing.T) {
	c := loadCompose(t)
	used := map[string]bool{}
	for name, s := range c.Services {
		for _, m := range s.Volumes {
			if !m.Bind {
				if _, ok := c.Volumes[m.Source]; !ok {
					t.Errorf("%s: named volume %q is not declared under the top-level volumes", name, m.Source)
				}
				used[m.Source] = true
				continue
			}
			if !strings.HasPrefix(m.Source, "./") {
				t.Errorf("%s: bind mount source %q: want a path relative to the repository (./...)", name, m.Source)
				continue
			}
			host := filepath.Join(root(t), filepath.FromSlash(m.Source))
			fi, err := os.Stat(host)
			if err != nil {
				t.Errorf("%s: bind mount source %s does not exist: %v", name, m.Source, err)
				continue
			}
			if !m.ReadOnly {
				t.Errorf("%s: bind mount %s:%s is writable; mount configuration read-only (:ro)", name, m.Source, m.Target)
			}
			if fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 == 0 {
				t.Errorf("%s: %s is not world-readable (mode %v); the containers run as non-root users", name, m.Source, fi.Mode().Perm())
			}
			if !strings.HasPrefix(m.Target, "/") {
				t.Errorf("%s: mount target %q is not absolute", name, m.Target)
			}
		}
	}
	for v := range c.Volumes {
		if !used[v] {
			t.Errorf("volume %q is declared but no service mounts it", v)
		}
	}
}

func TestComposeEnvironmentKnown(t *testing.T) {
	c := loadCompose(t)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			vars := p.vars(t)
			env := c.mustService(t, p.name).Environment
			if len(env) == 0 {
				t.Fatalf("%s: no environment", p.name)
			}
			for _, k := range slices.Sorted(maps.Keys(env)) {
				if _, ok := vars[k]; !ok {
					t.Errorf("%s: %s is set but %s does not read it (see %s --help)", p.name, k, p.name, p.name)
				}
			}
			for _, v := range vars {
				if v.Required && v.Default == "" {
					if _, ok := env[v.Key]; !ok {
						t.Errorf("%s: required variable %s is not set", p.name, v.Key)
					}
				}
			}
		})
	}
}

// singleRef returns the reference when value is exactly one ${...}.
func singleRef(value string) (ref, bool) {
	if !strings.HasPrefix(value, "${") || strings.Index(value, "}") != len(value)-1 {
		return ref{}, false
	}
	_, refs, err := interpolate(value, func(string) (string, bool) { return "x", true })
	if err != nil || len(refs) != 1 {
		return ref{}, false
	}
	return refs[0], true
}

func TestComposeSecretsAreReferences(t *testing.T) {
	c := loadCompose(t)
	n := 0
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if !secretName.MatchString(k) {
				continue
			}
			n++
			r, ok := singleRef(v)
			if !ok || r.Op != ":?" {
				t.Errorf("%s: %s=%q: a secret must be exactly ${VAR:?message}, read from the user's environment, with no default and not empty", name, k, v)
			}
		}
	}
	if n < 4 {
		t.Errorf("found %d secret variables, want at least 4 (API key twice, HMAC key twice)", n)
	}

	// Each secret is shared through one user variable: the key Centrifugo
	// checks is the key the bridge sends, the HMAC key Centrifugo verifies
	// with is the one the token service signs with.
	pairs := []struct{ svcA, varA, svcB, varB string }{
		{"centrifugo", "CENTRIFUGO_HTTP_API_KEY", "bridge", "INSTANT_CENTRIFUGO_API_KEY"},
		{"centrifugo", "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY", "tokensvc", "INSTANT_CENTRIFUGO_HMAC_KEY"},
	}
	for _, p := range pairs {
		a, okA := singleRef(c.mustService(t, p.svcA).Environment[p.varA])
		b, okB := singleRef(c.mustService(t, p.svcB).Environment[p.varB])
		if !okA || !okB || a.Name != b.Name {
			t.Errorf("%s %s (%v) and %s %s (%v) must come from the same variable", p.svcA, p.varA, a.Name, p.svcB, p.varB, b.Name)
		}
	}
}

// requiredRefs are the variables the user must set for docker compose to
// start, and defaults maps the others to their default.
func composeRefs(tb testing.TB, c *composeFile) (required map[string]bool, defaults map[string]string) {
	tb.Helper()
	required, defaults = map[string]bool{}, map[string]string{}
	for name, s := range c.Services {
		for k, v := range s.Environment {
			_, refs, err := interpolate(v, func(string) (string, bool) { return "x", true })
			if err != nil {
				tb.Fatalf("%s: %s: %v", name, k, err)
			}
			for _, r := range refs {
				switch r.Op {
				case ":?", "?":
					required[r.Name] = true
				case ":-", "-":
					if d, ok := defaults[r.Name]; ok && d != r.Arg {
						tb.Errorf("${%s} has two defaults: %q and %q", r.Name, d, r.Arg)
					}
					defaults[r.Name] = r.Arg
				default:
					tb.Errorf("%s: %s: ${%s%s...}: give a default (:-) or require it (:?)", name, k, r.Name, r.Op)
				}
			}
		}
	}
	return required, defaults
}

// fakeSecrets gives every required variable a random test value.
func fakeSecrets(tb testing.TB, c *composeFile) map[string]string {
	tb.Helper()
	required, _ := composeRefs(tb, c)
	out := map[string]string{}
	for k := range required {
		out[k] = testenv.Secret(tb) + testenv.Secret(tb)
	}
	return out
}

func TestComposeEnvExample(t *testing.T) {
	c := loadCompose(t)
	required, defaults := composeRefs(t, c)
	if len(required) == 0 {
		t.Fatal("compose requires no variable; where do the secrets come from?")
	}
	set, documented := envExample(t)
	for k := range required {
		v, ok := set[k]
		switch {
		case !ok:
			t.Errorf("deployments/.env.example does not list %s, which docker-compose.yml requires", k)
		case v != "":
			t.Errorf("deployments/.env.example: %s=%q: want it empty, so that compose refuses to start until it is set", k, v)
		}
	}
	for k := range set {
		if !required[k] {
			t.Errorf("deployments/.env.example sets %s, which docker-compose.yml does not require", k)
		}
	}
	for k, v := range documented {
		d, ok := defaults[k]
		if !ok {
			t.Errorf("deployments/.env.example documents %s, which docker-compose.yml does not read with a default", k)
		} else if d != v {
			t.Errorf("deployments/.env.example documents %s=%q, but the compose default is %q", k, v, d)
		}
	}
	for k := range defaults {
		if _, ok := documented[k]; !ok {
			t.Errorf("deployments/.env.example does not document %s (compose default %q)", k, defaults[k])
		}
	}
	// The error message of a missing required variable points to the file.
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if r, ok := singleRef(v); ok && (r.Op == ":?" || r.Op == "?") && !strings.Contains(r.Arg, "deployments/.env.example") {
				t.Errorf("%s: %s: the error message %q does not name deployments/.env.example", name, k, r.Arg)
			}
		}
	}
}

// envExample reads deployments/.env.example: the variables it sets, and
// those it documents in comments (#NAME=default).
func envExample(tb testing.TB) (set, documented map[string]string) {
	tb.Helper()
	line := regexp.MustCompile(`^(#)?([A-Z][A-Z0-9_]*)=(.*)$`)
	set, documented = map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(readRepoFile(tb, "deployments/.env.example"))))
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		if m[1] == "" {
			set[m[2]] = m[3]
		} else {
			documented[m[2]] = m[3]
		}
	}
	return set, documented
}

// TestHardening10ComposeRefusesExampleSecrets (issue 12, point 10): the
// example .env ships no usable secret, and docker compose, given it as is,
// refuses to start: every secret of every service is ${VAR:?message} and
// its variable is empty in the example.
func TestHardening10ComposeRefusesExampleSecrets(t *testing.T) {
	c := loadCompose(t)
	set, _ := envExample(t)
	lookup := func(k string) (string, bool) { v, ok := set[k]; return v, ok }
	n := 0
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if !secretName.MatchString(k) {
				continue
			}
			n++
			if r, ok := singleRef(v); !ok || r.Op != ":?" {
				t.Errorf("%s: %s=%q: want ${VAR:?message}, which refuses an empty value", name, k, v)
			}
			if got, _, err := interpolate(v, lookup); !errors.Is(err, errInterpolation) {
				t.Errorf("%s: %s: with deployments/.env.example as .env compose starts with %s=%q; want a refusal", name, k, k, got)
			}
		}
	}
	if n == 0 {
		t.Fatal("no secret in docker-compose.yml: the check is empty")
	}
	for k, v := range set {
		if secretName.MatchString(k) && v != "" {
			t.Errorf("deployments/.env.example: %s has a value; ship secrets empty", k)
		}
	}
}

// TestHardening10ComposePortsOnLoopback (issue 12, point 10): the compose
// stack publishes no port on all interfaces; every published port is bound
// to 127.0.0.1 on the host.
func TestHardening10ComposePortsOnLoopback(t *testing.T) {
	c := loadCompose(t)
	n := 0
	for name, s := range c.Services {
		for _, p := range s.Ports {
			n++
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s published on %q (all interfaces when empty); publish it on 127.0.0.1", name, p.Target, p.HostIP)
			}
		}
	}
	if n == 0 {
		t.Fatal("docker-compose.yml publishes no port: the check is empty")
	}
}

// setEnv makes env the whole INSTANT_* environment of the test process
// (restored at cleanup).
func setEnv(tb testing.TB, env map[string]string) {
	tb.Helper()
	t, ok := tb.(*testing.T)
	if !ok {
		tb.Fatal("setEnv needs a *testing.T")
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INSTANT_") {
			t.Setenv(k, "") // records the value for cleanup
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// programEnv is the environment compose gives a program, with secrets
// from secrets and container paths mapped to the mounted host files.
func programEnv(tb testing.TB, c *composeFile, name string, secrets map[string]string) map[string]string {
	tb.Helper()
	s := c.mustService(tb, name)
	env := resolveEnv(tb, name, s.Environment, func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
	for k, v := range env {
		if !strings.HasPrefix(v, "/") {
			continue
		}
		host, ok := s.hostPath(tb, v)
		if !ok {
			tb.Fatalf("%s: %s=%s is not a mounted file", name, k, v)
		}
		env[k] = host
	}
	return env
}

func TestComposeConfigValid(t *testing.T) {
	c := loadCompose(t)
	secrets := fakeSecrets(t, c)

	// Without the required variables compose refuses to start.
	for _, p := range programs {
		for k, v := range c.mustService(t, p.name).Environment {
			if r, ok := singleRef(v); ok && secretName.MatchString(k) {
				if _, _, err := interpolate(v, noEnv); !errors.Is(err, errInterpolation) {
					t.Errorf("%s: %s=%s without ${%s} set: got %v, want an interpolation error", p.name, k, v, r.Name, err)
				}
			}
		}
	}

	t.Run("bridge", func(t *testing.T) {
		env := programEnv(t, c, "bridge", secrets)
		setEnv(t, env)
		cfg, err := bridge.LoadConfig()
		if err != nil {
			t.Fatalf("bridge configuration from docker-compose.yml: %v", err)
		}
		if cfg.CentrifugoAPIKey != secrets[mustRef(t, c, "bridge", "INSTANT_CENTRIFUGO_API_KEY")] {
			t.Error("bridge: INSTANT_CENTRIFUGO_API_KEY did not reach the configuration")
		}
		if _, err := os.Stat(cfg.ChannelsFile); err != nil {
			t.Errorf("bridge: channels file: %v", err)
		}
	})
	t.Run("tokensvc", func(t *testing.T) {
		env := programEnv(t, c, "tokensvc", secrets)
		setEnv(t, env)
		cfg, err := tokensvc.LoadConfig()
		if err != nil {
			t.Fatalf("tokensvc configuration from docker-compose.yml: %v", err)
		}
		if cfg.CentrifugoHMACKey != secrets[mustRef(t, c, "tokensvc", "INSTANT_CENTRIFUGO_HMAC_KEY")] {
			t.Error("tokensvc: INSTANT_CENTRIFUGO_HMAC_KEY did not reach the configuration")
		}
		if cfg.UsersFile == "" {
			t.Error("tokensvc: no users file: /instant/login/ is off")
		} else if _, err := os.Stat(cfg.UsersFile); err != nil {
			t.Errorf("tokensvc: users file: %v", err)
		}
	})
}

func mustRef(tb testing.TB, c *composeFile, svc, key string) string {
	tb.Helper()
	r, ok := singleRef(c.mustService(tb, svc).Environment[key])
	if !ok {
		tb.Fatalf("%s: %s is not a ${...} reference", svc, key)
	}
	return r.Name
}

func TestComposeSharedSettings(t *testing.T) {
	c := loadCompose(t)
	b, ts := c.mustService(t, "bridge"), c.mustService(t, "tokensvc")
	shared := 0
	for k, v := range b.Environment {
		w, ok := ts.Environment[k]
		if !ok {
			continue
		}
		shared++
		if v != w {
			t.Errorf("%s differs: bridge %q, tokensvc %q; both programs must agree", k, v, w)
		}
	}
	for _, k := range []string{"INSTANT_CHANNELS_FILE", "INSTANT_SITE_NAME"} {
		if _, ok := ts.Environment[k]; !ok {
			t.Errorf("tokensvc does not set %s (its defaults differ from the bridge's)", k)
		}
		if _, ok := b.Environment[k]; !ok {
			t.Errorf("bridge does not set %s (its defaults differ from the token service's)", k)
		}
	}
	// The same host file behind both channels files.
	bf, _ := b.hostPath(t, b.Environment["INSTANT_CHANNELS_FILE"])
	tf, _ := ts.hostPath(t, ts.Environment["INSTANT_CHANNELS_FILE"])
	if bf == "" || bf != tf {
		t.Errorf("channels file: bridge mounts %q, tokensvc %q; want the same file", bf, tf)
	}
	if shared < 2 {
		t.Errorf("%d shared variables", shared)
	}
}

// targets are the container ports a service publishes.
func (s *service) targets() []string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, p.Target)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// flagValue is the value of the first of names in args (-x v or -x=v).
func flagValue(args []string, names ...string) (string, bool) {
	for i, a := range args {
		for _, n := range names {
			if a == n && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// centrifugoConfig is deployments/centrifugo/config.json.
func centrifugoConfig(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(readRepoFile(tb, "deployments/centrifugo/config.json"), &m); err != nil {
		tb.Fatalf("deployments/centrifugo/config.json: %v", err)
	}
	return m
}

// lookupPath returns the value at a dotted path of a JSON object.
func lookupPath(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// centrifugoPort is the port Centrifugo listens on as composed.
func centrifugoPort(tb testing.TB, c *composeFile) string {
	tb.Helper()
	if v, ok := c.mustService(tb, "centrifugo").Environment["CENTRIFUGO_HTTP_SERVER_PORT"]; ok {
		return v
	}
	v, ok := lookupPath(centrifugoConfig(tb), "http_server.port")
	if !ok {
		return "8000" // Centrifugo's default
	}
	f, ok := v.(float64)
	if !ok {
		tb.Fatalf("config.json: http_server.port is %T, want a number", v)
	}
	return strconv.Itoa(int(f))
}

func TestComposePorts(t *testing.T) {
	c := loadCompose(t)

	// Our programs publish exactly the port they listen on and expose.
	for _, p := range programs {
		s := c.mustService(t, p.name)
		addr, _, err := interpolate(s.Environment[p.addrVar], noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if addr == "" {
			addr = p.vars(t)[p.addrVar].Default
		}
		want := listenPort(t, p.name+" "+p.addrVar, addr)
		if got := s.targets(); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: publishes container ports %v, but listens on %s (%s=%s)", p.name, got, want, p.addrVar, addr)
		}
		if got := exposedPorts(t, "deployments/"+p.name+".Dockerfile"); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: Dockerfile exposes %v, but the compose file has it listen on %s", p.name, got, want)
		}
	}

	// Centrifugo: published port, healthcheck and the bridge's API URL
	// agree with config.json.
	cport := centrifugoPort(t, c)
	cf := c.mustService(t, "centrifugo")
	if got := cf.targets(); !slices.Equal(got, []string{cport}) {
		t.Errorf("centrifugo: publishes container ports %v, config.json has it listen on %s", got, cport)
	}
	secrets := fakeSecrets(t, c)
	benv := resolveEnv(t, "bridge", c.mustService(t, "bridge").Environment, func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
	if got, want := benv["INSTANT_CENTRIFUGO_API_URL"], "http://centrifugo:"+cport+"/api"; got != want {
		t.Errorf("bridge: INSTANT_CENTRIFUGO_API_URL=%q, want %q", got, want)
	}

	// NATS: the bridge connects to the client port; only the client and
	// monitoring ports are published, on the loopback interface (no auth).
	nats := c.mustService(t, "nats")
	client, ok := flagValue(nats.Command, "-p", "--port")
	if !ok {
		client = "4222"
	}
	monitor, ok := flagValue(nats.Command, "-m", "--http_port")
	if !ok {
		t.Error("nats: no monitoring port (-m 8222)")
	}
	for _, p := range nats.Ports {
		if p.Target != client && p.Target != monitor {
			t.Errorf("nats: publishes %s, which is neither the client port %s nor the monitoring port %s", p.Target, client, monitor)
		}
		if p.HostIP != "127.0.0.1" {
			t.Errorf("nats: port %s published on %q; NATS has no authentication here, publish it on 127.0.0.1 only", p.Target, p.HostIP)
		}
	}
	if got, want := benv["INSTANT_NATS_URL"], "nats://nats:"+client; got != want {
		t.Errorf("bridge: INSTANT_NATS_URL=%q, want %q", got, want)
	}

	// No two services publish the same host port.
	seen := map[string]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if p.Published == "" {
				t.Errorf("%s: port %s has no fixed host port", name, p.Target)
				continue
			}
			for _, ip := range []string{p.HostIP, ""} {
				key := net.JoinHostPort(ip, p.Published)
				if other, dup := seen[key]; dup && other != name {
					t.Errorf("host port %s published by %s and %s", p.Published, other, name)
				}
			}
			seen[net.JoinHostPort(p.HostIP, p.Published)] = name
			seen[net.JoinHostPort("", p.Published)] = name
		}
	}
}

func TestComposeDependenciesAndHealthchecks(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for dep, cond := range s.DependsOn {
			d, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %q", name, dep)
				continue
			}
			switch cond {
			case "service_started":
			case "service_healthy":
				if d.Healthcheck == nil || d.Healthcheck.Disable {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			default:
				t.Errorf("%s: depends_on %s: condition %q", name, dep, cond)
			}
		}
	}

	// The bridge waits for every service it connects to.
	b := c.mustService(t, "bridge")
	for _, k := range []string{"INSTANT_NATS_URL", "INSTANT_CENTRIFUGO_API_URL"} {
		v, _, err := interpolate(b.Environment[k], noEnv)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(v)
		if err != nil {
			t.Fatalf("bridge: %s=%q: %v", k, v, err)
		}
		if _, ok := c.Services[u.Hostname()]; !ok {
			t.Errorf("bridge: %s=%q names no service", k, v)
		} else if _, ok := b.DependsOn[u.Hostname()]; !ok {
			t.Errorf("bridge: connects to %s (%s) but does not depend on it", u.Hostname(), k)
		}
	}

	// Our images are distroless: no shell, no curl or wget, so a
	// healthcheck command could never run.
	for _, p := range programs {
		if h := c.mustService(t, p.name).Healthcheck; h != nil && !h.Disable && !slices.Equal(h.Test, []string{"NONE"}) {
			t.Errorf("%s: healthcheck %v cannot run in a distroless image (no shell, no HTTP client)", p.name, h.Test)
		}
	}

	// Centrifugo's image is Alpine (FROM alpine in its Dockerfile): busybox
	// wget is there. The check must hit /health on the configured port, which
	// config.json must enable.
	h := c.mustService(t, "centrifugo").Healthcheck
	if h == nil {
		t.Fatal("centrifugo: no healthcheck; the bridge waits for service_healthy")
	}
	if len(h.Test) < 2 || h.Test[0] != "CMD" || h.Test[1] != "wget" {
		t.Errorf("centrifugo healthcheck %v: want [\"CMD\", \"wget\", ...]", h.Test)
	}
	want := "http://127.0.0.1:" + centrifugoPort(t, c) + "/health"
	if !slices.Contains(h.Test, want) {
		t.Errorf("centrifugo healthcheck %v does not fetch %s", h.Test, want)
	}
	if v, _ := lookupPath(centrifugoConfig(t), "health.enabled"); v != true {
		t.Error("config.json: health.enabled is not true, /health would be 404")
	}
}

func TestComposeCommands(t *testing.T) {
	c := loadCompose(t)

	// Centrifugo reads the mounted config.json.
	cf := c.mustService(t, "centrifugo")
	cfg, ok := flagValue(cf.Command, "--config", "-c")
	if !ok {
		t.Fatalf("centrifugo: command %v has no --config", cf.Command)
	}
	host, ok := cf.hostPath(t, cfg)
	if want := filepath.Join(root(t), "deployments", "centrifugo", "config.json"); !ok || host != want {
		t.Errorf("centrifugo: --config %s is %q on the host, want %s", cfg, host, want)
	}

	// NATS runs JetStream with its store on a named volume.
	nats := c.mustService(t, "nats")
	if !slices.Contains(nats.Command, "-js") && !slices.Contains(nats.Command, "--jetstream") {
		t.Errorf("nats: command %v does not enable JetStream (-js)", nats.Command)
	}
	sd, ok := flagValue(nats.Command, "-sd", "--store_dir")
	if !ok {
		t.Fatalf("nats: command %v has no -sd", nats.Command)
	}
	var onVolume bool
	for _, m := range nats.Volumes {
		onVolume = onVolume || (!m.Bind && m.Target == sd)
	}
	if !onVolume {
		t.Errorf("nats: the JetStream store %s is not on a named volume", sd)
	}
}

func TestComposeHardening(t *testing.T) {
	c := loadCompose(t)
	for _, p := range programs {
		s := c.mustService(t, p.name)
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not set; the program writes no files", p.name)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: cap_drop does not drop ALL", p.name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt lacks no-new-privileges:true", p.name)
		}
	}
}
