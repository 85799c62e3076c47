package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge-go"

	"github.com/instant-go/instant/internal/tokens"
)

// Every message carries {"run":R,"seq":S,"sent":UNIX_NANOS} as its data
// (direct) or as its envelope's data (bridge): the subscriber counts distinct
// (run, seq) pairs and takes the latency from sent.
func appendData(dst []byte, run, seq int, sent time.Time) []byte {
	dst = append(dst, `{"run":`...)
	dst = strconv.AppendInt(dst, int64(run), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, `,"sent":`...)
	dst = strconv.AppendInt(dst, sent.UnixNano(), 10)
	return append(dst, '}')
}

// field returns the integer after `"key":` in data.
func field(data []byte, key string) (int64, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0, false
	}
	j := i + len(key)
	k := j
	for k < len(data) && data[k] >= '0' && data[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(data[j:k]), 10, 64)
	return n, err == nil
}

// tally is what the subscriber received for one run.
type tally struct {
	total    int
	seen     []uint64 // bitmap of seq
	distinct int
	dups     int
	last     time.Time
	lat      []time.Duration
	done     chan struct{} // closed when every seq arrived
	retired  bool          // its scenario was counted: later copies are counted as late

	// Order check: seqs [0, total) are split into producers equal ranges,
	// one per producer, each sent in increasing order, round-robin over
	// channels (seq % channels). Order holds per producer and channel: the
	// bridge keeps it per channel, not across channels. lastSeq has one
	// entry per (producer, channel); reordered counts first arrivals below
	// the last seq seen of theirs.
	producers, channels int
	lastSeq             []int64
	reordered           int
}

// producerOf is the index of the range seq belongs to: the range of
// producer i is [total*i/n, total*(i+1)/n), as the senders split it.
func (t *tally) producerOf(seq int64) int {
	n, total := int64(t.producers), int64(t.total)
	i := seq * n / total
	for i+1 < n && total*(i+1)/n <= seq {
		i++
	}
	for i > 0 && total*i/n > seq {
		i--
	}
	return int(i)
}

// lateCopyWait is how long a scenario waits, after its last event's first
// copy, for copies that arrive late (a retried request, a redelivery), so
// they count as the scenario's duplicates.
const lateCopyWait = 400 * time.Millisecond

// subscriber is one websocket client (centrifuge-go) on the benchmark channel.
type subscriber struct {
	client *centrifuge.Client
	linger time.Duration // lateCopyWait

	mu   sync.Mutex
	runs map[int]*tally // every run, counted ones retired
	// After a run was counted: strays are first copies (past the drain
	// timeout) and unreadable publications or those of no run; lateDups
	// are copies of events the run already had.
	strays, lateDups int
	disconnects      []string
}

func connectSubscriber(ctx context.Context, wsURL, protocol string, channels []string, signer *tokens.Signer) (*subscriber, error) {
	conn, _, err := signer.Connection("instant-bench", nil, time.Hour)
	if err != nil {
		return nil, err
	}
	s := &subscriber{runs: map[int]*tally{}, linger: lateCopyWait}
	ccfg := centrifuge.Config{Token: conn, Name: "instant-bench"}
	if protocol == "protobuf" {
		s.client = centrifuge.NewProtobufClient(wsURL, ccfg)
	} else {
		s.client = centrifuge.NewJsonClient(wsURL, ccfg)
	}
	// Every connection or subscription lost after the start is recorded:
	// publications sent meanwhile are lost to this subscriber.
	var connected atomic.Bool
	s.client.OnConnected(func(centrifuge.ConnectedEvent) { connected.Store(true) })
	s.client.OnConnecting(func(e centrifuge.ConnectingEvent) {
		if connected.Load() {
			s.lost(fmt.Sprintf("reconnecting: %d %s", e.Code, e.Reason))
		}
	})
	s.client.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		s.lost(fmt.Sprintf("disconnected: %d %s", e.Code, e.Reason))
	})
	if err := s.client.Connect(); err != nil {
		return nil, fmt.Errorf("centrifuge connect: %w", err)
	}
	for _, ch := range channels {
		if err := s.subscribe(ctx, ch, signer); err != nil {
			s.client.Close()
			return nil, err
		}
	}
	return s, nil
}

