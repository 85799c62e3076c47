// Command bridge receives publish envelopes on NATS and forwards them to
// Centrifugo. Configuration is read from INSTANT_* environment variables;
// run with --help to list them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/logging"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, errRejected) {
			os.Exit(1) // explain: the explanation is printed
		}
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "dlq" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return dlqCommand(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "explain" {
		return explainCommand(args[1:], stdout)
	}
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, "bridge: forward Instant publish envelopes from NATS to Centrifugo.\n\n"+
				"Usage: bridge [--help]\n       bridge dlq <list|show|replay|purge> ...   (dead letters of the jetstream mode; bridge dlq --help)\n"+
				"       bridge explain [--subject S] [--json] [ENVELOPE|-]   (what the bridge would do with an envelope; bridge explain --help)\n\nEnvironment variables:\n\n")
			return bridge.Usage(stdout)
		default:
			return fmt.Errorf("unknown argument %q (configuration comes from INSTANT_* variables; see --help)", a)
		}
	}
	cfg, err := bridge.LoadConfig()
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return fmt.Errorf("INSTANT_LOG_LEVEL/INSTANT_LOG_FORMAT: %w", err)
	}
	defer func() { _ = log.Sync() }()
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process at once
	}()

	b, err := bridge.New(cfg, log)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
