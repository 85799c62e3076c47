package clustertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// outcomes are the answers to the producers' requests, by envelope id.
type outcomes struct {
	mu       sync.Mutex
	ok       map[string]bool
	noAnswer map[string]error // timeouts, no responders, connection errors
	refused  map[string]string
}

func (o *outcomes) record(id string, msg *nats.Msg, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.noAnswer[id] = err
		return
	}
	var rc struct {
		OK bool   `json:"ok"`
		ID string `json:"id"`
	}
	if json.Unmarshal(msg.Data, &rc) == nil && rc.OK && rc.ID == id {
		o.ok[id] = true
		delete(o.noAnswer, id)
		return
	}
	o.refused[id] = string(msg.Data)
}

func (o *outcomes) okCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ok)
}

// TestClusterCoreNATSNodeKilled: producers send 3,000 envelopes as NATS
// requests (receipts) to two core-mode bridges while the NATS server of one
// bridge is SIGKILLed for good; that bridge reconnects to another server
// and is ready again. What is lost is what README.md says core mode
// may lose when a server dies: envelopes on their way through it, whose
// producers got no receipt (a timeout). Every envelope with an ok receipt
// arrived, nothing arrived twice, the bridges' slow-consumer counters are 0,
// and the producers' retries with the same ids (as README.md advises)
// deliver every envelope exactly once, across both Centrifugo nodes.
func TestClusterCoreNATSNodeKilled(t *testing.T) {
	c := newCluster(t)
	bridges := []*stack.Bridge{c.startBridge("bridge-1"), c.startBridge("bridge-2")}
	r := c.subscribe(c.b)
	victim := c.memberWith("bridge-1's server", connectedTo("bridge-1"))

	const n = 3000
	ids := makeIDs("core", n)
	o := &outcomes{ok: map[string]bool{}, noAnswer: map[string]error{}, refused: map[string]string{}}
	done := c.produce(ids, 8, o)
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := o.okCount(); got < n/5 {
			return fmt.Errorf("%d ok receipts", got)
		}
		return nil
	})
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed NATS server %s (bridge-1's) with %d ok receipts", victim.Name(), o.okCount())
	c.requireReconnected(bridges[0], victim)
	<-done

	c.checkLosses(ids, r, o)
	for _, b := range bridges {
		if v, err := b.Metric("instant_bridge_slow_consumer_dropped_total", ""); err != nil || v != 0 {
			t.Errorf("%s: slow-consumer drops %v (%v), want 0: losses would not be the server's", b.Name(), v, err)
		}
	}
	c.retryUnanswered(o)
	var a account
	err := stack.Eventually(15*time.Second, func() error {
		if a = tally(ids, r.Snapshot()); len(a.missing) > 0 {
			return fmt.Errorf("%d envelopes not received", len(a.missing))
		}
		return nil
	})
	if err != nil || len(a.unknown) > 0 || a.dupCopies > 0 {
		t.Errorf("after the producers' retries with the same ids: %v (%v), want every envelope exactly once", a, err)
	}
}

// checkLosses: no refusal, every ok receipt's envelope received, at most
// the unanswered ones missing, nothing unknown or twice.
func (c *cluster) checkLosses(ids []string, r *receiver, o *outcomes) {
	c.t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.refused) > 0 {
		c.t.Errorf("%d refusals, want none: %v", len(o.refused), o.refused)
	}
	var missingOK []string
	err := stack.Eventually(15*time.Second, func() error {
		got := r.Snapshot()
		missingOK = missingOK[:0]
		for id := range o.ok {
			if got[id] == 0 {
				missingOK = append(missingOK, id)
			}
		}
		if len(missingOK) > 0 {
			return fmt.Errorf("%d envelopes with an ok receipt not received", len(missingOK))
		}
		return nil
	})
	if err != nil {
		c.t.Errorf("%v, e.g. %s", err, head(missingOK, 10))
	}
	a := tally(ids, r.Snapshot())
	c.t.Logf("%d requests: %d ok receipts, %d without an answer; received: %v", len(ids), len(o.ok), len(o.noAnswer), a)
	for _, id := range a.missing {
		if o.ok[id] {
			c.t.Errorf("%s: ok receipt, not received", id)
		} else if _, ok := o.noAnswer[id]; !ok {
			c.t.Errorf("%s: not received and not among the unanswered", id)
		}
	}
	if len(a.unknown) > 0 || a.dupCopies > 0 {
		c.t.Errorf("%v: want nothing unknown and no duplicates", a)
	}
}

// produce sends ids as requests from workers producers, each on its own
// connection to every server, and closes the channel when all are answered
// or timed out.
func (c *cluster) produce(ids []string, workers int, o *outcomes) <-chan struct{} {
	c.t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		nc, err := nats.Connect(c.nats.URL(), nats.Name(fmt.Sprintf("producer-%d", w)), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(nc.Close)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(ids)); i = next.Add(1) - 1 {
				msg, err := nc.Request(publishSubject, envelope(ids[i]), 3*time.Second)
				o.record(ids[i], msg, err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}

// retryUnanswered sends every request that got no answer again, with the
// same id, until it gets an ok receipt, then waits until the subscriber has
// every id.
func (c *cluster) retryUnanswered(o *outcomes) {
	c.t.Helper()
	o.mu.Lock()
	var retry []string
	for id := range o.noAnswer {
		retry = append(retry, id)
	}
	o.mu.Unlock()
	for _, id := range retry {
		err := stack.Eventually(30*time.Second, func() error {
			msg, err := c.nc.Request(publishSubject, envelope(id), 3*time.Second)
			o.record(id, msg, err)
			if err != nil {
				return err
			}
			if !o.isOK(id) {
				return errors.New("receipt " + string(msg.Data))
			}
			return nil
		})
		if err != nil {
			c.t.Fatalf("retry %s: %v", id, err)
		}
	}
	c.t.Logf("retried %d envelopes without an answer", len(retry))
}

func (o *outcomes) isOK(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ok[id]
}