// subscribe subscribes to channel with a subscription token and waits for
// Centrifugo's answer.
func (s *subscriber) subscribe(ctx context.Context, channel string, signer *tokens.Signer) error {
	tok, _, err := signer.Subscription("instant-bench", channel, time.Hour)
	if err != nil {
		return err
	}
	sub, err := s.client.NewSubscription(channel, centrifuge.SubscriptionConfig{Token: tok})
	if err != nil {
		return err
	}
	subscribed := make(chan error, 1)
	var once sync.Once
	// centrifuge-go keeps one handler per event: this one does both jobs.
	var subscribedOnce atomic.Bool
	sub.OnSubscribed(func(centrifuge.SubscribedEvent) {
		subscribedOnce.Store(true)
		once.Do(func() { subscribed <- nil })
	})
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		once.Do(func() { subscribed <- fmt.Errorf("unsubscribed from %s: %d %s", channel, e.Code, e.Reason) })
	})
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) {
		once.Do(func() { subscribed <- fmt.Errorf("subscription error on %s: %w", channel, e.Error) })
	})
	sub.OnSubscribing(func(e centrifuge.SubscribingEvent) {
		if subscribedOnce.Load() {
			s.lost(fmt.Sprintf("resubscribing to %s: %d %s", channel, e.Code, e.Reason))
		}
	})
	sub.OnPublication(s.onPublication)
	if err := sub.Subscribe(); err != nil {
		return err
	}
	select {
	case err := <-subscribed:
		return err
	case <-time.After(15 * time.Second):
		return fmt.Errorf("no subscription to %s within 15s", channel)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *subscriber) close() { s.client.Close() }

func (s *subscriber) lost(what string) {
	s.mu.Lock()
	s.disconnects = append(s.disconnects, what)
	s.mu.Unlock()
}

func (s *subscriber) onPublication(e centrifuge.PublicationEvent) {
	now := time.Now()
	run, ok1 := field(e.Data, `"run":`)
	seq, ok2 := field(e.Data, `"seq":`)
	sent, ok3 := field(e.Data, `"sent":`)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.runs[int(run)]
	if !ok1 || !ok2 || !ok3 || t == nil || seq < 0 || int(seq) >= t.total {
		s.strays++
		return
	}
	w, bit := seq/64, uint64(1)<<(seq%64)
	seen := t.seen[w]&bit != 0
	t.seen[w] |= bit
	switch {
	case seen && t.retired:
		s.lateDups++
		return
	case seen:
		t.dups++
		return
	case t.retired:
		s.strays++
		return
	}
	if len(t.lastSeq) > 0 {
		i := t.producerOf(seq)*t.channels + int(seq%int64(t.channels))
		if seq < t.lastSeq[i] {
			t.reordered++
		} else {
			t.lastSeq[i] = seq
		}
	}
	t.distinct++
	t.last = now
	t.lat = append(t.lat, now.Sub(time.Unix(0, sent)))
	if t.distinct == t.total {
		close(t.done)
	}
}

// expect registers a run of total messages before any is sent; with
// producers > 0, their order is checked on each of channels (see tally).
func (s *subscriber) expect(run, total, producers, channels int) *tally {
	t := &tally{total: total, seen: make([]uint64, (total+63)/64), lat: make([]time.Duration, 0, total), done: make(chan struct{})}
	if producers > 0 && total > 0 {
		t.producers, t.channels = producers, max(channels, 1)
		t.lastSeq = make([]int64, producers*t.channels)
		for i := range t.lastSeq {
			t.lastSeq[i] = -1
		}
	}
	if total == 0 {
		close(t.done)
	}
	s.mu.Lock()
	s.runs[run] = t
	s.mu.Unlock()
	return t
}

// wait waits until every message of t arrived, or d passed, then s.linger
// more for late copies (counted as t's duplicates), and returns a copy of
// the tally. The run is then retired: copies that arrive later still are
// counted by problems.
func (s *subscriber) wait(ctx context.Context, t *tally, d time.Duration) (tally, error) {
	var err error
	select {
	case <-t.done:
	case <-time.After(d):
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		select {
		case <-time.After(s.linger):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.retired = true
	got := *t
	t.lat = nil // the copy's; the retired tally keeps only what counts copies
	return got, err
}

// problems are the publications no scenario counted: strays and late
// duplicates (see subscriber), and the lost connections.
func (s *subscriber) problems() (strays, lateDups int, disconnects []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strays, s.lateDups, append([]string(nil), s.disconnects...)
}
