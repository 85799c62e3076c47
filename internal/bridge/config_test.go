package bridge

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	c := DefaultConfig()
	c.CentrifugoAPIKey = "key"
	c.ChannelsFile = "channels.yaml"
	return c
}

func TestDefaultConfigIsValidOnceRequiredAreSet(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults plus required values: %v", err)
	}
	if c.NATSURL != "nats://127.0.0.1:4222" || c.Subject != "instant.publish" || c.CentrifugoAPIURL != "http://127.0.0.1:8000/api" || c.PayloadMode != "object" {
		t.Errorf("defaults %+v differ from the documented ones", c)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*Config)
		wantIn string
	}{
		{"missing api key", func(c *Config) { c.CentrifugoAPIKey = "" }, "INSTANT_CENTRIFUGO_API_KEY"},
		{"missing channels file", func(c *Config) { c.ChannelsFile = "" }, "INSTANT_CHANNELS_FILE"},
		{"bad payload mode", func(c *Config) { c.PayloadMode = "xml" }, "INSTANT_PAYLOAD_MODE"},
		{"bad api url", func(c *Config) { c.CentrifugoAPIURL = "127.0.0.1:8000" }, "INSTANT_CENTRIFUGO_API_URL"},
		{"bad second api url", func(c *Config) { c.CentrifugoAPIURL = "http://a:8000/api,b:8000" }, `"b:8000" is not an http(s) URL`},
		{"empty api url in a list", func(c *Config) { c.CentrifugoAPIURL = "http://a:8000/api," }, "INSTANT_CENTRIFUGO_API_URL"},
		{"bad second nats url", func(c *Config) { c.NATSURL = "nats://a:4222,http://b:4222" }, "INSTANT_NATS_URL"},
		{"empty nats url in a list", func(c *Config) { c.NATSURL = "nats://a:4222,,nats://b:4222" }, "INSTANT_NATS_URL"},
		{"wildcard subject", func(c *Config) { c.Subject = "instant.*" }, "INSTANT_SUBJECT"},
		{"rejections inside the subject", func(c *Config) { c.RejectedPrefix = "instant.publish.rejected" }, "INSTANT_REJECTED_PREFIX"},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }, "INSTANT_CONCURRENCY"},
		{"negative batch", func(c *Config) { c.BatchMax = -1 }, "INSTANT_BATCH_MAX"},
		{"zero timeout", func(c *Config) { c.CentrifugoTimeout = 0 }, "INSTANT_CENTRIFUGO_TIMEOUT"},
		{"huge envelopes", func(c *Config) { c.MaxEnvelopeBytes = 64 << 20 }, "INSTANT_MAX_ENVELOPE_BYTES"},
		{"two nats credentials", func(c *Config) { c.NATSToken, c.NATSCreds = "t", "f.creds" }, "INSTANT_NATS_TOKEN"},
		{"user without password", func(c *Config) { c.NATSUser = "u" }, "INSTANT_NATS_PASSWORD"},
		{"cert without key", func(c *Config) { c.NATSTLSCert = "c.pem" }, "INSTANT_NATS_TLS_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.wantIn)
			}
		})
	}
}

func TestCentrifugoAPIURLs(t *testing.T) {
	c := validConfig()
	c.CentrifugoAPIURL = "http://a:8000/api, https://b/api"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.CentrifugoAPIURLs(), []string{"http://a:8000/api", "https://b/api"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CentrifugoAPIURLs() = %q, want %q", got, want)
	}
	c.NATSURL = "nats://a:4222, tls://b:4222,c:4222,ws://d:8080"
	if err := c.Validate(); err != nil {
		t.Errorf("several NATS servers: %v", err)
	}
}

func TestLoadConfigFromEnvironment(t *testing.T) {
	t.Setenv("INSTANT_CENTRIFUGO_API_KEY", "k")
	t.Setenv("INSTANT_CHANNELS_FILE", "/etc/instant/channels.yaml")
	t.Setenv("INSTANT_PAYLOAD_MODE", "django")
	t.Setenv("INSTANT_RETRY_BACKOFF", "1s")
	t.Setenv("SUBJECT", "not.read") // unprefixed names are never read
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.PayloadMode != "django" || c.RetryBackoff != time.Second || c.Subject != "instant.publish" {
		t.Errorf("loaded %+v", c)
	}
	t.Setenv("INSTANT_CENTRIFUGO_API_KEY", "")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "INSTANT_CENTRIFUGO_API_KEY") {
		t.Errorf("without the API key: %v, want an error naming it", err)
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	if err := Usage(&buf); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		line := ""
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(l, name+" ") {
				line = l
			}
		}
		if line == "" {
			t.Errorf("--help does not list %s", name)
			continue
		}
		if def := f.Tag.Get("default"); def != "" && !strings.Contains(line, def) {
			t.Errorf("--help line for %s lacks its default %q: %q", name, def, line)
		}
		if f.Tag.Get("desc") == "" {
			t.Errorf("%s has no description", name)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	c := DefaultConfig()
	if got, want := c.MemoryLimit(), int64(96<<20); got != want {
		t.Errorf("default memory limit %d, want %d (16 MiB pending + 4 × 4 MiB requests + 2 × 16 MiB NATS + 32 MiB)", got, want)
	}
	c.MaxPendingBytes, c.Concurrency = 64<<20, 8
	if got, want := c.MemoryLimit(), int64(64+8*4+2*16+32)<<20; got != want {
		t.Errorf("memory limit %d, want %d: it follows the settings", got, want)
	}
}

// TestReadmeListsEveryMetric: every metric the bridge registers is named in
// README.md.
func TestReadmeListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		n++
		if !strings.Contains(string(readme), "`"+name) {
			t.Errorf("README.md does not name the metric %s", name)
		}
	}
	if n < 10 {
		t.Fatalf("only %d bridge metrics gathered: the test reads the wrong registry", n)
	}
}
