package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/testenv"
)

// TestCentrifugoOutageBeyondRetryBudget stops Centrifugo for longer than
// the redelivery budget (INSTANT_JETSTREAM_MAX_DELIVER=3): every envelope is
// dead-lettered as upstream_unavailable after its third delivery. After the
// restart `bridge dlq replay --code upstream_unavailable` delivers each of
// them exactly once, and running the same replay again replays nothing.
func TestCentrifugoOutageBeyondRetryBudget(t *testing.T) {
	s := newStack(t, channelsYAML)
	p := s.startBridge("bridge", append(jetstreamEnv,
		"INSTANT_JETSTREAM_MAX_DELIVER=3",
		"INSTANT_JETSTREAM_BACKOFF=100ms,200ms")...)
	if err := s.cf.Stop(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	ids := makeIDs("e", 0, n)
	start := time.Now()
	s.mustPublish("$users", ids, 0, 0)

	var letters map[string][]dlq.Letter
	testenv.Eventually(t, 30*time.Second, func() error { // every envelope dead-lettered
		var err error
		if letters, err = s.letters(); err != nil {
			return err
		}
		left, err := s.streamMsgs()
		if err != nil {
			return err
		}
		if len(letters) < n || left > 0 {
			return fmt.Errorf("%d of %d dead-lettered, %d left in the stream", len(letters), n, left)
		}
		return nil
	})
	t.Logf("%d dead-lettered %v after the publish", len(letters), time.Since(start).Round(time.Millisecond))
	for _, id := range ids {
		ls := letters[id]
		if len(ls) != 1 {
			t.Errorf("%s has %d dead letters, want 1", id, len(ls))
			continue
		}
		l := ls[0]
		if l.Code != "upstream_unavailable" || l.Deliveries != 3 || l.Subject != "instant.dlq.upstream_unavailable" ||
			l.OriginalSubject != publishSubject || l.OriginalSequence == 0 || l.Reason == "" {
			t.Errorf("dead letter of %s: code %q, %d deliveries, subject %q, original %q #%d, reason %q; want upstream_unavailable after 3 deliveries on instant.dlq.upstream_unavailable from %s, with a reason",
				id, l.Code, l.Deliveries, l.Subject, l.OriginalSubject, l.OriginalSequence, l.Reason, publishSubject)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	out, err := s.runCLI("dlq", "list", "--code", "upstream_unavailable", "--limit", "0", "--json")
	if err != nil {
		t.Fatalf("bridge dlq list: %v\n%s", err, out)
	}
	if lines := strings.Count(out, "\n"); lines != n {
		t.Errorf("bridge dlq list --json printed %d lines, want %d:\n%s", lines, n, head(strings.Split(out, "\n"), 3))
	}
	for line := range strings.Lines(out) {
		var l struct {
			Code       string `json:"code"`
			Deliveries int    `json:"deliveries"`
			EnvelopeID string `json:"envelope_id"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Code != "upstream_unavailable" || l.Deliveries != 3 || len(letters[l.EnvelopeID]) == 0 {
			t.Errorf("bridge dlq list line %q: want an upstream_unavailable letter after 3 deliveries of a published id", line)
			break
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.cf.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p, 15*time.Second)
	r := s.subscribe("$users")
	if got := r.Distinct(); got != 0 {
		t.Fatalf("received %d envelopes before the replay, want 0", got)
	}
	out, err = s.runCLI("dlq", "replay", "--code", "upstream_unavailable")
	if err != nil || strings.TrimSpace(out) != "replayed "+strconv.Itoa(n)+" dead letters" {
		t.Fatalf("bridge dlq replay: %v, output %q; want \"replayed %d dead letters\"", err, out, n)
	}
	a := s.settle(ids, 30*time.Second, r)
	t.Logf("after the replay: %v", a)
	a.requireNoLoss(t)
	if len(a.deadLettered) > 0 {
		t.Errorf("%d dead letters left after the replay, want none", len(a.deadLettered))
	}
	if a.duplicates > 0 {
		t.Errorf("%d duplicate publications after the replay, want each envelope exactly once", a.duplicates)
	}
	received := r.Count()
	out, err = s.runCLI("dlq", "replay", "--code", "upstream_unavailable")
	if err != nil || strings.TrimSpace(out) != "replayed 0 dead letters" {
		t.Fatalf("second bridge dlq replay: %v, output %q; want \"replayed 0 dead letters\"", err, out)
	}
	time.Sleep(500 * time.Millisecond) // a publication it caused would arrive by now
	if extra := r.Count() - received; extra > 0 {
		t.Errorf("%d publications after the second replay, want none", extra)
	}
}

// TestCentrifugoShortOutage stops Centrifugo for about 3 s, well inside the
// redelivery budget, while envelopes are published: each is naked and
// redelivered until Centrifugo is back, and all are delivered, none
// dead-lettered.
func TestCentrifugoShortOutage(t *testing.T) {
	s := newStack(t, channelsYAML)
	p := s.startBridge("bridge", append(jetstreamEnv,
		"INSTANT_JETSTREAM_MAX_DELIVER=30",
		"INSTANT_JETSTREAM_BACKOFF=100ms,200ms,500ms,1s")...)
	early := s.subscribe("$users")

	// 100 while Centrifugo is up, the other 400 during the outage.
	const n = 500
	ids := makeIDs("e", 0, n)
	up, down := ids[:100], ids[100:]
	s.mustPublish("$users", up, 0, 0)
	testenv.Eventually(t, 20*time.Second, func() error { // the first 100 delivered
		if got := early.Distinct(); got < len(up) {
			return fmt.Errorf("%d of %d", got, len(up))
		}
		return nil
	})
	stopAt := time.Now()
	if err := s.cf.Stop(); err != nil {
		t.Fatal(err)
	}
	// Spread over about 3 s.
	s.mustPublish("$users", down, 20, 150*time.Millisecond)
	if d := 3*time.Second - time.Since(stopAt); d > 0 {
		time.Sleep(d) // the outage lasts 3 s
	}
	naks, err := p.Metric("instant_bridge_jetstream_acks_total", `kind="nak"`)
	if err != nil {
		t.Fatal(err)
	}
	if naks == 0 {
		t.Fatalf("no nak during the outage: the bridge did not try to forward")
	}
	// Centrifugo keeps no publications across a restart, and a subscriber
	// that reconnects later misses what was published before it is back.
	// So the bridge is frozen (SIGSTOP) while Centrifugo restarts and a new
	// subscriber connects, and resumed (SIGCONT) after: it then forwards
	// with nobody watching missing a thing.
	early.Stop() // it reconnects by itself after the restart: count only what it got before
	signal(t, p, syscall.SIGSTOP)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.cf.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	outage := time.Since(stopAt)
	late := s.subscribe("$users")
	signal(t, p, syscall.SIGCONT)

	resumed := time.Now()
	a := s.settle(ids, 30*time.Second, early, late)
	t.Logf("outage %v (%.0f naks during it); %v; settled %v after Centrifugo came back",
		outage.Round(time.Millisecond), naks, a, time.Since(resumed).Round(time.Millisecond))
	a.requireNoLoss(t)
	if len(a.deadLettered) > 0 {
		t.Errorf("%d envelopes dead-lettered, want none (the outage was inside the retry budget)", len(a.deadLettered))
	}
	got := late.Snapshot()
	for _, id := range down {
		if got[id] == 0 {
			t.Errorf("%s, published during the outage, not received after it", id)
			break
		}
	}
	redelivered, _ := p.Metric("instant_bridge_jetstream_redeliveries_total", "")
	t.Logf("the bridge received %.0f redeliveries", redelivered)
}

// TestCentrifugoHangs freezes Centrifugo (SIGSTOP) for about 4 s instead of
// stopping it: requests are accepted by the kernel and time out. Nothing is
// lost, nothing dead-lettered, and nothing duplicated: Centrifugo applies
// the timed-out requests once it resumes, and the bridge had retried each
// (INSTANT_RETRY_ATTEMPTS) and redelivered it (nak), but every command
// carries the envelope's id as its idempotency key, so Centrifugo publishes
// each envelope once.
func TestCentrifugoHangs(t *testing.T) {
	s := newStack(t, channelsYAML)
	p := s.startBridge("bridge", append(jetstreamEnv,
		"INSTANT_CENTRIFUGO_TIMEOUT=500ms",
		"INSTANT_JETSTREAM_ACK_WAIT=5s",
		"INSTANT_JETSTREAM_MAX_DELIVER=30",
		"INSTANT_JETSTREAM_BACKOFF=100ms,200ms,500ms,1s")...)
	r := s.subscribe("$users")
	pid := s.cf.PID()

	const n = 200
	ids := makeIDs("e", 0, n)
	frozenAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	s.mustPublish("$users", ids, 20, 200*time.Millisecond)
	if d := 4*time.Second - time.Since(frozenAt); d > 0 {
		time.Sleep(d) // the hang lasts 4 s
	}
	thaw()
	hang := time.Since(frozenAt)
	a := s.settle(ids, 30*time.Second, r)
	requests, _ := p.Metric("instant_bridge_centrifugo_requests_total", `result="error"`)
	redelivered, _ := p.Metric("instant_bridge_jetstream_redeliveries_total", "")
	acks, _ := p.Metric("instant_bridge_jetstream_acks_total", `kind="ack"`)
	t.Logf("Centrifugo frozen %v: %v; %.0f failed requests, %.0f redeliveries, %.0f acks",
		hang.Round(time.Millisecond), a, requests, redelivered, acks)
	a.requireNoLoss(t)
	if len(a.deadLettered) > 0 {
		t.Errorf("%d envelopes dead-lettered, want none (the hang was inside the retry budget)", len(a.deadLettered))
	}
	if a.duplicates > 0 {
		t.Errorf("%d duplicate copies of %d envelopes received, want none (idempotency keys)", a.duplicates, a.dupIDs)
	}
	if requests == 0 {
		t.Error("no Centrifugo request failed: the hang did not exercise the retries")
	}
}
