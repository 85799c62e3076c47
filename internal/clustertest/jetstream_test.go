package clustertest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// jetstreamEnv runs the bridges in jetstream mode on R3 streams, with short
// redelivery delays so that what a lost server held comes back within the
// test.
var jetstreamEnv = []string{
	"INSTANT_DELIVERY=jetstream",
	"INSTANT_JETSTREAM_REPLICAS=3",
	"INSTANT_JETSTREAM_ACK_WAIT=5s",
	"INSTANT_JETSTREAM_BACKOFF=200ms,500ms,1s",
	"INSTANT_RETRY_ATTEMPTS=2",
	"INSTANT_RETRY_BACKOFF=50ms",
	"INSTANT_RETRY_MAX_BACKOFF=200ms",
}

// TestClusterJetStreamFaults publishes 5,000 envelopes through JetStream
// (R3 streams on 3 nats-server processes) to two bridges, which send to
// Centrifugo A first and B on failure; the subscriber is on B. While the
// envelopes flow, the NATS server that leads the stream and has a bridge
// connected is SIGKILLed (no leadership hand-off, no goodbye to its
// clients) and later started again, and Centrifugo A is stopped for 3 s:
// the bridge reconnects to another server and is ready again, envelopes
// keep arriving through B meanwhile, every envelope arrives, each
// duplicate is a copy of an id published, and the stream ends empty.
func TestClusterJetStreamFaults(t *testing.T) {
	c := newCluster(t)
	bridges := []*stack.Bridge{c.startBridge("bridge-1", jetstreamEnv...), c.startBridge("bridge-2", jetstreamEnv...)}
	c.requireReplicas(3)
	c.leaderWithBridge(bridges) // arranged before the traffic, checked again below
	r := c.subscribe(c.b)

	const n = 5000
	ids := makeIDs("js", n)
	var stored atomic.Int64
	published := make(chan error, 1)
	go func() { published <- c.publish(ids, 25, 60*time.Millisecond, &stored) }() // about 400/s

	waitMore(t, r, 0, 400, 30*time.Second)
	victim, onVictim := c.leaderWithBridge(bridges)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed NATS server %s (stream leader, %s on it) with %d stored, %d received", victim.Name(), onVictim.Name(), stored.Load(), r.Distinct())
	c.requireReconnected(onVictim, victim)
	waitMore(t, r, r.Distinct(), 300, 30*time.Second) // still flowing on two servers

	if err := c.a.Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt, before := time.Now(), r.Distinct()
	testenv.Eventually(t, 30*time.Second, func() error { // through B while A is down, for 3 s
		if got := r.Distinct() - before; got < 300 || time.Since(stoppedAt) < 3*time.Second {
			return fmt.Errorf("%d received in %v with Centrifugo A down", got, time.Since(stoppedAt).Round(time.Millisecond))
		}
		return nil
	})
	t.Logf("Centrifugo A down for %v: %d received meanwhile through B", time.Since(stoppedAt).Round(time.Millisecond), r.Distinct()-before)
	if err := c.a.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.restart(victim)
	if s := stored.Load(); s >= n {
		t.Errorf("all %d envelopes were stored before the faults ended: the faults did not overlap the traffic", s)
	}

	if err := <-published; err != nil {
		t.Fatal(err)
	}
	a := c.settle(ids, r, 90*time.Second)
	t.Logf("%d published: %v", n, a)
	if len(a.missing) > 0 || len(a.unknown) > 0 {
		t.Errorf("%v; missing e.g. %s; unknown e.g. %s", a, head(a.missing, 10), head(a.unknown, 10))
	}
	c.requireFailover(bridges)
}

// stepDownSubject asks the leader of the envelope stream to hand over to
// another replica (JetStream API).
const stepDownSubject = "$JS.API.STREAM.LEADER.STEPDOWN." + envelopeStream

