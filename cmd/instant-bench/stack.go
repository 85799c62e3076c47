package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/centrifugal/gocent/v3"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/tokens"
)

// bench is one benchmark run and everything it started.
type bench struct {
	cfg  config
	args []string
	out  io.Writer // the report
	log  io.Writer // progress

	dir      string
	modRoot  string
	nats     *stack.NATS
	cf       *stack.Centrifugo
	cfPID    int
	apiKey   string
	hmacKey  string
	bridge   *stack.Bridge
	js       *jsSide       // -jetstream: the second bridge's producers and observers
	jsBridge *stack.Bridge // -jetstream: the bridge in jetstream mode
	sub      *subscriber
	api      *gocent.Client // direct publishes
	// orderedAPI is api for direct-ordered: its transport (inTurn) holds
	// the next request until the current one is answered.
	orderedAPI *gocent.Client
	info       machineInfo

	closers []func() // run in reverse order by close
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "instant-bench: "+format+"\n", args...)
}

// setup starts NATS, Centrifugo, the bridge and the subscriber.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.dir, err = os.MkdirTemp("", "instant-bench-"); err != nil {
		return err
	}
	b.closers = append(b.closers, func() {
		if b.cfg.keep {
			b.logf("kept %s", b.dir)
			return
		}
		_ = os.RemoveAll(b.dir)
	})
	if b.modRoot, err = stack.ModuleRoot(ctx); err != nil {
		return fmt.Errorf("%w (run instant-bench from the repository root)", err)
	}
	b.info = collectMachineInfo(ctx, b.modRoot)
	bin, err := b.bridgeBinary(ctx) // first: building is the slowest step
	if err != nil {
		return err
	}
	if err := b.startNATS(); err != nil {
		return err
	}
	if b.cfg.mode == modeCompare {
		if err := createConsumerStream(ctx, b.nats.URL()); err != nil {
			return err
		}
	}
	if err := b.startCentrifugo(ctx); err != nil {
		return err
	}
	if err := b.startBridges(ctx, bin); err != nil {
		return err
	}
	b.logf("connecting the subscriber")
	signer, err := tokens.NewHMAC([]byte(b.hmacKey))
	if err != nil {
		return err
	}
	b.sub, err = connectSubscriber(ctx, b.cf.WebsocketURL(), b.cfg.protocol, b.cfg.channelNames(), signer)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, b.sub.close)
	return nil
}

// bridgeBinary is -bridge-bin, or -bridge-pkg built into the temporary directory.
func (b *bench) bridgeBinary(ctx context.Context) (string, error) {
	if b.cfg.bridgeBin != "" {
		return b.cfg.bridgeBin, nil
	}
	b.logf("building %s", b.cfg.bridgePkg)
	return (&stack.Binary{Package: b.cfg.bridgePkg, Dir: b.dir}).Path(ctx)
}

func (b *bench) startNATS() error {
	b.logf("starting nats-server")
	o := stack.NATSOptions{MaxPayload: 1 << 20}
	if b.withJetStream() {
		o.JetStream, o.StoreDir = true, filepath.Join(b.dir, "jetstream")
	}
	n, err := stack.StartNATS(o)
	if err != nil {
		return err
	}
	b.nats = n
	b.closers = append(b.closers, n.Stop)
	return nil
}

func (b *bench) startCentrifugo(ctx context.Context) error {
	b.logf("starting centrifugo")
	b.apiKey, b.hmacKey = stack.Secret(16), stack.Secret(16)
	cfDir := filepath.Join(b.dir, "centrifugo")
	if err := os.Mkdir(cfDir, 0o700); err != nil {
		return err
	}
	o := stack.CentrifugoOptions{
		Binary: b.cfg.centrifugo, Dir: cfDir, APIKey: b.apiKey, HMACSecret: b.hmacKey, LogLevel: "error",
	}
	if b.cfg.clientQueue > 0 {
		o.Env = []string{"CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE=" + strconv.Itoa(b.cfg.clientQueue)}
	}
	switch b.cfg.mode {
	case modeCompare:
		o.Extra = map[string]any{"consumers": consumerConfig(b.nats.URL())}
	case modeFlood: // no history (see floodSetup)
		o.Extra = map[string]any{"channel": map[string]any{"without_namespace": map[string]any{}}}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cf, err := stack.StartCentrifugo(sctx, o)
	if err != nil {
		return fmt.Errorf("start centrifugo: %w", err)
	}
	b.cf, b.cfPID = cf, cf.PID()
	b.closers = append(b.closers, func() { _ = cf.Stop() })
	b.info.centrifugo = centrifugoVersion(ctx, b.cfg.centrifugo)
	transport := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	b.api = gocent.New(gocent.Config{Addr: cf.APIURL(), Key: b.apiKey, HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: transport}})
	b.orderedAPI = gocent.New(gocent.Config{Addr: cf.APIURL(), Key: b.apiKey,
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &inTurn{next: transport}}})
	return nil
}

// startBridges writes the channels file and starts the bridge and, with
// -jetstream, the jetstream-mode bridge and its producers.
func (b *bench) startBridges(ctx context.Context, bin string) error {
	chFile := filepath.Join(b.dir, "channels.yaml")
	yaml := "channels:\n"
	for _, ch := range b.cfg.channelNames() {
		yaml += fmt.Sprintf("  - name: %q\n    level: public\n", ch)
	}
	if err := os.WriteFile(chFile, []byte(yaml), 0o600); err != nil {
		return err
	}
	var err error
	b.logf("starting bridge")
	if b.bridge, err = b.startBridge(ctx, bin, chFile, "instant-bench-bridge", "bridge.log"); err != nil {
		return err
	}
	if !b.withJetStream() {
		return nil
	}
	b.logf("starting bridge in jetstream mode")
	b.jsBridge, err = b.startBridge(ctx, bin, chFile, jsBridgeName, "bridge-jetstream.log",
		"INSTANT_DELIVERY=jetstream", "INSTANT_SUBJECT="+jsSubject)
	if err != nil {
		return err
	}
	return b.startJetStreamSide(ctx)
}

// startBridge starts a bridge process named name (also its NATS connection
// name) with the benchmark's configuration plus env, and waits for its /readyz.
func (b *bench) startBridge(ctx context.Context, bin, chFile, name, logName string, env ...string) (*stack.Bridge, error) {
	base := []string{
		"INSTANT_NATS_URL=" + b.nats.URL(),
		"INSTANT_NATS_NAME=" + name,
		"INSTANT_CENTRIFUGO_API_URL=" + b.cf.APIURL(),
		"INSTANT_CENTRIFUGO_API_KEY=" + b.apiKey,
		"INSTANT_CHANNELS_FILE=" + chFile,
		"INSTANT_SITE_NAME=bench",
		"INSTANT_LOG_LEVEL=warn",
	}
	p, err := stack.StartBridge(ctx, stack.BridgeOptions{
		Binary:  bin,
		Name:    name,
		Env:     append(append(base, env...), b.cfg.bridgeEnv...),
		LogPath: filepath.Join(b.dir, logName),
	})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() {
		if err := p.Stop(10 * time.Second); err != nil {
			b.logf("stop %s: %v", name, err)
		}
	})
	return p, nil
}

// withJetStream: JetStream on in nats-server, and a bridge in jetstream mode.
func (b *bench) withJetStream() bool { return b.cfg.jetstream || b.cfg.mode == modeCompare }

// close stops everything setup started, in reverse order.
func (b *bench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}
