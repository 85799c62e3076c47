// Command instant-bench measures the bridge against a real Centrifugo in one
// run, so the ratios are fair. By default it compares every way to get
// events to Centrifugo (direct HTTP publishes one by one, batched and in
// order, the bridge in core and jetstream mode, Centrifugo's own JetStream
// consumer): delivered throughput, end-to-end latency at a fixed rate, the
// bridge's peak memory and CPU, and exactly-once accounting. -flood measures
// the bridge's peak memory under the largest envelopes. It starts
// everything it needs on loopback (embedded NATS, Centrifugo, the bridges as
// separate processes, one websocket subscriber) and stops it all at exit.
//
// Run it from the repository root: go run ./cmd/instant-bench (--help lists
// the flags).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once; children die with it (Pdeathsig)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errFailed):
		fmt.Fprintln(os.Stderr, "instant-bench:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "instant-bench:", err)
		os.Exit(2)
	}
}

// run parses the flags, runs the benchmark and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, args: args, out: stdout, log: stderr}
	defer b.close()
	switch cfg.mode {
	case modeCompare:
		return b.compare(ctx)
	case modeFlood:
		return b.flood(ctx)
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	res, err := b.runScenarios(ctx)
	if err != nil {
		return err
	}
	b.report(res)
	return res.verdict(cfg.strict)
}
