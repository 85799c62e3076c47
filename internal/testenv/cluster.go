package testenv

import (
	"context"
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
