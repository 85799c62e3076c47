package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// config holds the command-line flags.
type config struct {
	messages     int           // messages per throughput scenario
	publishers   int           // direct publishers and bridge producers
	pipe         int           // commands per direct Pipe request
	inflight     int           // outstanding requests per bridge producer
	rate         int           // envelopes per second in the latency scenarios
	rounds       int           // rounds of the four scenarios
	duration     time.Duration // length of each latency scenario
	warmup       int           // messages sent before each scenario, not measured
	drainTimeout time.Duration // how long to wait for the last deliveries
	protocol     string        // subscriber protocol: json or protobuf
	channel      string
	channels     int      // messages spread over this many channels
	bridgeBin    string   // prebuilt bridge binary; built from bridgePkg when empty
	bridgePkg    string   // package built when bridgeBin is empty
	bridgeEnv    []string // extra KEY=VALUE for the bridge
	centrifugo   string   // Centrifugo binary; found like the tests do when empty
	clientQueue  int      // Centrifugo client.queue_max_size in bytes; 0 keeps its default
	keep         bool     // keep the temporary directory
	strict       bool     // a missed target fails the run too
	jetstream    bool     // also run the bridge in jetstream mode
}

// usage is the head of --help; the flags follow.
const usage = `instant-bench: measure Instant's bridge against a real Centrifugo, in one run.

Starts on loopback: an embedded nats-server, Centrifugo (history on), the
bridge as a separate process (built from -bridge-pkg), and one websocket
subscriber on -channel that counts deliveries and measures end-to-end latency.
After a warm-up, each of -rounds rounds runs, back to back:
  1. direct throughput: -messages with -publishers gocent Pipe publishers,
     -pipe publishes per request
  2. bridge throughput: -messages with -publishers NATS producers awaiting
     receipts, -inflight each
  3. latency at -rate for -duration/-rounds: direct (one HTTP request per
     event), then through the bridge (paced NATS requests)
and at the end the bridge's peak RSS (VmHWM) over the whole run is read.
With -jetstream, JetStream is enabled in nats-server (temporary store dir),
a second bridge runs with INSTANT_DELIVERY=jetstream on subject instant.js,
and every round also runs, after 2, a jetstream throughput scenario (-messages
published with JetStream async publish by -publishers producers, -inflight
publish acks pending each) and, after 3, a jetstream latency scenario; the
report then counts the jetstream bridge's acks, its requests that expect a
reply and its messages as NATS sees them.
Prints a Markdown report. Exits 1 when a message is lost or a publish fails
(or, with -strict, a target is missed), 2 when the run cannot be set up.

Usage: go run ./cmd/instant-bench [flags]

Flags:
`

func parseFlags(args []string, stdout io.Writer) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("instant-bench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.IntVar(&c.messages, "messages", 100000, "messages sent in each throughput scenario (direct and bridge)")
	fs.IntVar(&c.publishers, "publishers", 4, "direct HTTP publishers, and NATS producers through the bridge")
	fs.IntVar(&c.pipe, "pipe", 500, "publish commands per direct gocent Pipe request")
	fs.IntVar(&c.inflight, "inflight", 1000, "requests in flight per bridge producer (receipts awaited)")
	fs.IntVar(&c.rate, "rate", 1000, "envelopes per second in the latency scenarios")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each latency scenario, summed over the rounds")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds of direct and bridge scenarios, back to back, so both see the same background load; the throughput ratio is the median of the rounds'")
	fs.IntVar(&c.warmup, "warmup", 2000, "messages sent (and checked) before each scenario, not measured")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 20*time.Second, "how long to wait for outstanding deliveries and receipts after sending")
	fs.StringVar(&c.protocol, "protocol", "json", "websocket subscriber protocol: json (as browsers) or protobuf")
	fs.StringVar(&c.channel, "channel", "bench", "channel published to and subscribed")
	fs.IntVar(&c.channels, "channels", 1, "spread messages round-robin over this many channels (-channel, -channel-1, ...), all subscribed; 1 is the benchmark as specified")
	fs.StringVar(&c.bridgeBin, "bridge-bin", "", "prebuilt bridge binary (default: go build -bridge-pkg into the temporary directory)")
	fs.StringVar(&c.bridgePkg, "bridge-pkg", "./cmd/bridge", "package built as the bridge, relative to the module root")
	fs.Func("bridge-env", "extra `KEY=VALUE` in the bridge's environment, e.g. INSTANT_BATCH_MAX=500 or GOGC=200 (repeatable)", func(s string) error {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return fmt.Errorf("want NAME=value, got %q", s)
		}
		c.bridgeEnv = append(c.bridgeEnv, s)
		return nil
	})
	fs.StringVar(&c.centrifugo, "centrifugo-bin", "", "Centrifugo binary (default: $INSTANT_CENTRIFUGO_BIN, $GOBIN, $GOPATH/bin, $PATH)")
	fs.IntVar(&c.clientQueue, "client-queue-max-size", 64<<20, "Centrifugo's client.queue_max_size in bytes (set through CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE); its default of 1 MiB lets Centrifugo disconnect the one subscriber as a slow client when a busy machine delays it; 0 keeps the default")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs of Centrifugo and the bridge)")
	fs.BoolVar(&c.jetstream, "jetstream", false, "also measure the jetstream delivery mode: a second bridge with INSTANT_DELIVERY=jetstream (JetStream on in the embedded nats-server), producers using JetStream async publish; adds a throughput and a latency scenario to every round and counts the bridge's acks and round trips")
	fs.BoolVar(&c.strict, "strict", false, "exit 1 when a target is missed, not only on lost messages or errors")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return c, c.validate()
}

// validate checks the flags' values.
func (c config) validate() error {
	positive := []struct {
		name string
		v    int
	}{{"-messages", c.messages}, {"-publishers", c.publishers}, {"-pipe", c.pipe}, {"-inflight", c.inflight}, {"-rate", c.rate}, {"-channels", c.channels}, {"-rounds", c.rounds}}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s=%d: must be positive", p.name, p.v)
		}
	}
	if c.warmup < 0 {
		return fmt.Errorf("-warmup=%d: must not be negative", c.warmup)
	}
	if c.duration <= 0 || c.drainTimeout <= 0 {
		return fmt.Errorf("-duration and -drain-timeout must be positive durations such as 10s")
	}
	if c.duration/time.Duration(c.rounds) < time.Second {
		return fmt.Errorf("-duration=%s over -rounds=%d: want at least 1s per round", c.duration, c.rounds)
	}
	if c.protocol != "json" && c.protocol != "protobuf" {
		return fmt.Errorf("-protocol=%q: want json or protobuf", c.protocol)
	}
	if c.channel == "" || strings.ContainsAny(c.channel, "\"\\ \t\r\n") {
		return fmt.Errorf("-channel=%q: want a non-empty channel name without quotes, backslashes or spaces", c.channel)
	}
	return nil
}

// channelNames are the channels messages are spread over.
func (c config) channelNames() []string {
	names := []string{c.channel}
	for i := 1; i < c.channels; i++ {
		names = append(names, fmt.Sprintf("%s-%d", c.channel, i))
	}
	return names
}
