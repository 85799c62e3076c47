package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/gocent/v3"
	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/pkg/envelope"
)

// subject is where the bridge takes envelopes (its default INSTANT_SUBJECT).
const subject = "instant.publish"

// errorCounts counts failures by a short description.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorCounts) add(what string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[what]++
	e.mu.Unlock()
}

// take moves e's counts into dst and clears e.
func (e *errorCounts) take(dst *errorCounts) {
	e.mu.Lock()
	m := e.m
	e.m = nil
	e.mu.Unlock()
	for k, v := range m {
		for range v {
			dst.add(k)
		}
	}
}

func (e *errorCounts) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, v := range e.m {
		n += v
	}
	return n
}

func (e *errorCounts) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", e.m[k], k)
	}
	return strings.Join(parts, "; ")
}

// maxDuration keeps the largest duration observed, from any goroutine.
type maxDuration struct{ ns atomic.Int64 }

func (m *maxDuration) observe(d time.Duration) {
	for {
		cur := m.ns.Load()
		if int64(d) <= cur || m.ns.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (m *maxDuration) get() time.Duration { return time.Duration(m.ns.Load()) }

// directPayload is the publication data of a direct publish: byte for byte
// the shape the bridge publishes in object mode (id, channel, site, data,
// ts), so both paths carry the same bytes to the subscriber.
type directPayload struct {
	ids      *ids.Generator
	channels []string
}

// channel is where message seq goes: round-robin over the channels.
func (p directPayload) channel(seq int) string { return p.channels[seq%len(p.channels)] }

func (p directPayload) build(dst []byte, run, seq int) []byte {
	return p.buildWithID(dst, run, seq, p.ids.Next())
}

// buildWithID is build with a given id.
func (p directPayload) buildWithID(dst []byte, run, seq int, id string) []byte {
	now := time.Now()
	ch := p.channel(seq)
	env := envelope.Envelope{Channel: ch, Data: json.RawMessage(appendData(nil, run, seq, now))}
	return envelope.AppendPayload(dst, envelope.ModeObject, &env, ch, envelope.Meta{ID: id, Site: "bench", ReceivedAt: now})
}

// directPipe publishes seqs [lo, hi) of run through gocent Pipe, pipe
// commands per request, one request at a time.
func directPipe(ctx context.Context, api *gocent.Client, pl directPayload, run, lo, hi, pipe int, errs *errorCounts, slowest *maxDuration) {
	for start := lo; start < hi && ctx.Err() == nil; start += pipe {
		end := min(start+pipe, hi)
		p := api.Pipe()
		for seq := start; seq < end; seq++ {
			_ = p.AddPublish(pl.channel(seq), pl.build(nil, run, seq))
		}
		start := time.Now()
		replies, err := api.SendPipe(ctx, p)
		slowest.observe(time.Since(start))
		countPipeReplies(replies, err, errs)
	}
}

// countPipeReplies counts a failed Pipe request, or its failed commands.
func countPipeReplies(replies []gocent.Reply, err error, errs *errorCounts) {
	if err != nil {
		errs.add("direct pipe request: " + err.Error())
		return
	}
	for _, r := range replies {
		if r.Error != nil {
			errs.add(fmt.Sprintf("centrifugo error %d %s", r.Error.Code, r.Error.Message))
		}
	}
}

// natsProducer sends envelopes as NATS requests and counts the receipts,
// with at most inflight requests unanswered. Receipts arrive on one inbox
// subscription; no per-request subscription or goroutine.
type natsProducer struct {
	nc    *nats.Conn
	inbox string
	sem   chan struct{}

	ok     atomic.Int64
	failed errorCounts
}

func newNATSProducer(url, name string, inflight int) (*natsProducer, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.ReconnectBufSize(64<<20))
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	p := &natsProducer{nc: nc, inbox: nats.NewInbox(), sem: make(chan struct{}, inflight)}
	sub, err := nc.Subscribe(p.inbox, p.onReceipt)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		nc.Close()
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

var okPrefix = []byte(`{"ok":true`)

func (p *natsProducer) onReceipt(m *nats.Msg) {
	if bytes.HasPrefix(m.Data, okPrefix) {
		p.ok.Add(1)
	} else {
		var r struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(m.Data, &r)
		p.failed.add("receipt ok:false, code " + r.Error.Code)
	}
	<-p.sem
}

// send publishes one envelope as a request, waiting while inflight
// requests are unanswered.
func (p *natsProducer) send(ctx context.Context, data []byte) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := p.nc.PublishRequest(subject, p.inbox, data); err != nil {
		<-p.sem
		p.failed.add("nats publish: " + err.Error())
		return err
	}
	return nil
}

// waitReceipts waits until every request was answered, or d passed; it
// returns how many are still unanswered.
func (p *natsProducer) waitReceipts(ctx context.Context, d time.Duration) int {
	_ = p.nc.Flush()
	deadline := time.Now().Add(d)
	for len(p.sem) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return len(p.sem)
}

func (p *natsProducer) close() { p.nc.Close() }

// envelopeBytes is the publish envelope a producer sends.
func envelopeBytes(dst []byte, channel string, run, seq int) []byte {
	dst = append(dst, `{"channel":`...)
	dst = append(dst, '"')
	dst = append(dst, channel...) // channel names of the benchmark need no escaping
	dst = append(dst, `","data":`...)
	dst = appendData(dst, run, seq, time.Now())
	return append(dst, '}')
}

// pace calls send(i) for i in [0, n) at rate per second, on schedule: a
// late call is made at once (no skipped sends), so the average rate holds.
// It returns the time from the first to the last call.
func pace(ctx context.Context, n, rate int, send func(i int)) time.Duration {
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		send(i)
	}
	return time.Since(start)
}
