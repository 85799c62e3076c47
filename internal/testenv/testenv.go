// Package testenv starts the real components that integration tests run
// against: an embedded NATS server with JetStream and a Centrifugo process.
// Everything it starts is stopped by tb.Cleanup.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/centrifugoproc"
)

// Secret returns a random hex string for test keys.
func Secret(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// NATS is an embedded nats-server.
type NATS struct {
	Server   *server.Server
	StoreDir string
	opts     server.Options
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// StartNATS starts an embedded nats-server on a free port with JetStream
// stored in a temporary directory; mod may change the options (users,
// permissions).
func StartNATS(tb testing.TB, mod ...func(*server.Options)) *NATS {
	tb.Helper()
	n := &NATS{StoreDir: tb.TempDir()}
	n.opts = server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   n.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	for _, m := range mod {
		m(&n.opts)
	}
	n.start(tb)
	n.opts.Port = n.Server.Addr().(*net.TCPAddr).Port
	tb.Cleanup(n.Shutdown)
	return n
}

func (n *NATS) start(tb testing.TB) {
	tb.Helper()
	opts := n.opts
	s, err := server.NewServer(&opts)
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatal("nats-server did not become ready in 10s")
	}
	n.Server = s
}

// Shutdown stops the server (idempotent).
func (n *NATS) Shutdown() {
	if n.Server != nil {
		n.Server.Shutdown()
		n.Server.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port with the
// same storage directory.
func (n *NATS) Restart(tb testing.TB) {
	tb.Helper()
	n.Shutdown()
	n.start(tb)
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
	*centrifugoproc.Server
	APIKey     string
	HMACSecret string
}

// StartCentrifugo starts Centrifugo on a free port. It fails the test, with
// the command to install it, when the binary is missing: integration tests
// never skip silently.
func StartCentrifugo(tb testing.TB, mod ...func(*centrifugoproc.Options)) *Centrifugo {
	tb.Helper()
	bin, err := centrifugoproc.Find()
	if err != nil {
		tb.Fatalf("integration tests need the real Centrifugo: %v", err)
	}
	opts := centrifugoproc.Options{
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
	s, err := centrifugoproc.Start(ctx, opts)
	if err != nil {
		tb.Fatalf("start centrifugo: %v", err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return &Centrifugo{Server: s, APIKey: opts.APIKey, HMACSecret: opts.HMACSecret}
}

// Eventually polls f until it returns nil or the deadline passes, then fails
// the test with f's last error.
func Eventually(tb testing.TB, d time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not true after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ErrNotYet is a convenience error for Eventually conditions.
var ErrNotYet = errors.New("not yet")
