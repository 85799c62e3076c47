package deploytest

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/tokensvc"
)

// program is one of our binaries as the compose file deploys it: a service
// of the same name built from deployments/<name>.Dockerfile.
type program struct {
	name string
	// spec is the configuration struct the program loads with envconfig.
	spec any
	// usage writes the program's --help table of variables.
	usage func(io.Writer) error
	// addrVar is the variable of the program's HTTP listener.
	addrVar string
}

var programs = []program{
	{name: "bridge", spec: &bridge.Config{}, usage: bridge.Usage, addrVar: "INSTANT_BRIDGE_HTTP_ADDR"},
	{name: "tokensvc", spec: &tokensvc.Config{}, usage: tokensvc.Usage, addrVar: "INSTANT_TOKENSVC_HTTP_ADDR"},
}

// envVar is a variable a program reads.
type envVar struct {
	Key      string
	Default  string
	Required bool
}

// vars lists the variables the program reads, from the envconfig tags of
// its Config struct (read by envconfig itself, nesting applied). A tag is the
// full INSTANT_* name, or the name without the INSTANT_ prefix when the
// program passes the prefix to envconfig; either way every name must appear
// in the program's own --help output, which is what it really reads.
func (p program) vars(tb testing.TB) map[string]envVar {
	tb.Helper()
	const format = "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_required .}}\n{{end}}"
	var buf bytes.Buffer
	if err := envconfig.Usagef("", p.spec, &buf, format); err != nil {
		tb.Fatalf("%s: list variables: %v", p.name, err)
	}
	var help bytes.Buffer
	if err := p.usage(&help); err != nil {
		tb.Fatalf("%s --help: %v", p.name, err)
	}
	helpWords := map[string]bool{}
	for _, w := range strings.Fields(help.String()) {
		helpWords[w] = true
	}
	out := map[string]envVar{}
	for _, line := range strings.Split(buf.String(), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			tb.Fatalf("%s: unexpected usage line %q", p.name, line)
		}
		key := f[0]
		if !strings.HasPrefix(key, "INSTANT_") {
			key = "INSTANT_" + key
		}
		if !helpWords[key] {
			tb.Fatalf("%s: derived variable %s from the Config tags, but %s --help does not list it: has the envconfig prefix changed?", p.name, key, p.name)
		}
		out[key] = envVar{Key: key, Default: f[1], Required: f[2] == "true"}
	}
	if len(out) < 5 {
		tb.Fatalf("%s: only %d variables found; the config struct was not read", p.name, len(out))
	}
	return out
}

func TestProgramVars(t *testing.T) {
	// The names the issues make part of the interface.
	want := map[string][]string{
		"bridge": {"INSTANT_NATS_URL", "INSTANT_CENTRIFUGO_API_URL", "INSTANT_CENTRIFUGO_API_KEY",
			"INSTANT_CHANNELS_FILE", "INSTANT_SITE_NAME", "INSTANT_BRIDGE_HTTP_ADDR"},
		"tokensvc": {"INSTANT_TOKENSVC_HTTP_ADDR", "INSTANT_CENTRIFUGO_HMAC_KEY", "INSTANT_CHANNELS_FILE",
			"INSTANT_USERS_FILE", "INSTANT_SITE_NAME", "INSTANT_SESSION_KEY", "INSTANT_ANONYMOUS",
			"INSTANT_ALLOWED_ORIGINS"},
	}
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			vars := p.vars(t)
			for _, k := range append(want[p.name], p.addrVar) {
				if _, ok := vars[k]; !ok {
					t.Errorf("%s does not read %s", p.name, k)
				}
			}
		})
	}
}

// listenPort is the port of a listen address such as ":9090".
func listenPort(tb testing.TB, what, addr string) string {
	tb.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil || p == "" {
		tb.Fatalf("%s=%q: not a host:port listen address: %v", what, addr, err)
	}
	return p
}
