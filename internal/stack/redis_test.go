package stack_test

import (
	"context"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

// TestRedis: redis-server starts on a free port, answers PING, and is gone
// after Stop.
func TestRedis(t *testing.T) {
	if _, err := stack.FindRedis(); err != nil {
		t.Fatalf("this test needs the real Redis: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := stack.StartRedis(ctx, stack.RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	if r.Addr() == "127.0.0.1:6379" {
		t.Errorf("Redis on its default port %s, want a free port", r.Addr())
	}
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("PING: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Ping(ctx); err == nil {
		t.Error("PING after Stop answered, want an error")
	}
}
