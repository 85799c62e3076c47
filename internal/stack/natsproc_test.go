package stack_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/stack"
)

// TestNATSProcessCluster: three nats-server processes, built from the
// module cache, form a JetStream cluster. The leader of an R3 stream is
// SIGKILLed: its process is gone at once, a client that was on it
// reconnects to another member, the stream stays writable, and the member
// started again on the same ports with the same storage rejoins and catches
// up (healthy).
func TestNATSProcessCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := (&stack.Binary{Package: stack.NATSServerPackage, Name: "nats-server", Dir: t.TempDir()}).Path(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := stack.StartNATSProcessCluster(ctx, 3, stack.NATSProcessOptions{Binary: bin, Dir: t.TempDir(), JetStream: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	must(t, stack.Eventually(30*time.Second, func() error { return c.Formed(ctx) }))

	js := connectJS(t, c.URL())
	must(t, stack.Eventually(15*time.Second, func() error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3})
		return err
	}))
	publish := func(data string) error {
		return stack.Eventually(15*time.Second, func() error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.Publish(pctx, "r3", []byte(data))
			return err
		})
	}
	must(t, publish("1"))
	st, err := js.Stream(ctx, "R3")
	must(t, err)
	info, err := st.Info(ctx)
	must(t, err)
	leader := c.Member(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("stream leader %q is no member", info.Cluster.Leader)
	}
	nc := connectNamed(t, leader.URL(), "watcher")
	must(t, stack.Eventually(5*time.Second, hasClient(ctx, leader, "watcher")))

	must(t, leader.Kill())
	if leader.PID() != 0 {
		t.Fatal("a killed member still has a process")
	}
	must(t, publish("2"))
	must(t, stack.Eventually(10*time.Second, func() error {
		if !nc.IsConnected() || nc.ConnectedUrl() == leader.URL() {
			return fmt.Errorf("watcher: %s on %s", nc.Status(), nc.ConnectedUrl())
		}
		return nil
	}))

	must(t, leader.Start(ctx))
	must(t, stack.Eventually(30*time.Second, func() error { return c.Formed(ctx) }))
	must(t, stack.Eventually(10*time.Second, func() error { return streamHas(ctx, js, "R3", 2) }))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// connectNamed connects to url alone (no other server known but those it
// is told of), with a name the server lists.
func connectNamed(t *testing.T, url, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	must(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// hasClient is an Eventually condition: m lists a client named name.
func hasClient(ctx context.Context, m *stack.NATSProcess, name string) func() error {
	return func() error {
		names, err := m.ClientNames(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(names, name) {
			return fmt.Errorf("%s has clients %v, not %s", m.Name(), names, name)
		}
		return nil
	}
}
