package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/gocent/v3"
)

// The direct-ordered baseline is the upper bound for in-order delivery on
// one channel: one publisher, one request in flight at a time, strictly in
// order, and, like the bridge, the next request ready when the current one
// is answered. It keeps gocent's Pipe (same endpoint, format and encoding
// as direct-batch), but gocent's SendPipe encodes the request body itself,
// so the body cannot be encoded ahead and handed to it: instead the next
// SendPipe runs while the current request is in flight, and its HTTP
// request waits in the transport (inTurn) until the current response has
// been read in full.

// gateKey is the context key of a request's gate.
type gateKey struct{}

// gate orders one request after the one before it.
type gate struct {
	after   <-chan struct{} // closed when the previous request is complete
	done    chan struct{}   // closed when this one is (or failed)
	once    sync.Once
	slowest *maxDuration // the round trip, from sending to the response read in full
}

func (g *gate) release() { g.once.Do(func() { close(g.done) }) }

// inTurn is an http.RoundTripper that holds a request whose context has a
// gate until the previous request of the gate is complete, and reads the
// response in full before it lets the next one go. Requests without a gate
// pass through.
type inTurn struct {
	next    http.RoundTripper
	waiting atomic.Int32 // requests encoded and held at their gate
}

func (t *inTurn) RoundTrip(req *http.Request) (*http.Response, error) {
	g, _ := req.Context().Value(gateKey{}).(*gate)
	if g == nil {
		return t.next.RoundTrip(req)
	}
	defer g.release()
	t.waiting.Add(1)
	select {
	case <-g.after:
		t.waiting.Add(-1)
	case <-req.Context().Done():
		t.waiting.Add(-1)
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, req.Context().Err()
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.slowest.observe(time.Since(start))
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// orderedPipe publishes seqs [lo, hi) of run through gocent Pipe,
// perRequest commands per request, one request in flight at a time and in
// order; the next request is built and encoded while the current one is in
// flight. api's HTTP client must use an inTurn transport.
func orderedPipe(ctx context.Context, api *gocent.Client, pl directPayload, run, lo, hi, perRequest int, errs *errorCounts, slowest *maxDuration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, 2) // the request in flight and the next one
	prev := make(chan struct{})
	close(prev)
	for start := lo; start < hi; start += perRequest {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		p := api.Pipe()
		for seq := start; seq < min(start+perRequest, hi); seq++ {
			_ = p.AddPublish(pl.channel(seq), pl.build(nil, run, seq))
		}
		g := &gate{after: prev, done: make(chan struct{}), slowest: slowest}
		prev = g.done
		wg.Go(func() {
			defer func() { <-slots }()
			defer g.release() // also when SendPipe fails before its request
			replies, err := api.SendPipe(context.WithValue(ctx, gateKey{}, g), p)
			countPipeReplies(replies, err, errs)
		})
	}
}
