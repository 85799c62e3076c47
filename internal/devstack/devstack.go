// Package devstack runs the whole of Instant on one machine for
// development (cmd/devstack, make run): an embedded NATS server with
// JetStream, a real Centrifugo, the bridge and the token service, plus a
// websocket "tail" that prints every message that reaches Centrifugo.
package devstack

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/tokensvc"
)

// Options are the command-line flags of devstack.
type Options struct {
	Dir            string
	NATSPort       int
	CentrifugoPort int
	TokensvcAddr   string
	BridgeHTTP     string
	PayloadMode    string
	Delivery       string
	SiteName       string
	Tail           bool
}

// ParseFlags defines the flags on fs and parses args.
func ParseFlags(fs *flag.FlagSet, args []string) (Options, error) {
	var o Options
	fs.StringVar(&o.Dir, "dir", ".devstack", "directory for state, generated files and logs")
	fs.IntVar(&o.NATSPort, "nats-port", 4222, "NATS client port")
	fs.IntVar(&o.CentrifugoPort, "centrifugo-port", 8000, "Centrifugo HTTP port (API, websocket)")
	fs.StringVar(&o.TokensvcAddr, "tokensvc-addr", "127.0.0.1:8090", "token service listen address")
	fs.StringVar(&o.BridgeHTTP, "bridge-http", "127.0.0.1:9090", "bridge metrics and health listen address")
	fs.StringVar(&o.PayloadMode, "payload-mode", "object", "publication data format: object or django")
	fs.StringVar(&o.SiteName, "site", "site", "site name stamped on messages")
	fs.StringVar(&o.Delivery, "delivery", "core", "bridge delivery mode: core or jetstream (stored, dead letters; see bridge dlq --help)")
	fs.BoolVar(&o.Tail, "tail", true, "print every message Centrifugo delivers (a superuser websocket subscriber)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "devstack: run NATS, Centrifugo, the bridge and the token service locally.\n\nUsage: devstack [flags]\n\n")
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	return o, err
}

// Stack is a running development stack.
type Stack struct {
	o            Options
	dir          string
	log          *zap.Logger
	apiKey       string
	hmacKey      string
	sessionKey   string
	channelsFile string
	usersFile    string

	nats   *stack.NATS
	cf     *stack.Centrifugo
	bridge *stack.Bridge
	ts     *tokensvc.Service

	closers []func() // run in reverse order by Close
}

// Start starts the stack and prints how to use it on stdout; the programs
// log on stderr. Close stops it.
func Start(ctx context.Context, o Options, stdout, stderr io.Writer) (*Stack, error) {
	s := &Stack{o: o, apiKey: stack.Secret(24), hmacKey: stack.Secret(24), sessionKey: stack.Secret(24)}
	var err error
	if s.log, err = logging.New("info", "console"); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.log.Sync() })
	steps := []func(context.Context) error{
		s.writeFiles,
		s.startNATS,
		s.startCentrifugo,
		func(ctx context.Context) error { return s.startBridge(ctx, stderr) },
		s.startTokensvc,
	}
	if o.Tail {
		steps = append(steps, func(context.Context) error { return s.startTail(stdout) })
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.printUsage(stdout)
	return s, nil
}

// Close stops everything Start started, in reverse order.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func (s *Stack) writeFiles(context.Context) error {
	if err := os.MkdirAll(s.o.Dir, 0o700); err != nil {
		return err
	}
	var err error
	if s.dir, err = filepath.Abs(s.o.Dir); err != nil {
		return err
	}
	s.channelsFile, s.usersFile, err = writeFiles(s.dir)
	return err
}

func (s *Stack) startNATS(context.Context) error {
	n, err := stack.StartNATS(stack.NATSOptions{
		Port: s.o.NATSPort, JetStream: true, StoreDir: filepath.Join(s.dir, "nats"),
	})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	s.nats = n
	s.closers = append(s.closers, n.Stop)
	return nil
}

func (s *Stack) startCentrifugo(ctx context.Context) error {
	cfDir := filepath.Join(s.dir, "centrifugo")
	if err := os.MkdirAll(cfDir, 0o700); err != nil {
		return err
	}
	cf, err := stack.StartCentrifugo(ctx, stack.CentrifugoOptions{
		Dir: cfDir, Port: s.o.CentrifugoPort, APIKey: s.apiKey, HMACSecret: s.hmacKey, LogLevel: "info",
	})
	if err != nil {
		return fmt.Errorf("centrifugo: %w", err)
	}
	s.cf = cf
	s.closers = append(s.closers, func() { _ = cf.Stop() })
	return nil
}

// bridgeShutdown is the bridge's INSTANT_SHUTDOWN_TIMEOUT; Close waits a
// little longer before killing it.
const bridgeShutdown = 10 * time.Second

