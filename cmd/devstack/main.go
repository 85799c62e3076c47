// Command devstack runs the whole of Instant on one machine for development:
// an embedded NATS server (with JetStream), a real Centrifugo, the bridge and
// the token service, plus a websocket "tail" that prints every message that
// reaches Centrifugo. State and generated secrets live in --dir.
//
//	go run ./cmd/devstack            (or: make run)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/instant-go/instant/internal/devstack"
)

func main() {
	// flag.CommandLine exits on --help (0) and on a bad flag (2).
	opts, err := devstack.ParseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second signal exits at once
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// run starts the stack and stops it when ctx ends.
func run(ctx context.Context, opts devstack.Options) error {
	s, err := devstack.Start(ctx, opts, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	<-ctx.Done()
	fmt.Fprintln(os.Stdout, "stopping...")
	return nil
}
