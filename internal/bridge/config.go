package bridge

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/confdefaults"
	"github.com/instant-go/instant/internal/natsbus"
	"github.com/instant-go/instant/pkg/envelope"
)

// Config is the bridge's configuration, read from INSTANT_* variables. The
// names are spelled out in full and read with no envconfig prefix, so that
// envconfig never falls back to an unprefixed variable such as SUBJECT.
type Config struct {
	NATSURL          string `envconfig:"INSTANT_NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma-separated"`
	NATSName         string `envconfig:"INSTANT_NATS_NAME" default:"instant-bridge" desc:"connection name shown in NATS monitoring"`
	NATSCreds        string `envconfig:"INSTANT_NATS_CREDS" desc:"path of a NATS .creds file (JWT + nkey seed)"`
	NATSNKey         string `envconfig:"INSTANT_NATS_NKEY" desc:"path of an nkey seed file"`
	NATSUser         string `envconfig:"INSTANT_NATS_USER" desc:"NATS user name (with INSTANT_NATS_PASSWORD)"`
	NATSPassword     string `envconfig:"INSTANT_NATS_PASSWORD" desc:"NATS password (secret)"`
	NATSToken        string `envconfig:"INSTANT_NATS_TOKEN" desc:"NATS authentication token (secret)"`
	NATSTLSCA        string `envconfig:"INSTANT_NATS_TLS_CA" desc:"CA certificate file to verify the NATS server"`
	NATSTLSCert      string `envconfig:"INSTANT_NATS_TLS_CERT" desc:"client certificate file for NATS mutual TLS"`
	NATSTLSKey       string `envconfig:"INSTANT_NATS_TLS_KEY" desc:"client key file for NATS mutual TLS"`
	NATSPendingMsgs  int    `envconfig:"INSTANT_NATS_PENDING_MSGS" default:"65536" desc:"envelopes buffered per subscription before NATS drops (slow consumer)"`
	NATSPendingBytes int    `envconfig:"INSTANT_NATS_PENDING_BYTES" default:"16777216" desc:"bytes buffered per subscription before NATS drops (slow consumer)"`

	Subject        string `envconfig:"INSTANT_SUBJECT" default:"instant.publish" desc:"subject to receive envelopes on; SUBJECT.<producer> too"`
	QueueGroup     string `envconfig:"INSTANT_QUEUE_GROUP" default:"instant-bridge" desc:"NATS queue group shared by bridge replicas"`
	RejectedPrefix string `envconfig:"INSTANT_REJECTED_PREFIX" default:"instant.rejected" desc:"rejected envelopes are published to PREFIX.<code>"`

	CentrifugoAPIURL  string        `envconfig:"INSTANT_CENTRIFUGO_API_URL" default:"http://127.0.0.1:8000/api" desc:"Centrifugo HTTP API endpoint(s), comma-separated: requests go to the first node answering, the next on failure"`
	CentrifugoAPIKey  string        `envconfig:"INSTANT_CENTRIFUGO_API_KEY" required:"true" desc:"Centrifugo HTTP API key (http_api.key; secret)"`
	CentrifugoTimeout time.Duration `envconfig:"INSTANT_CENTRIFUGO_TIMEOUT" default:"5s" desc:"timeout of one Centrifugo API request"`

	SiteName     string `envconfig:"INSTANT_SITE_NAME" default:"site" desc:"site name stamped on every message (an envelope's site overrides it)"`
	ChannelsFile string `envconfig:"INSTANT_CHANNELS_FILE" required:"true" desc:"channels file (YAML or JSON); reloaded on change and on SIGHUP"`
	PayloadMode  string `envconfig:"INSTANT_PAYLOAD_MODE" default:"object" desc:"publication data format: object, or django (a JSON string, for django-instant clients)"`

	Delivery               string          `envconfig:"INSTANT_DELIVERY" default:"core" desc:"core (NATS subscription, at most once) or jetstream (stored, acked after Centrifugo accepted, dead letters)"`
	JetStreamStream        string          `envconfig:"INSTANT_JETSTREAM_STREAM" default:"INSTANT" desc:"jetstream: stream holding the envelopes (subjects SUBJECT and SUBJECT.>)"`
	JetStreamConsumer      string          `envconfig:"INSTANT_JETSTREAM_CONSUMER" default:"instant-bridge" desc:"jetstream: durable pull consumer shared by the bridge replicas"`
	JetStreamCreate        bool            `envconfig:"INSTANT_JETSTREAM_CREATE" default:"true" desc:"jetstream: create or update the streams and the consumer; false: use existing ones"`
	JetStreamReplicas      int             `envconfig:"INSTANT_JETSTREAM_REPLICAS" default:"1" desc:"jetstream: replicas of the streams it creates (3 in a NATS cluster)"`
	JetStreamMaxDeliver    int             `envconfig:"INSTANT_JETSTREAM_MAX_DELIVER" default:"30" desc:"jetstream: deliveries of an envelope before it is dead-lettered"`
	JetStreamBackoff       []time.Duration `envconfig:"INSTANT_JETSTREAM_BACKOFF" default:"1s,2s,5s,10s,30s" desc:"jetstream: redelivery delays after a retryable failure; the last repeats"`
	JetStreamAckWait       time.Duration   `envconfig:"INSTANT_JETSTREAM_ACK_WAIT" default:"30s" desc:"jetstream: time before an unacknowledged envelope (crashed replica) is redelivered"`
	JetStreamMaxAckPending int             `envconfig:"INSTANT_JETSTREAM_MAX_ACK_PENDING" default:"5000" desc:"jetstream: most envelopes delivered and not yet acknowledged, across replicas; a replica fetches up to half of it ahead"`
	DLQ                    string          `envconfig:"INSTANT_DLQ" default:"INSTANT_DLQ" desc:"jetstream: dead-letter stream"`
	ReceiptPrefix          string          `envconfig:"INSTANT_RECEIPT_PREFIX" default:"_INBOX." desc:"receipts (reply subjects, and Instant-Reply-To in jetstream mode) are published only to subjects with this prefix"`
	DLQSubject             string          `envconfig:"INSTANT_DLQ_SUBJECT" default:"instant.dlq" desc:"jetstream: dead letters are stored on DLQ_SUBJECT.<code>"`

	HTTPAddr  string `envconfig:"INSTANT_BRIDGE_HTTP_ADDR" default:":9090" desc:"listen address of /metrics, /healthz and /readyz (empty: off)"`
	LogLevel  string `envconfig:"INSTANT_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"INSTANT_LOG_FORMAT" default:"json" desc:"json or console"`

	MaxEnvelopeBytes int `envconfig:"INSTANT_MAX_ENVELOPE_BYTES" default:"65536" desc:"largest accepted envelope, in bytes"`
	MaxChannels      int `envconfig:"INSTANT_MAX_CHANNELS" default:"100" desc:"most channels in one envelope"`
	MaxDataDepth     int `envconfig:"INSTANT_MAX_DATA_DEPTH" default:"32" desc:"deepest nesting of an envelope's data"`

	BatchMax        int           `envconfig:"INSTANT_BATCH_MAX" default:"2000" desc:"most commands in one Centrifugo API request"`
	Concurrency     int           `envconfig:"INSTANT_CONCURRENCY" default:"4" desc:"most Centrifugo API requests in flight"`
	QueueSize       int           `envconfig:"INSTANT_QUEUE_SIZE" default:"20000" desc:"envelopes waiting for Centrifugo before receiving pauses"`
	MaxPendingBytes int           `envconfig:"INSTANT_MAX_PENDING_BYTES" default:"16777216" desc:"bytes of Centrifugo commands (encoded, all channels) waiting and in flight before receiving pauses"`
	MaxRequestBytes int           `envconfig:"INSTANT_MAX_REQUEST_BYTES" default:"4194304" desc:"largest Centrifugo request; an envelope whose commands alone exceed it is rejected too_large"`
	RetryAttempts   int           `envconfig:"INSTANT_RETRY_ATTEMPTS" default:"5" desc:"tries of a request while Centrifugo is unreachable, before upstream_unavailable"`
	RetryBackoff    time.Duration `envconfig:"INSTANT_RETRY_BACKOFF" default:"200ms" desc:"first wait between tries, doubling"`
	RetryMaxBackoff time.Duration `envconfig:"INSTANT_RETRY_MAX_BACKOFF" default:"2s" desc:"longest wait between tries"`
	ShutdownTimeout time.Duration `envconfig:"INSTANT_SHUTDOWN_TIMEOUT" default:"30s" desc:"time to finish in-flight envelopes on SIGTERM"`

	// The end-to-end canary (canary.go).
	CanaryInterval    time.Duration `envconfig:"INSTANT_CANARY_INTERVAL" desc:"canary: publish a probe envelope through NATS, the bridge and Centrifugo back to the bridge's own websocket this often (e.g. 5s); empty: off"`
	CanaryMaxMisses   int           `envconfig:"INSTANT_CANARY_MAX_MISSES" default:"3" desc:"canary: probes missed in a row (not back within INSTANT_CANARY_INTERVAL) before /readyz fails with canary_failed"`
	CentrifugoHMACKey string        `envconfig:"INSTANT_CENTRIFUGO_HMAC_KEY" desc:"canary: Centrifugo's client.token.hmac_secret_key (at least 32 bytes; secret), signs the canary's websocket tokens; required with INSTANT_CANARY_INTERVAL"`
	CentrifugoWSURL   string        `envconfig:"INSTANT_CENTRIFUGO_WS_URL" desc:"canary: Centrifugo websocket URL; empty: the first API URL's host and port with path /connection/websocket (set it with several Centrifugo nodes, or where the API port serves no websocket, as in Kubernetes)"`
}

