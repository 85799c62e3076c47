package stack_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/stack"
)

// TestNATSRestart: a restarted server keeps its port and its JetStream
// storage.
func TestNATSRestart(t *testing.T) {
	n, err := stack.StartNATS(stack.NATSOptions{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	port := n.Port()
	if port == 4222 || port <= 0 {
		t.Fatalf("port %d, want a free port, never the default", port)
	}
	js := connectJS(t, n.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if n.Port() != port {
		t.Errorf("port after restart %d, want %d", n.Port(), port)
	}
	if err := stack.Eventually(10*time.Second, func() error { return streamHas(ctx, js, "S", 1) }); err != nil {
		t.Fatal(err)
	}
}

// TestNATSCluster: three servers form a cluster, an R3 stream can be
// created, and a member that was stopped starts again and rejoins while the
// other two keep the stream writable.
func TestNATSCluster(t *testing.T) {
	c, err := stack.StartNATSCluster(3, stack.NATSOptions{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := stack.Eventually(20*time.Second, c.Formed); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Members() {
		if got := m.Server().NumRemotes(); got != 2 {
			t.Errorf("%s routes to %d servers, want 2", m.Server().Name(), got)
		}
	}
	js := connectJS(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = stack.Eventually(15*time.Second, func() error { // the meta leader may still be elected
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(data string) error {
		return stack.Eventually(15*time.Second, func() error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.Publish(pctx, "r3", []byte(data))
			if err != nil {
				t.Logf("publish: %v", err)
			}
			return err
		})
	}
	if err := publish("1"); err != nil {
		t.Fatal(err)
	}

	stopped := c.Members()[2]
	stopped.Stop()
	if stopped.Server() != nil {
		t.Fatal("a stopped member still has a server")
	}
	if err := publish("2"); err != nil {
		t.Fatalf("publish with one of three members stopped: %v", err)
	}
	if err := stopped.Start(); err != nil {
		t.Fatal(err)
	}
	if err := stack.Eventually(20*time.Second, c.Formed); err != nil {
		t.Fatal(err)
	}
	err = stack.Eventually(20*time.Second, func() error {
		if err := streamHas(ctx, js, "R3", 2); err != nil {
			return err
		}
		if !stopped.Server().JetStreamIsStreamCurrent("$G", "R3") {
			return fmt.Errorf("the restarted member has not caught up with stream R3")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func connectJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamHas(ctx context.Context, js jetstream.JetStream, name string, want uint64) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != want {
		return fmt.Errorf("stream %s holds %d messages, want %d", name, info.State.Msgs, want)
	}
	return nil
}
