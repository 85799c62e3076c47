package centrifugo

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// countingSender counts the requests a node answered.
type countingSender struct {
	Sender
	answered atomic.Int64
}

func (c *countingSender) Send(ctx context.Context, cmds []Command) ([]Reply, error) {
	replies, err := c.Sender.Send(ctx, cmds)
	if err == nil {
		c.answered.Add(1)
	}
	return replies, err
}

// orderRun is one channel sequence pair pushed through a Forwarder.
type orderRun struct {
	fwd      *Forwarder
	channels []string
	n        int

	mu     sync.Mutex
	failed []string
	done   atomic.Int64
}

// produce submits item i of every channel for i in 0..n-1, waiting at
// index k of gates for gates[k].at to be closed first.
func (r *orderRun) produce(t *testing.T, gates []gate) {
	for i := range r.n {
		for _, g := range gates {
			if i == g.at {
				<-g.open
			}
		}
		for _, ch := range r.channels {
			id := fmt.Sprintf("%s-%d", ch, i)
			it := &Item{
				Commands: []Command{{Channel: ch, Data: fmt.Appendf(nil, "%q", id), IdempotencyKey: id}},
				Done: func(o Outcome) {
					if o.Err != nil {
						r.mu.Lock()
						r.failed = append(r.failed, id+": "+o.Err.Error())
						r.mu.Unlock()
					}
					r.done.Add(1)
				},
			}
			if err := r.fwd.Submit(context.Background(), it); err != nil {
				t.Errorf("submit %s: %v", id, err)
				return
			}
		}
	}
}

// gate holds the producer before index at until open is closed.
type gate struct {
	at   int
	open chan struct{}
}

// doneAtLeast is an Eventually condition: at least n outcomes.
func (r *orderRun) doneAtLeast(n int) func() error {
	return func() error {
		if got := int(r.done.Load()); got < n {
			return fmt.Errorf("%d outcomes, want %d", got, n)
		}
		return nil
	}
}

// TestForwarderOrderDuringFailover: two channels' sequences go through a
// Forwarder over a FailoverSender to two Centrifugo nodes on one Redis.
// Node A is stopped while the first part is in flight (the producer waits
// for the stop before the second part, so that part goes through B), then
// started again, and traffic returns to it. Each channel's history, read on
// both nodes, holds its ids in submission order at consecutive offsets:
// none missing, none applied twice, none reordered by the node changes.
func TestForwarderOrderDuringFailover(t *testing.T) {
	const n = 600
	a, b := redisNodes(t, func(o *stack.CentrifugoOptions) { o.HistorySize = 2 * n })
	client := &http.Client{Timeout: time.Second}
	sa := &countingSender{Sender: NewHTTPSender(a.APIURL(), a.APIKey, client)}
	sb := &countingSender{Sender: NewHTTPSender(b.APIURL(), b.APIKey, client)}
	snd := NewFailoverSender(FailoverConfig{Recheck: 100 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond},
		zap.NewNop(), FailoverNode{Name: "A", Sender: sa}, FailoverNode{Name: "B", Sender: sb})
	t.Cleanup(func() { _ = snd.Close() })
	fwd := New(Config{MaxBatch: 4, Concurrency: 4, Attempts: 5, Backoff: 50 * time.Millisecond}, snd, zap.NewNop(), nil)
	r := &orderRun{fwd: fwd, channels: []string{"order-a", "order-b"}, n: n}
	total := n * len(r.channels)

	stopped, back := gate{at: n / 2, open: make(chan struct{})}, gate{at: 5 * n / 6, open: make(chan struct{})}
	produced := make(chan struct{})
	go func() { defer close(produced); r.produce(t, []gate{stopped, back}) }()

	testenv.Eventually(t, 20*time.Second, r.doneAtLeast(total/6))
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	onA := sa.answered.Load()
	t.Logf("stopped A after %d outcomes, %d requests answered by A", r.done.Load(), onA)
	close(stopped.open)
	testenv.Eventually(t, 20*time.Second, r.doneAtLeast(2*total/3))
	if err := a.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if down := snd.Down(); len(down) > 0 {
			return fmt.Errorf("nodes down: %v", down)
		}
		return nil
	})
	close(back.open)
	<-produced
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fwd.Close(ctx); err != nil {
		t.Fatalf("close: %v with %d of %d outcomes", err, r.done.Load(), total)
	}

	if len(r.failed) > 0 {
		t.Errorf("%d items failed, e.g. %v", len(r.failed), r.failed[:min(5, len(r.failed))])
	}
	if sb.answered.Load() == 0 || sa.answered.Load() == onA {
		t.Errorf("requests answered: A %d (%d before its stop), B %d; want some on B while A was down and on A after its restart",
			sa.answered.Load(), onA, sb.answered.Load())
	}
	for _, ch := range r.channels {
		for _, cf := range []*testenv.Centrifugo{a, b} {
			requireSequence(t, cf, ch, n)
		}
	}
}

// requireSequence checks that channel's history on cf holds ch-0 ...
// ch-(n-1) in order, at consecutive offsets.
func requireSequence(t *testing.T, cf *testenv.Centrifugo, ch string, n int) {
	t.Helper()
	api := gocent.New(gocent.Config{Addr: cf.APIURL(), Key: cf.APIKey})
	h, err := api.History(context.Background(), ch, gocent.WithLimit(2*n))
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	var offsets []uint64
	for i, p := range h.Publications {
		got = append(got, string(p.Data))
		if i > 0 && p.Offset != offsets[i-1]+1 {
			t.Errorf("%s on %s: offset %d after %d, want consecutive offsets", ch, cf.URL(), p.Offset, offsets[i-1])
		}
		offsets = append(offsets, p.Offset)
	}
	for i := range n {
		want = append(want, fmt.Sprintf("%q", fmt.Sprintf("%s-%d", ch, i)))
	}
	if !slices.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("history of %s on %s: %d publications, first difference at %d (got %v, want %v)",
			ch, cf.URL(), len(got), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
	}
}