// LoadConfig reads the configuration from the environment and validates it.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, c.Validate()
}

// DefaultConfig is the configuration with every default applied and nothing
// read from the environment; the required fields are left empty.
func DefaultConfig() Config {
	var c Config
	if err := confdefaults.Apply(&c); err != nil {
		panic(err) // the tags are constants: a bad one is a programming error
	}
	return c
}

// Validate checks values that envconfig cannot; errors name the variable.
func (c Config) Validate() error {
	if err := c.NATS().Validate(); err != nil {
		return err
	}
	if err := checkSubject("INSTANT_SUBJECT", c.Subject); err != nil {
		return err
	}
	if err := checkSubject("INSTANT_REJECTED_PREFIX", c.RejectedPrefix); err != nil {
		return err
	}
	if strings.HasPrefix(c.RejectedPrefix+".", c.Subject+".") {
		return fmt.Errorf("INSTANT_REJECTED_PREFIX=%q is inside INSTANT_SUBJECT=%q: rejections would be received again; choose another prefix", c.RejectedPrefix, c.Subject)
	}
	if !strings.HasSuffix(c.ReceiptPrefix, ".") || strings.ContainsAny(c.ReceiptPrefix, "*> \t\r\n") {
		return fmt.Errorf("INSTANT_RECEIPT_PREFIX=%q: want a subject prefix ending with a dot, without wildcards, such as _INBOX.", c.ReceiptPrefix)
	}
	if c.CentrifugoAPIKey == "" {
		return fmt.Errorf("INSTANT_CENTRIFUGO_API_KEY is empty: set it to Centrifugo's http_api.key")
	}
	for _, api := range c.CentrifugoAPIURLs() {
		if err := centrifugo.CheckAPIURL(api); err != nil {
			return fmt.Errorf("INSTANT_CENTRIFUGO_API_URL=%q: %v; want one such as http://127.0.0.1:8000/api, or several comma-separated", c.CentrifugoAPIURL, err)
		}
	}
	if c.ChannelsFile == "" {
		return fmt.Errorf("INSTANT_CHANNELS_FILE is empty: set it to the channels file (YAML or JSON)")
	}
	switch c.Delivery {
	case DeliveryCore:
	case DeliveryJetStream:
		if err := c.validateJetStream(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("INSTANT_DELIVERY=%q: want core or jetstream", c.Delivery)
	}
	if err := c.validateCanary(); err != nil {
		return err
	}
	if _, err := envelope.ParseMode(c.PayloadMode); err != nil {
		return fmt.Errorf("INSTANT_PAYLOAD_MODE=%q: want object or django", c.PayloadMode)
	}
	positive := []struct {
		name string
		v    int
	}{
		{"INSTANT_NATS_PENDING_MSGS", c.NATSPendingMsgs}, {"INSTANT_NATS_PENDING_BYTES", c.NATSPendingBytes},
		{"INSTANT_MAX_ENVELOPE_BYTES", c.MaxEnvelopeBytes}, {"INSTANT_MAX_CHANNELS", c.MaxChannels},
		{"INSTANT_MAX_DATA_DEPTH", c.MaxDataDepth}, {"INSTANT_BATCH_MAX", c.BatchMax},
		{"INSTANT_CONCURRENCY", c.Concurrency}, {"INSTANT_QUEUE_SIZE", c.QueueSize},
		{"INSTANT_MAX_PENDING_BYTES", c.MaxPendingBytes}, {"INSTANT_MAX_REQUEST_BYTES", c.MaxRequestBytes},
		{"INSTANT_RETRY_ATTEMPTS", c.RetryAttempts},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s=%d: must be positive", p.name, p.v)
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"INSTANT_CENTRIFUGO_TIMEOUT", c.CentrifugoTimeout}, {"INSTANT_RETRY_BACKOFF", c.RetryBackoff},
		{"INSTANT_RETRY_MAX_BACKOFF", c.RetryMaxBackoff}, {"INSTANT_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
	}
	for _, d := range durations {
		if d.v <= 0 {
			return fmt.Errorf("%s=%s: must be a positive duration such as 5s", d.name, d.v)
		}
	}
	if c.MaxEnvelopeBytes > 8<<20 {
		return fmt.Errorf("INSTANT_MAX_ENVELOPE_BYTES=%d: at most 8 MiB", c.MaxEnvelopeBytes)
	}
	if c.MaxRequestBytes > c.MaxPendingBytes {
		return fmt.Errorf("INSTANT_MAX_REQUEST_BYTES=%d is over INSTANT_MAX_PENDING_BYTES=%d: one request must fit in what the bridge may hold", c.MaxRequestBytes, c.MaxPendingBytes)
	}
	return nil
}

// MemoryLimit is the Go soft memory limit (runtime/debug.SetMemoryLimit)
// the bridge runs with unless GOMEMLIMIT is set: what its settings let it
// hold (INSTANT_MAX_PENDING_BYTES of commands, INSTANT_CONCURRENCY requests
// of INSTANT_MAX_REQUEST_BYTES being written, INSTANT_NATS_PENDING_BYTES
// buffered by the NATS client for each of the two subscriptions, SUBJECT and
// SUBJECT.>) plus 32 MiB for everything else: 96 MiB with the defaults. Under a flood of large envelopes the garbage collector
// then runs before the heap doubles, instead of letting the process grow
// to twice what it holds; in normal operation the heap stays far below.
func (c Config) MemoryLimit() int64 {
	return int64(c.MaxPendingBytes) + int64(c.Concurrency)*int64(c.MaxRequestBytes) + 2*int64(c.NATSPendingBytes) + 32<<20
}

// Delivery modes.
const (
	DeliveryCore      = "core"
	DeliveryJetStream = "jetstream"
)

// newSource is the source of the configured delivery mode: with Validate's
// check of INSTANT_DELIVERY, the one place that knows the modes. A new mode
// is a new file implementing source (see source.go) and a case here.
func newSource(cfg Config, nc *nats.Conn, m *metrics, log *zap.Logger, stopCtx func() context.Context) source {
	switch cfg.Delivery {
	case DeliveryJetStream:
		return newJSSource(cfg, nc, m, log, stopCtx)
	default:
		return newCoreSource(cfg, nc, m, log)
	}
}

func (c Config) validateJetStream() error {
	for _, v := range []struct{ name, value string }{
		{"INSTANT_JETSTREAM_STREAM", c.JetStreamStream}, {"INSTANT_JETSTREAM_CONSUMER", c.JetStreamConsumer}, {"INSTANT_DLQ", c.DLQ},
	} {
		if v.value == "" || strings.ContainsAny(v.value, " \t\r\n.*>/\\") {
			return fmt.Errorf("%s=%q: want a name without spaces, dots, wildcards or slashes", v.name, v.value)
		}
	}
	if c.DLQ == c.JetStreamStream {
		return fmt.Errorf("INSTANT_DLQ=%q: must differ from INSTANT_JETSTREAM_STREAM", c.DLQ)
	}
	if err := checkSubject("INSTANT_DLQ_SUBJECT", c.DLQSubject); err != nil {
		return err
	}
	if strings.HasPrefix(c.DLQSubject+".", c.Subject+".") {
		return fmt.Errorf("INSTANT_DLQ_SUBJECT=%q is inside INSTANT_SUBJECT=%q: dead letters would be consumed again; choose another", c.DLQSubject, c.Subject)
	}
	if c.JetStreamMaxDeliver < 1 {
		return fmt.Errorf("INSTANT_JETSTREAM_MAX_DELIVER=%d: must be at least 1", c.JetStreamMaxDeliver)
	}
	if c.JetStreamReplicas < 1 || c.JetStreamReplicas > 5 {
		return fmt.Errorf("INSTANT_JETSTREAM_REPLICAS=%d: want 1 to 5", c.JetStreamReplicas)
	}
	if len(c.JetStreamBackoff) == 0 {
		return fmt.Errorf("INSTANT_JETSTREAM_BACKOFF is empty: want delays such as 1s,2s,5s,10s,30s")
	}
	for _, d := range c.JetStreamBackoff {
		if d <= 0 {
			return fmt.Errorf("INSTANT_JETSTREAM_BACKOFF=%v: every delay must be positive", c.JetStreamBackoff)
		}
	}
	if c.JetStreamAckWait < time.Second {
		return fmt.Errorf("INSTANT_JETSTREAM_ACK_WAIT=%s: at least 1s", c.JetStreamAckWait)
	}
	if c.JetStreamMaxAckPending < 1 {
		return fmt.Errorf("INSTANT_JETSTREAM_MAX_ACK_PENDING=%d: must be positive", c.JetStreamMaxAckPending)
	}
	return nil
}

func checkSubject(name, s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n*>") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return fmt.Errorf("%s=%q: want a NATS subject without wildcards, such as instant.publish", name, s)
	}
	return nil
}

