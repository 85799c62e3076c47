// Package testenv is internal/stack for tests: it starts an embedded NATS
// server or cluster, a cluster of nats-server processes, Centrifugo and
// redis-server processes and bridge processes, fails the test when they do not start, and stops them with
// tb.Cleanup.
package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/stack"
)

// Secret returns a random hex string for test keys.
func Secret(tb testing.TB) string {
	tb.Helper()
	return stack.Secret(16)
}

// NATS is an embedded nats-server.
type NATS struct {
	Server   *server.Server // the running server; replaced by Restart
	StoreDir string
	n        *stack.NATS
}

// StartNATS starts an embedded nats-server on a free port with JetStream
// stored in a temporary directory; mod may change the options (users,
// permissions).
func StartNATS(tb testing.TB, mod ...func(*server.Options)) *NATS {
	tb.Helper()
	n, err := stack.StartNATS(stack.NATSOptions{
		JetStream:  true,
		StoreDir:   tb.TempDir(),
		MaxPayload: 8 << 20,
		Configure: func(o *server.Options) {
			for _, m := range mod {
				m(o)
			}
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Stop)
	return &NATS{Server: n.Server(), StoreDir: n.StoreDir(), n: n}
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return n.n.URL() }

// Shutdown stops the server (idempotent).
func (n *NATS) Shutdown() { n.n.Stop() }

// Restart stops the server and starts it again on the same port with the
// same storage directory.
func (n *NATS) Restart(tb testing.TB) {
	tb.Helper()
	if err := n.n.Restart(); err != nil {
		tb.Fatal(err)
	}
	n.Server = n.n.Server()
}

// Connect opens a client connection closed at cleanup.
func (n *NATS) Connect(tb testing.TB, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(n.URL(), opts...)
	if err != nil {
		tb.Fatalf("connect nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Centrifugo is a real Centrifugo process for a test.
type Centrifugo struct {
	*stack.Centrifugo
	APIKey     string
	HMACSecret string
}

// StartCentrifugo starts Centrifugo on a free port. It fails the test, with
// the command to install it, when the binary is missing: integration tests
// never skip silently.
func StartCentrifugo(tb testing.TB, mod ...func(*stack.CentrifugoOptions)) *Centrifugo {
	tb.Helper()
	bin, err := stack.FindCentrifugo()
	if err != nil {
		tb.Fatalf("integration tests need the real Centrifugo: %v", err)
	}
	opts := stack.CentrifugoOptions{
		Binary:     bin,
		Dir:        tb.TempDir(),
		APIKey:     Secret(tb),
		HMACSecret: Secret(tb),
	}
	for _, m := range mod {
		m(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.StartCentrifugo(ctx, opts)
	if err != nil {
		tb.Fatalf("start centrifugo: %v", err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return &Centrifugo{Centrifugo: s, APIKey: opts.APIKey, HMACSecret: opts.HMACSecret}
}

// bridgeStopGrace is how long cleanup lets a bridge finish after SIGTERM.
const bridgeStopGrace = 12 * time.Second

// StartBridge starts a bridge process and waits until it is ready (see
// stack.StartBridge); its output goes to a file in a temporary directory
// when o.LogPath is empty. At cleanup it is stopped and, when the test
// failed, its output is logged.
func StartBridge(tb testing.TB, o stack.BridgeOptions) *stack.Bridge {
	tb.Helper()
	if o.LogPath == "" {
		name := o.Name
		if name == "" {
			name = "bridge"
		}
		o.LogPath = filepath.Join(tb.TempDir(), name+".log")
	}
	b, err := stack.StartBridge(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := b.Stop(bridgeStopGrace); err != nil {
			tb.Log(err)
		}
		if tb.Failed() {
			tb.Logf("bridge %s (%s) output:\n%s", b.Name(), b.State(), b.LogTail(64<<10))
		}
	})
	return b
}

// Eventually polls f until it returns nil or d passes, then fails the test
// with f's last error.
func Eventually(tb testing.TB, d time.Duration, f func() error) {
	tb.Helper()
	if err := stack.Eventually(d, f); err != nil {
		tb.Fatal(err)
	}
}

// ErrNotYet is a convenience error for Eventually conditions.
var ErrNotYet = stack.ErrNotYet
