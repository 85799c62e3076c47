package faulttest

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/testenv"
)

// TestJetStreamSIGTERMAcksInFlight SIGTERMs a jetstream-mode bridge while it
// works through a backlog: it stops fetching, forwards and acks what it
// holds, and exits 0. A new bridge then forwards the rest, every envelope
// exactly once, well before the (long, 60 s) ack wait: nothing was left
// un-acked by the first bridge. (The server may still count envelopes as
// pending right after the exit: those it sent to the bridge's pull request
// after the bridge unsubscribed; it redelivers them at once, with the
// delivery count raised by one.)
func TestJetStreamSIGTERMAcksInFlight(t *testing.T) {
	s := newStack(t, channelsYAML)
	env := append(append([]string(nil), jetstreamEnv...), "INSTANT_JETSTREAM_ACK_WAIT=60s")
	// The first bridge may hold only 200 un-acked envelopes and forwards
	// slowly (small batches, one request at a time): at the SIGTERM it
	// finishes what it holds and the rest of the backlog is still in the
	// stream for the second one, even on a fast run.
	first := s.startBridge("first", append(append([]string(nil), env...),
		"INSTANT_JETSTREAM_MAX_ACK_PENDING=200", "INSTANT_BATCH_MAX=5", "INSTANT_CONCURRENCY=1")...)
	r := s.subscribe("$users")

	const n = 3000
	ids := makeIDs("e", 0, n)
	signal(t, first, syscall.SIGSTOP) // a backlog: the whole batch is stored before it forwards any
	s.mustPublish("$users", ids, 0, 0)
	signal(t, first, syscall.SIGCONT)
	testenv.Eventually(t, 20*time.Second, func() error { // forwarding under way
		if got := r.Distinct(); got < n/10 {
			return fmt.Errorf("%d of %d delivered", got, n)
		}
		return nil
	})
	termAt := time.Now()
	signal(t, first, syscall.SIGTERM)
	st := first.Wait(15 * time.Second)
	if st == nil {
		t.Fatal("bridge still running 15s after SIGTERM")
	}
	if !st.Success() {
		t.Errorf("bridge exited with %s after SIGTERM, want 0", st)
	}
	exited := time.Since(termAt)
	held, err := s.ackPending()
	if err != nil {
		t.Fatal(err)
	}
	left, err := s.streamMsgs()
	if err != nil {
		t.Fatal(err)
	}
	if left == 0 {
		t.Fatalf("the stream was empty at the SIGTERM: nothing left for the second bridge, the test checks nothing")
	}
	forwardedByFirst := r.Distinct()
	t.Logf("first bridge exited %s %v after SIGTERM; %d delivered by it, %d envelopes in the stream, %d of them counted as pending on the consumer",
		st, exited.Round(time.Millisecond), forwardedByFirst, left, held)

	second := s.startBridge("second", env...)
	settleStart := time.Now()
	a := s.settle(ids, 20*time.Second, r) // well inside the 60 s ack wait
	t.Logf("%v; settled %v after the second bridge started", a, time.Since(settleStart).Round(time.Millisecond))
	a.requireNoLoss(t)
	if len(a.deadLettered) > 0 {
		t.Errorf("%d envelopes dead-lettered, want none", len(a.deadLettered))
	}
	if a.duplicates > 0 {
		t.Errorf("%d duplicate publications, want none after a graceful shutdown", a.duplicates)
	}
	redelivered, err := second.Metric("instant_bridge_jetstream_redeliveries_total", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the second bridge received %.0f redeliveries", redelivered)
}