// CentrifugoAPIURLs are the URLs of INSTANT_CENTRIFUGO_API_URL, in order,
// spaces around the commas removed (an empty entry stays, for Validate).
func (c Config) CentrifugoAPIURLs() []string { return centrifugo.SplitAPIURLs(c.CentrifugoAPIURL) }

// NATS is the NATS part of the configuration.
func (c Config) NATS() natsbus.Config {
	return natsbus.Config{
		URL: c.NATSURL, Name: c.NATSName, CredsFile: c.NATSCreds, NKeyFile: c.NATSNKey,
		User: c.NATSUser, Password: c.NATSPassword, Token: c.NATSToken,
		TLSCA: c.NATSTLSCA, TLSCert: c.NATSTLSCert, TLSKey: c.NATSTLSKey,
	}
}

// Limits are the envelope limits of the configuration.
func (c Config) Limits() envelope.Limits {
	return envelope.Limits{MaxBytes: c.MaxEnvelopeBytes, MaxChannels: c.MaxChannels, MaxDepth: c.MaxDataDepth}
}

// Usage writes the table of variables for --help.
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	const format = `{{range .}}{{usage_key .}}	{{usage_default .}}	{{if usage_required .}}required. {{end}}{{usage_description .}}
{{end}}`
	if _, err := fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING"); err != nil {
		return err
	}
	if err := envconfig.Usagef("", &Config{}, tw, format); err != nil {
		return err
	}
	return tw.Flush()
}