// canaryInterval is the bridge's INSTANT_CANARY_INTERVAL.
const canaryInterval = 5 * time.Second

// startBridge builds the bridge into dir/bin and runs it, its output on
// stderr and in dir/bridge.log.
func (s *Stack) startBridge(ctx context.Context, stderr io.Writer) error {
	s.log.Info("building the bridge", zap.String("package", stack.BridgePackage))
	bin, err := (&stack.Binary{Package: stack.BridgePackage, Dir: filepath.Join(s.dir, "bin")}).Path(ctx)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	b, err := stack.StartBridge(ctx, stack.BridgeOptions{
		Binary: bin,
		Env: []string{
			"INSTANT_NATS_URL=" + s.nats.URL(),
			"INSTANT_CENTRIFUGO_API_URL=" + s.cf.APIURL(),
			"INSTANT_CENTRIFUGO_API_KEY=" + s.apiKey,
			"INSTANT_CHANNELS_FILE=" + s.channelsFile,
			"INSTANT_PAYLOAD_MODE=" + s.o.PayloadMode,
			"INSTANT_SITE_NAME=" + s.o.SiteName,
			"INSTANT_DELIVERY=" + s.o.Delivery,
			"INSTANT_LOG_LEVEL=info",
			"INSTANT_LOG_FORMAT=console",
			"INSTANT_SHUTDOWN_TIMEOUT=" + bridgeShutdown.String(),
			// The end-to-end canary: /readyz says whether probes make it
			// through NATS, the bridge and Centrifugo to a websocket.
			"INSTANT_CANARY_INTERVAL=" + canaryInterval.String(),
			"INSTANT_CENTRIFUGO_HMAC_KEY=" + s.hmacKey,
		},
		HTTPAddr: s.o.BridgeHTTP,
		LogPath:  filepath.Join(s.dir, "bridge.log"),
		Output:   stderr,
	})
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	s.bridge = b
	s.closers = append(s.closers, func() {
		if err := b.Stop(bridgeShutdown + 5*time.Second); err != nil {
			s.log.Warn("bridge", zap.Error(err))
		}
	})
	return nil
}

func (s *Stack) startTokensvc(ctx context.Context) error {
	cfg := tokensvc.DefaultConfig()
	cfg.HTTPAddr, cfg.SiteName, cfg.ChannelsFile, cfg.UsersFile = s.o.TokensvcAddr, s.o.SiteName, s.channelsFile, s.usersFile
	cfg.CentrifugoHMACKey, cfg.SessionKey, cfg.Anonymous = s.hmacKey, s.sessionKey, true
	cfg.SessionCookieSecure = false // plain HTTP on localhost
	cfg.Demo, cfg.DemoWSURL = true, s.cf.WebsocketURL()
	// Live revocation: edits of the files take access away at once.
	cfg.CentrifugoAPIURL, cfg.CentrifugoAPIKey = s.cf.APIURL(), s.apiKey
	ts, err := tokensvc.Start(ctx, cfg, s.log)
	if err != nil {
		return fmt.Errorf("token service: %w", err)
	}
	s.ts = ts
	s.closers = append(s.closers, func() { _ = ts.Close() })
	return nil
}

func (s *Stack) startTail(stdout io.Writer) error {
	closeTail, err := tail(s.cf.WebsocketURL(), s.hmacKey, s.channelsFile, stdout)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	s.closers = append(s.closers, closeTail)
	return nil
}

func (s *Stack) printUsage(out io.Writer) {
	natsURL := s.nats.URL()
	fmt.Fprintf(out, `
Instant is running (Ctrl-C stops it).

  Live demo: open http://%s/ and log in (alice or admin, password %q)

  NATS            %s
  Centrifugo      %s   (websocket %s)
  token service   http://%s
  bridge metrics  http://%s/metrics   (/readyz: NATS, Centrifugo and the end-to-end canary)

Publish (nats CLI: go install github.com/nats-io/natscli/nats@v0.5.0):
  nats -s %s req instant.publish '{"channel":"$users","message":"hi","event_class":"important"}'
  nats -s %s req instant.publish '{"channel":"$nope","message":"hi"}'     # rejected: unknown_channel
  nats -s %s sub 'instant.rejected.>'                                      # watch rejections

Log in and get tokens (demo users alice and admin, password %q):
  curl -s -c /tmp/instant.cookies -H 'Content-Type: application/json' \
       -d '{"username":"alice","password":"%s"}' http://%s/instant/login/

Files: %s (channels.yaml and users.yaml are reloaded when edited)
`, s.ts.Addr(), DemoPassword, natsURL, s.cf.URL(), s.cf.WebsocketURL(), s.ts.Addr(), s.bridge.HTTPAddr(), natsURL, natsURL, natsURL,
		DemoPassword, DemoPassword, s.ts.Addr(), s.dir)
}
