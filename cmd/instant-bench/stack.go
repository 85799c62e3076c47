package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/centrifugal/gocent/v3"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/instant-go/instant/internal/centrifugoproc"
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
	nats     *server.Server
	natsURL  string
	cf       *centrifugoproc.Server
	cfPID    int
	apiKey   string
	bridge   *bridgeProc
	js       *jsSide     // -jetstream: the second bridge's producers and observers
	jsBridge *bridgeProc // -jetstream: the bridge in jetstream mode
	sub      *subscriber
	api      *gocent.Client // direct publishes
	info     machineInfo

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
	if b.modRoot, err = moduleRoot(ctx); err != nil {
		return err
	}
	b.info = collectMachineInfo(ctx, b.modRoot)

	// The bridge binary first: building is the slowest step.
	bin := b.cfg.bridgeBin
	if bin == "" {
		bin = filepath.Join(b.dir, "bridge")
		b.logf("building %s", b.cfg.bridgePkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, b.cfg.bridgePkg)
		cmd.Dir = b.modRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.cfg.bridgePkg, err, out)
		}
	}

	b.logf("starting nats-server")
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 1 << 20}
	if b.cfg.jetstream {
		opts.JetStream = true
		opts.StoreDir = filepath.Join(b.dir, "jetstream")
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go ns.Start()
	b.closers = append(b.closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats-server not ready in 10s")
	}
	b.nats = ns
	b.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port)

	b.logf("starting centrifugo")
	b.apiKey = secret()
	hmac := secret()
	cfDir := filepath.Join(b.dir, "centrifugo")
	if err := os.Mkdir(cfDir, 0o700); err != nil {
		return err
	}
	if b.cfg.clientQueue > 0 {
		// centrifugoproc writes the config file; Centrifugo also reads its
		// options from the environment it inherits.
		if err := os.Setenv("CENTRIFUGO_CLIENT_QUEUE_MAX_SIZE", strconv.Itoa(b.cfg.clientQueue)); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	b.cf, err = centrifugoproc.Start(sctx, centrifugoproc.Options{
		Binary: b.cfg.centrifugo, Dir: cfDir, APIKey: b.apiKey, HMACSecret: hmac, LogLevel: "error",
	})
	cancel()
	if err != nil {
		return fmt.Errorf("start centrifugo: %w", err)
	}
	b.closers = append(b.closers, func() { _ = b.cf.Stop() })
	if b.cfPID = findPID(filepath.Join(cfDir, "centrifugo.json")); b.cfPID == 0 {
		b.cfPID = -1 // procCPU reports 0 rather than this process's time
		b.logf("centrifugo process not found in /proc: its CPU time is not reported")
	}
	b.info.centrifugo = centrifugoVersion(ctx, b.cfg.centrifugo)

	b.api = gocent.New(gocent.Config{
		Addr: b.cf.APIURL(),
		Key:  b.apiKey,
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		}},
	})

	chFile := filepath.Join(b.dir, "channels.yaml")
	yaml := "channels:\n"
	for _, ch := range b.cfg.channelNames() {
		yaml += fmt.Sprintf("  - name: %q\n    level: public\n", ch)
	}
	if err := os.WriteFile(chFile, []byte(yaml), 0o600); err != nil {
		return err
	}
	b.logf("starting bridge")
	if b.bridge, err = b.startBridge(ctx, bin, chFile, "instant-bench-bridge", "bridge.log"); err != nil {
		return err
	}
	if b.cfg.jetstream {
		b.logf("starting bridge in jetstream mode")
		b.jsBridge, err = b.startBridge(ctx, bin, chFile, jsBridgeName, "bridge-jetstream.log",
			"INSTANT_DELIVERY=jetstream", "INSTANT_SUBJECT="+jsSubject)
		if err != nil {
			return err
		}
		if err := b.startJetStreamSide(ctx); err != nil {
			return err
		}
	}

	b.logf("connecting the subscriber")
	signer, err := tokens.NewHMAC([]byte(hmac))
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

// startBridge starts a bridge process named name (its NATS connection name)
// with the benchmark's configuration plus env, and waits for its /readyz.
func (b *bench) startBridge(ctx context.Context, bin, chFile, name, logName string, env ...string) (*bridgeProc, error) {
	port, err := centrifugoproc.FreePort()
	if err != nil {
		return nil, err
	}
	base := []string{
		"INSTANT_NATS_URL=" + b.natsURL,
		"INSTANT_NATS_NAME=" + name,
		"INSTANT_CENTRIFUGO_API_URL=" + b.cf.APIURL(),
		"INSTANT_CENTRIFUGO_API_KEY=" + b.apiKey,
		"INSTANT_CHANNELS_FILE=" + chFile,
		"INSTANT_SITE_NAME=bench",
		fmt.Sprintf("INSTANT_BRIDGE_HTTP_ADDR=127.0.0.1:%d", port),
		"INSTANT_LOG_LEVEL=warn",
	}
	env = append(append(base, env...), b.cfg.bridgeEnv...)
	p, err := startBridge(bin, env, filepath.Join(b.dir, logName), fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	p.natsName = name
	b.closers = append(b.closers, func() {
		if err := p.stop(10 * time.Second); err != nil {
			b.logf("stop %s: %v", name, err)
		}
	})
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// close stops everything setup started, in reverse order.
func (b *bench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func secret() string {
	p := make([]byte, 16)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module: run instant-bench from the repository root")
	}
	return filepath.Dir(gomod), nil
}

// findPID returns the pid of the process whose command line contains arg, 0 if none.
func findPID(arg string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), arg) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "%d", &pid); err == nil && pid != os.Getpid() {
			return pid
		}
	}
	return 0
}
