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

	mode         string // modeCompare, modeRounds or modeFlood
	smoke        bool   // a few seconds of load, no target assertions
	jsonPath     string // compare and flood: where the JSON report goes
	spread       int    // compare: channels of the bridge-core spread row
	single       int    // compare: messages of each direct-single row
	singlePubs   int    // compare: publishers of the concurrent direct-single row
	orderedPipe  int    // compare: commands per direct-ordered request
	floodFor     time.Duration
	floodFlight  int // flood: requests in flight per producer
	floodModes   []string
	floodFlagSet bool     // -flood was given
	rows         []string // compare: only these rows (development); all when empty
	hotPathCount int      // compare: -count of the hot-path Go benchmark; 0 skips it
}

// The modes of a run.
const (
	modeCompare = "compare" // issue 13: every path on the same Centrifugo
	modeRounds  = "rounds"  // issue 6 (and 8 with -jetstream): direct vs bridge, in rounds
	modeFlood   = "flood"   // issue 12: the bridge's peak memory under the largest envelopes
)

// usage is the head of --help; the flags follow.
const usage = `instant-bench: measure Instant's bridge against a real Centrifugo, in one run.

-mode compare (the default) compares, on the same Centrifugo with the same
subscriber and events, every way to get events to it: direct-single (one
HTTP publish per event, 1 and -single-publishers publishers), direct-batch
(gocent Pipe, -pipe per request, -publishers publishers), direct-ordered (1
publisher, -ordered-pipe per request, one request in flight at a time, the
next one encoded meanwhile), bridge-core
(NATS requests with receipts, -publishers producers, on 1 channel and on
-spread channels), bridge-jetstream (JetStream async publishes, acks awaited,
drained by a bridge in jetstream mode with its defaults) and
centrifugo-consumer (the ready payloads on a stream of their own, drained by
Centrifugo's nats_jetstream consumer in publication data mode). Every round
runs each row's throughput scenario, then its latency scenario at -rate.
Before the comparison starts its processes, the hot-path Go benchmark (go
test -bench HotPath -count -hot-path-count ./internal/bridge/) runs.
Prints a Markdown table and writes -json. -smoke: a few seconds of load,
no hot-path benchmark.

-mode flood (or -flood): the bridge with its default settings, in each
payload mode, under a flood of the largest valid envelopes (64 KiB, 100
channels, a message of '<', '>' and '&') sent as requests with receipts for
-flood-duration; reports its peak RSS and that every envelope was answered.

-mode rounds (the benchmark of issues 6 and 8; -jetstream selects it):
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
	fs.StringVar(&c.mode, "mode", modeCompare, "compare (every path, issue 13), flood (peak memory, issue 12) or rounds (direct vs bridge in rounds, issues 6 and 8; the default when -jetstream is given)")
	fs.BoolVar(&c.smoke, "smoke", false, "compare mode with a few seconds of load and no target assertions (the test TestSmoke runs it)")
	fs.BoolVar(&c.floodFlagSet, "flood", false, "same as -mode flood")
	fs.StringVar(&c.jsonPath, "json", "instant-bench.json", "compare and flood modes: write the results as JSON to this file (empty: do not)")
	fs.IntVar(&c.spread, "spread", 8, "compare: channels the second bridge-core row spreads its envelopes over")
	fs.IntVar(&c.single, "single-messages", 10000, "compare: messages of each direct-single row (one HTTP request each)")
	fs.IntVar(&c.singlePubs, "single-publishers", 16, "compare: publishers of the concurrent direct-single row (the other has 1)")
	fs.IntVar(&c.orderedPipe, "ordered-pipe", 2000, "compare: publish commands per direct-ordered request (the bridge's INSTANT_BATCH_MAX)")
	fs.IntVar(&c.hotPathCount, "hot-path-count", 3, "compare: runs (go test -count) of the hot-path benchmark (go test -bench HotPath ./internal/bridge/), run before the comparison starts its processes; 0 skips it (the default with -smoke)")
	fs.DurationVar(&c.floodFor, "flood-duration", 20*time.Second, "flood: how long to flood the bridge in each payload mode")
	fs.IntVar(&c.floodFlight, "flood-inflight", 32, "flood: requests in flight per producer (-publishers producers)")
	fs.Func("rows", "compare: run only these comma-separated rows, e.g. bridge-jetstream,centrifugo-consumer (for development; figures of missing rows are 0)", func(s string) error {
		c.rows = strings.Split(s, ",")
		return nil
	})
	fs.Func("flood-modes", "flood: comma-separated payload modes (default object,django)", func(s string) error {
		c.floodModes = strings.Split(s, ",")
		return nil
	})
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
	c.applyMode(fs)
	return c, c.validate()
}

// applyMode settles the mode (-flood, -jetstream and -smoke imply one) and
// the smoke run's small sizes.
func (c *config) applyMode(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case c.floodFlagSet:
		c.mode = modeFlood
	case c.jetstream && !set["mode"]:
		c.mode = modeRounds
	}
	if len(c.floodModes) == 0 {
		c.floodModes = []string{"object", "django"}
	}
	if !c.smoke {
		return
	}
	c.mode, c.strict = modeCompare, false
	small := []struct {
		name string
		dst  *int
		v    int
	}{{"messages", &c.messages, 4000}, {"single-messages", &c.single, 500}, {"rounds", &c.rounds, 1}, {"warmup", &c.warmup, 200}, {"hot-path-count", &c.hotPathCount, 0}}
	for _, s := range small {
		if !set[s.name] {
			*s.dst = s.v
		}
	}
	if !set["duration"] {
		c.duration = 500 * time.Millisecond
	}
}

// validate checks the flags' values.
func (c config) validate() error {
	positive := []struct {
		name string
		v    int
	}{{"-messages", c.messages}, {"-publishers", c.publishers}, {"-pipe", c.pipe}, {"-inflight", c.inflight}, {"-rate", c.rate}, {"-channels", c.channels}, {"-rounds", c.rounds},
		{"-spread", c.spread}, {"-single-messages", c.single}, {"-single-publishers", c.singlePubs}, {"-ordered-pipe", c.orderedPipe}, {"-flood-inflight", c.floodFlight}}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s=%d: must be positive", p.name, p.v)
		}
	}
	if c.warmup < 0 || c.hotPathCount < 0 {
		return fmt.Errorf("-warmup=%d, -hot-path-count=%d: must not be negative", c.warmup, c.hotPathCount)
	}
	if c.duration <= 0 || c.drainTimeout <= 0 {
		return fmt.Errorf("-duration and -drain-timeout must be positive durations such as 10s")
	}
	if c.mode != modeCompare && c.mode != modeRounds && c.mode != modeFlood {
		return fmt.Errorf("-mode=%q: want compare, rounds or flood", c.mode)
	}
	if c.jetstream && c.mode != modeRounds {
		return fmt.Errorf("-jetstream belongs to -mode rounds (compare mode always measures jetstream)")
	}
	for _, m := range c.floodModes {
		if m != "object" && m != "django" {
			return fmt.Errorf("-flood-modes: %q is not a payload mode (object, django)", m)
		}
	}
	if c.floodFor <= 0 {
		return fmt.Errorf("-flood-duration must be a positive duration such as 20s")
	}
	if !c.smoke && c.duration/time.Duration(c.rounds) < time.Second {
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

// channelNames are the channels messages are spread over (rounds mode),
// and every channel of the compare mode.
func (c config) channelNames() []string {
	n := c.channels
	if c.mode == modeCompare {
		n = c.spread
	}
	return channelNames(c.channel, n)
}

// channelNames are base, base-1, ..., base-(n-1).
func channelNames(base string, n int) []string {
	names := []string{base}
	for i := 1; i < n; i++ {
		names = append(names, fmt.Sprintf("%s-%d", base, i))
	}
	return names
}