// leaderWithBridge returns the NATS server leading the envelope stream
// when one of the bridges is connected to it, and that bridge. While the
// leader has no bridge, it is asked to step down, so that another replica
// leads.
func (c *cluster) leaderWithBridge(bridges []*stack.Bridge) (*stack.NATSProcess, *stack.Bridge) {
	c.t.Helper()
	var leader *stack.NATSProcess
	var bridge *stack.Bridge
	testenv.Eventually(c.t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := c.js.Stream(ctx, envelopeStream)
		if err != nil {
			return err
		}
		info := st.CachedInfo()
		if leader = c.nats.Member(info.Cluster.Leader); leader == nil {
			return fmt.Errorf("stream leader %q is no member", info.Cluster.Leader)
		}
		for _, b := range bridges {
			if connectedTo(b.Name())(leader) == nil {
				bridge = b
				return nil
			}
		}
		if _, err := c.nc.Request(stepDownSubject, nil, 2*time.Second); err != nil {
			return fmt.Errorf("step down %s: %w", leader.Name(), err)
		}
		c.t.Logf("no bridge on the stream leader %s: asked it to step down", leader.Name())
		return fmt.Errorf("no bridge on the stream leader %s; asked it to step down", leader.Name())
	})
	return leader, bridge
}

// restart starts a killed NATS server again and waits until it has caught
// up (the cluster formed and healthy).
func (c *cluster) restart(m *stack.NATSProcess) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
	testenv.Eventually(c.t, 30*time.Second, func() error { return c.nats.Formed(ctx) })
}

// requireReplicas checks that the bridges created the envelope stream with
// INSTANT_JETSTREAM_REPLICAS replicas.
func (c *cluster) requireReplicas(want int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, envelopeStream)
	if err != nil {
		c.t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Replicas; got != want {
		c.t.Fatalf("stream %s has %d replicas, want %d", envelopeStream, got, want)
	}
}

// requireFailover checks that a bridge logged sending to the next node.
func (c *cluster) requireFailover(bridges []*stack.Bridge) {
	c.t.Helper()
	for _, b := range bridges {
		if strings.Contains(b.LogTail(1<<20), "sending to the next one") {
			return
		}
	}
	c.t.Error("no bridge logged a failover from Centrifugo A to B")
}

// settle waits until every id was received and the stream is empty, or d
// passes, and returns the account.
func (c *cluster) settle(ids []string, r *receiver, d time.Duration) account {
	c.t.Helper()
	var a account
	err := stack.Eventually(d, func() error {
		a = tally(ids, r.Snapshot())
		left, err := c.streamMsgs()
		if err != nil {
			return err
		}
		if len(a.missing) > 0 || left > 0 {
			return fmt.Errorf("%d envelopes not received, %d left in the stream", len(a.missing), left)
		}
		return nil
	})
	if err != nil {
		c.t.Error(err)
	}
	return tally(ids, r.Snapshot())
}

// publish stores ids through JetStream, chunk at a time every pause, the id
// as Nats-Msg-Id. A publish that fails (a server going away) is sent again
// with the same Msg-Id until it is stored: JetStream drops the repeat of one
// that was stored after all. stored counts the envelopes stored so far.
func (c *cluster) publish(ids []string, chunk int, pause time.Duration, stored *atomic.Int64) error {
	for start := 0; start < len(ids); start += chunk {
		end := min(start+chunk, len(ids))
		var failed []string
		futures := make([]jetstream.PubAckFuture, 0, end-start)
		for _, id := range ids[start:end] {
			f, err := c.js.PublishMsgAsync(jsMsg(id))
			if err != nil {
				failed = append(failed, id)
				continue
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
				stored.Add(1)
			case <-f.Err():
				failed = append(failed, f.Msg().Header.Get(nats.MsgIdHdr))
			}
		}
		for _, id := range failed {
			if err := c.publishRetrying(id, time.Minute); err != nil {
				return err
			}
			stored.Add(1)
		}
		time.Sleep(pause) // pacing the producer, not waiting for anything
	}
	return nil
}

func jsMsg(id string) *nats.Msg {
	m := &nats.Msg{Subject: publishSubject, Data: envelope(id), Header: nats.Header{}}
	m.Header.Set(nats.MsgIdHdr, id)
	return m
}

// publishRetrying stores one envelope, trying again until it is stored or d
// passes.
func (c *cluster) publishRetrying(id string, d time.Duration) error {
	return stack.Eventually(d, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.js.PublishMsg(ctx, jsMsg(id))
		return err
	})
}
