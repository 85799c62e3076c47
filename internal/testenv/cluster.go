package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

// StartNATSCluster starts n embedded nats-servers routed to each other with
// clustered JetStream stored in a temporary directory, and waits until the
// cluster is formed. Every member is stopped at cleanup.
func StartNATSCluster(tb testing.TB, n int) *stack.Cluster {
	tb.Helper()
	c, err := stack.StartNATSCluster(n, stack.NATSOptions{JetStream: true, StoreDir: tb.TempDir(), MaxPayload: 8 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	Eventually(tb, 30*time.Second, c.Formed)
	return c
}

// StartNATSProcessCluster starts n nats-server processes (the binary at
// bin, see stack.NATSServerPackage) routed to each other with clustered
// JetStream stored in a temporary directory, and waits until the cluster
// is formed. Members can be killed and started again; every member is
// stopped at cleanup, and its log shown when the test failed.
func StartNATSProcessCluster(tb testing.TB, n int, bin string) *stack.NATSProcessCluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := stack.StartNATSProcessCluster(ctx, n, stack.NATSProcessOptions{
		Binary: bin, Dir: tb.TempDir(), JetStream: true, MaxPayload: 8 << 20,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c.Close()
		if tb.Failed() {
			for _, m := range c.Members() {
				out, _ := os.ReadFile(m.LogPath())
				tb.Logf("nats-server %s output:\n%s", m.Name(), tail(out, 16<<10))
			}
		}
	})
	Eventually(tb, 30*time.Second, func() error { return c.Formed(ctx) })
	return c
}

// tail is the end of b, at most n bytes.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return append([]byte("…\n"), b[len(b)-n:]...)
	}
	return b
}

// StartRedis starts redis-server on a free port without persistence. It
// fails the test, with the command to install it, when redis-server is
// missing: integration tests never skip silently. Stopped at cleanup.
func StartRedis(tb testing.TB) *stack.Redis {
	tb.Helper()
	bin, err := stack.FindRedis()
	if err != nil {
		tb.Fatalf("these tests need the real Redis: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := stack.StartRedis(ctx, stack.RedisOptions{Binary: bin, Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("start redis: %v", err)
	}
	tb.Cleanup(func() { _ = r.Stop() })
	return r
}
