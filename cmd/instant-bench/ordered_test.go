package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"

	"github.com/instant-go/instant/internal/ids"
)

// TestOrderedPipe: direct-ordered sends its requests one at a time, in
// order, every event once, and each next request is encoded (held at its
// gate) while the one before it is in flight.
func TestOrderedPipe(t *testing.T) {
	const total, per = 1000, 100
	var (
		mu       sync.Mutex
		seqs     []int64
		inFlight atomic.Int32
		maxFly   int32
		prepared int // requests during which the next one was already encoded
	)
	tr := &inTurn{next: http.DefaultTransport}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		body, _ := io.ReadAll(r.Body)
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		lines := 0
		mu.Lock()
		maxFly = max(maxFly, n)
		for sc.Scan() {
			seq, _ := field(sc.Bytes(), `"seq":`)
			seqs = append(seqs, seq)
			lines++
		}
		last := len(seqs) == total
		mu.Unlock()
		// The next request is encoded while this one is in flight: wait
		// (bounded) for it to reach its gate.
		for deadline := time.Now().Add(2 * time.Second); !last && tr.waiting.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if tr.waiting.Load() > 0 {
			mu.Lock()
			prepared++
			mu.Unlock()
		}
		for range lines {
			_, _ = io.WriteString(w, "{\"result\":{}}\n")
		}
	}))
	defer srv.Close()
	api := gocent.New(gocent.Config{Addr: srv.URL, Key: "k", HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: tr}})
	var errs errorCounts
	var slowest maxDuration
	orderedPipe(context.Background(), api, directPayload{ids: ids.New(), channels: []string{"bench"}}, 1, 0, total, per, &errs, &slowest)
	if errs.total() != 0 {
		t.Fatalf("errors: %s", errs.String())
	}
	if len(seqs) != total {
		t.Fatalf("got %d events, want %d", len(seqs), total)
	}
	for i, s := range seqs {
		if s != int64(i) {
			t.Fatalf("event %d has seq %d: want the events in order", i, s)
		}
	}
	if m := maxFly; m != 1 {
		t.Errorf("%d requests in flight at once, want 1", m)
	}
	if want := total/per - 1; prepared != want {
		t.Errorf("the next request was encoded during %d of the requests, want %d (all but the last)", prepared, want)
	}
	if slowest.get() <= 0 {
		t.Error("no round trip time observed")
	}
}
