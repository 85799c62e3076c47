package faulttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// TestCoreModeSIGTERMDuringBurst sends a burst of requests (nats req) from
// many producers to one core-mode bridge process and SIGTERMs it in the
// middle. Every request is answered: with an ok receipt, and then the
// envelope reached the subscriber, or with "no responders" once the bridge
// unsubscribed, and then it was never delivered. A request that times out
// was taken by the bridge and never answered: a failure. The process exits
// 0 within its shutdown timeout.
func TestCoreModeSIGTERMDuringBurst(t *testing.T) {
	s := newStack(t, channelsYAML)
	const shutdownTimeout = 10 * time.Second
	p := s.startBridge("core", "INSTANT_DELIVERY=core", "INSTANT_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())
	r := s.subscribe("$users")

	const producers = 16
	var (
		mu       sync.Mutex
		okIDs    = map[string]bool{}
		noResp   = map[string]bool{}
		failures []string
		okAfter  int // ok receipts for requests sent after the SIGTERM
	)
	var termAt time.Time // written before the SIGTERM, under mu
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range producers {
		nc := s.nats.Connect(t, nats.Name(fmt.Sprintf("producer-%d", w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%d", w, i)
				sent := time.Now()
				msg, err := nc.Request(publishSubject, envelope("$users", id), 10*time.Second)
				mu.Lock()
				switch {
				case errors.Is(err, nats.ErrNoResponders):
					noResp[id] = true
				case err != nil:
					failures = append(failures, id+": "+err.Error())
				default:
					var rc struct {
						OK    bool   `json:"ok"`
						ID    string `json:"id"`
						Error *struct {
							Code string `json:"code"`
						} `json:"error"`
					}
					if json.Unmarshal(msg.Data, &rc) == nil && rc.OK && rc.ID == id {
						okIDs[id] = true
						if !termAt.IsZero() && sent.After(termAt) {
							okAfter++
						}
					} else {
						failures = append(failures, id+": receipt "+string(msg.Data))
					}
				}
				done := err != nil
				mu.Unlock()
				if done {
					return // no responders: the bridge is gone; a failure: reported below
				}
			}
		}()
	}
	testenv.Eventually(t, 20*time.Second, func() error { // burst under way
		mu.Lock()
		defer mu.Unlock()
		if len(okIDs) < 1000 {
			return fmt.Errorf("%d ok receipts so far", len(okIDs))
		}
		return nil
	})
	mu.Lock()
	termAt = time.Now()
	okBefore := len(okIDs)
	mu.Unlock()
	signal(t, p, syscall.SIGTERM)
	st := p.Wait(shutdownTimeout + 5*time.Second)
	if st == nil {
		t.Fatalf("bridge still running %v after SIGTERM (INSTANT_SHUTDOWN_TIMEOUT=%v)", shutdownTimeout+5*time.Second, shutdownTimeout)
	}
	exitAfter := time.Since(termAt)
	if !st.Success() {
		t.Errorf("bridge exited with %s after SIGTERM, want 0", st)
	}
	if exitAfter > shutdownTimeout {
		t.Errorf("bridge took %v to exit, longer than INSTANT_SHUTDOWN_TIMEOUT=%v", exitAfter, shutdownTimeout)
	}
	// With the bridge gone every producer gets no responders at once.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(15 * time.Second):
		close(stop)
		t.Fatal("producers still running 15s after the bridge exited")
	}

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d requests failed (timed out: taken by the bridge and never answered, or a bad receipt), e.g. %v", len(failures), head(failures, 5))
	}
	if len(noResp) == 0 {
		t.Errorf("no request got no responders: the producers did not outlive the bridge")
	}
	var missing []string
	err := stack.Eventually(10*time.Second, func() error {
		got := r.Snapshot()
		missing = missing[:0]
		for id := range okIDs {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d envelopes with an ok receipt not received", len(missing))
		}
		return nil
	})
	if err != nil {
		t.Errorf("%v, e.g. %v", err, head(missing, 10))
	}
	time.Sleep(300 * time.Millisecond) // late publications, if any
	got := r.Snapshot()
	var ghost, dups int
	for id, n := range got {
		if noResp[id] {
			ghost++
			t.Errorf("%s: no responders, but the subscriber received it %d times", id, n)
		}
		if n > 1 {
			dups += n - 1
		}
	}
	if dups > 0 {
		t.Errorf("%d duplicate publications in core mode, where every envelope is sent once", dups)
	}
	t.Logf("%d producers: %d ok receipts (%d before the SIGTERM, %d for requests sent after it), %d no responders, %d failures; %d received (%d duplicates, %d of them no-responders); bridge exited %s %v after SIGTERM",
		producers, len(okIDs), okBefore, okAfter, len(noResp), len(failures), len(got), dups, ghost, st, exitAfter.Round(time.Millisecond))
}
