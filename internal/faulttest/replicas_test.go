package faulttest

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// TestReplicaKilledMidStream runs three bridge replicas on the shared
// durable consumer and SIGKILLs the busiest one after about a third of the
// envelopes arrived: the envelopes it held un-acked are redelivered to the
// others after the ack wait, so every envelope is delivered (duplicates are
// allowed and counted, losses are not).
func TestReplicaKilledMidStream(t *testing.T) {
	s := newStack(t, channelsYAML)
	replicas := make([]*stack.Bridge, 3)
	for i := range replicas {
		replicas[i] = s.startBridge(fmt.Sprintf("replica-%d", i), jetstreamEnv...)
	}
	r := s.subscribe("$users")

	const n = 3000
	ids := makeIDs("e", 0, n)
	published := make(chan error, 1)
	go func() {
		// About 3 s of steady traffic, so the kill lands mid-stream.
		published <- s.publish("$users", ids, 50, 50*time.Millisecond)
	}()
	start := time.Now()
	testenv.Eventually(t, 30*time.Second, func() error { // a third delivered
		if got := r.Distinct(); got < n/3 {
			return fmt.Errorf("%d of %d delivered", got, n)
		}
		return nil
	})

	// Kill the replica that forwarded the most so far: it is certainly
	// taking part in the stream.
	victim, best := replicas[0], -1.0
	for _, p := range replicas {
		v, err := p.Metric("instant_bridge_envelopes_total", `outcome="forwarded"`)
		if err != nil {
			t.Fatalf("metrics of %s: %v", p.Name(), err)
		}
		t.Logf("%s forwarded %.0f before the kill", p.Name(), v)
		if v > best {
			victim, best = p, v
		}
	}
	// Freeze it first until the server has handed it envelopes it will never
	// ack (they pile up on its pull request while it is stopped), so that
	// the kill certainly leaves work for the others to take over.
	signal(t, victim, syscall.SIGSTOP)
	var held int
	testenv.Eventually(t, 5*time.Second, func() error { // envelopes held by the frozen replica
		var err error
		if held, err = s.ackPending(); err != nil {
			return err
		}
		if held < 20 {
			return fmt.Errorf("%d envelopes delivered and not acked", held)
		}
		return nil
	})
	deliveredAtKill := r.Distinct()
	signal(t, victim, syscall.SIGKILL)
	st := victim.Wait(5 * time.Second)
	if st == nil {
		t.Fatalf("%s still running 5s after SIGKILL", victim.Name())
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %s, want killed by SIGKILL", victim.Name(), st)
	}
	t.Logf("killed %s after %v with %d of %d delivered and %d envelopes delivered to bridges and not acked",
		victim.Name(), time.Since(start).Round(time.Millisecond), deliveredAtKill, n, held)

	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not finish within 30s")
	}
	a := s.settle(ids, 40*time.Second, r)
	t.Logf("%v, in %v", a, time.Since(start).Round(time.Millisecond))
	a.requireNoLoss(t)
	if len(a.deadLettered) > 0 {
		t.Errorf("%d envelopes dead-lettered, want none (Centrifugo was up throughout)", len(a.deadLettered))
	}
	var redelivered float64
	for _, p := range replicas {
		if p == victim {
			continue
		}
		v, err := p.Metric("instant_bridge_jetstream_redeliveries_total", "")
		if err != nil {
			t.Fatalf("metrics of %s: %v", p.Name(), err)
		}
		redelivered += v
	}
	t.Logf("survivors received %.0f redeliveries", redelivered)
	if redelivered == 0 {
		t.Errorf("the surviving replicas received no redeliveries: nothing the killed replica held was taken over")
	}
}
