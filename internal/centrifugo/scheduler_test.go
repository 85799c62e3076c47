package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeSender is a Sender in memory: it records every request and answers
// with reply, or accepts every command when reply is nil.
type fakeSender struct {
	reply func(ctx context.Context, n int32, cmds []Command) ([]Reply, error)

	calls    atomic.Int32
	inflight atomic.Int32
	maxIn    atomic.Int32 // most requests in flight at once

	mu       sync.Mutex
	requests [][]Command
	times    []time.Time
}

func (s *fakeSender) Send(ctx context.Context, cmds []Command) ([]Reply, error) {
	n := s.calls.Add(1)
	in := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for m := s.maxIn.Load(); in > m && !s.maxIn.CompareAndSwap(m, in); m = s.maxIn.Load() {
	}
	s.mu.Lock()
	s.requests = append(s.requests, slices.Clone(cmds))
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	if s.reply == nil {
		return okReplies(cmds), nil
	}
	return s.reply(ctx, n, cmds)
}

func (s *fakeSender) Ready(context.Context) error { return nil }

// requestsCopy returns the requests sent, in order.
func (s *fakeSender) requestsCopy() [][]Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// sizes returns the number of commands of each request, in order.
func (s *fakeSender) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, r := range s.requests {
		out = append(out, len(r))
	}
	return out
}

func okReplies(cmds []Command) []Reply {
	out := make([]Reply, len(cmds))
	for i, c := range cmds {
		if c.Channels == nil {
			out[i] = Reply{Kind: ReplyPublished, Offset: 7, Epoch: "ep"}
			continue
		}
		out[i].Kind = ReplyBroadcast
		for range c.Channels {
			out[i].PerChannel = append(out[i].PerChannel, Reply{Kind: ReplyPublished, Offset: 1, Epoch: "e"})
		}
	}
	return out
}

// blockFirst makes the first request wait for release (or its context).
func blockFirst(release <-chan struct{}) func(context.Context, int32, []Command) ([]Reply, error) {
	return func(ctx context.Context, n int32, cmds []Command) ([]Reply, error) {
		if n == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, &RequestError{Unavailable: true, Err: ctx.Err()}
			}
		}
		return okReplies(cmds), nil
	}
}

func newTestForwarder(t *testing.T, s Sender, cfg Config) *Forwarder {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	f := New(cfg, s, zap.NewNop(), nil)
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// submit queues one item and returns a channel with its outcome.
func submit(t *testing.T, f *Forwarder, cmds ...Command) <-chan Outcome {
	t.Helper()
	ch := make(chan Outcome, 1)
	if err := f.Submit(context.Background(), &Item{Commands: cmds, Done: func(o Outcome) { ch <- o }}); err != nil {
		t.Fatal(err)
	}
	return ch
}

func wait(t *testing.T, ch <-chan Outcome) Outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome within 10s")
		return Outcome{}
	}
}

func pub(ch string) Command { return Command{Channel: ch, Data: []byte(`{}`)} }

// waitCalls waits until the sender has had n requests.
func (s *fakeSender) waitCalls(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("sender had %d requests, want %d", s.calls.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// drained waits until the dispatcher has taken every submitted item.
func drained(t *testing.T, f *Forwarder) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.in) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("dispatcher did not take the submitted items")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForwardResults(t *testing.T) {
	f := newTestForwarder(t, &fakeSender{}, Config{})
	o := wait(t, submit(t, f, pub("a")))
	if o.Err != nil || len(o.Results) != 1 || o.Results[0] != (Result{Channel: "a", Offset: 7, Epoch: "ep"}) {
		t.Fatalf("outcome %+v", o)
	}
	o = wait(t, submit(t, f, Command{Channels: []string{"a", "b"}, Data: []byte(`{}`)}, pub("c")))
	want := []Result{{"a", 1, "e"}, {"b", 1, "e"}, {"c", 7, "ep"}}
	if o.Err != nil || fmt.Sprint(o.Results) != fmt.Sprint(want) {
		t.Fatalf("outcome %+v, want results %v", o, want)
	}
}

// TestForwardBatching: items that accumulate while the only request slot is
// busy leave together, in batches of at most MaxBatch commands.
func TestForwardBatching(t *testing.T) {
	release := make(chan struct{})
	s := &fakeSender{reply: blockFirst(release)}
	f := newTestForwarder(t, s, Config{MaxBatch: 4, Concurrency: 1})
	first := submit(t, f, pub("x"))
	s.waitCalls(t, 1)
	var rest []<-chan Outcome
	for i := range 10 {
		rest = append(rest, submit(t, f, pub(fmt.Sprintf("c%d", i))))
	}
	drained(t, f)
	close(release)
	for _, ch := range append(rest, first) {
		if o := wait(t, ch); o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	if got := fmt.Sprint(s.sizes()); got != "[1 4 4 2]" {
		t.Errorf("request sizes %s, want [1 4 4 2]", got)
	}
}

// TestForwardOrderUnderConcurrency sends many items on few channels with
// small batches and several request slots; the sender records the order in
// which commands arrive per channel.
func TestForwardOrderUnderConcurrency(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]int{} // per channel, the order the sender got them
	s := &fakeSender{reply: func(_ context.Context, _ int32, cmds []Command) ([]Reply, error) {
		mu.Lock()
		for _, c := range cmds {
			var i int
			if _, err := fmt.Sscanf(string(c.Data), `{"i":%d}`, &i); err != nil {
				t.Errorf("data %s: %v", c.Data, err)
			}
			seen[c.Channel] = append(seen[c.Channel], i)
		}
		mu.Unlock()
		time.Sleep(200 * time.Microsecond) // let requests overlap
		return okReplies(cmds), nil
	}}
	f := newTestForwarder(t, s, Config{MaxBatch: 5, Concurrency: 4})
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		cmd := Command{Channel: fmt.Sprintf("ch%d", i%3), Data: fmt.Appendf(nil, `{"i":%d}`, i)}
		if err := f.Submit(context.Background(), &Item{Commands: []Command{cmd}, Done: func(o Outcome) {
			if o.Err != nil {
				t.Errorf("item %d: %v", i, o.Err)
			}
			wg.Done()
		}}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for ch, is := range seen {
		total += len(is)
		for k := 1; k < len(is); k++ {
			if is[k] <= is[k-1] {
				t.Fatalf("channel %s: %d sent after %d", ch, is[k], is[k-1])
			}
		}
	}
	if total != n {
		t.Errorf("sender got %d commands, want %d", total, n)
	}
	if m := s.maxIn.Load(); m < 2 {
		t.Errorf("at most %d request in flight: the test did not exercise concurrency", m)
	}
	batched := false
	for _, size := range s.sizes() {
		if size > 5 {
			t.Errorf("request of %d commands, want at most 5", size)
		}
		batched = batched || size > 1
	}
	if !batched {
		t.Error("no request carried more than one command: batching did not happen")
	}
}

func TestForwardRetries(t *testing.T) {
	unavailable := &RequestError{Unavailable: true, HTTPStatus: 503, Err: errors.New("status 503")}
	tests := []struct {
		name      string
		err       error // returned by every attempt before success
		failures  int32 // attempts that fail
		wantCalls int32
		wantCode  string // "" for success
	}{
		{"unavailable until exhausted", unavailable, 100, 3, CodeUpstreamUnavailable},
		{"unavailable then success", unavailable, 2, 3, ""},
		{"other errors count as unavailable", errors.New("connection reset"), 100, 3, CodeUpstreamUnavailable},
		{"refused is not retried", &RequestError{HTTPStatus: 400, Err: errors.New("status 400")}, 100, 1, CodeUpstreamRejected},
		{"a refused API key is retried like an outage", &RequestError{HTTPStatus: 401, Err: errors.New("status 401")}, 100, 3, CodeUpstreamUnavailable},
		{"forbidden too", &RequestError{HTTPStatus: 403, Err: errors.New("status 403")}, 2, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeSender{reply: func(_ context.Context, n int32, cmds []Command) ([]Reply, error) {
				if n <= tc.failures {
					return nil, tc.err
				}
				return okReplies(cmds), nil
			}}
			f := newTestForwarder(t, s, Config{Attempts: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 8 * time.Millisecond})
			o := wait(t, submit(t, f, pub("a")))
			switch {
			case tc.wantCode == "" && o.Err != nil:
				t.Errorf("outcome %v, want success", o.Err)
			case tc.wantCode != "" && (o.Err == nil || o.Err.Code() != tc.wantCode):
				t.Errorf("outcome %+v, want %s", o, tc.wantCode)
			case tc.wantCode != "" && !strings.Contains(o.Err.Error(), tc.err.Error()):
				t.Errorf("outcome %v does not name the request's error %q", o.Err, tc.err)
			}
			if got := s.calls.Load(); got != tc.wantCalls {
				t.Errorf("requests %d, want %d", got, tc.wantCalls)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			for i := 1; i < len(s.times); i++ {
				want := min(5*time.Millisecond<<(i-1), 8*time.Millisecond)
				if gap := s.times[i].Sub(s.times[i-1]); gap < want {
					t.Errorf("attempt %d came %v after the previous, want a backoff of at least %v", i+1, gap, want)
				}
			}
		})
	}
}

// TestRequestErrorFailsItsBatch: a request-level error fails every item of
// that request, and only those.
func TestRequestErrorFailsItsBatch(t *testing.T) {
	release := make(chan struct{})
	block := blockFirst(release)
	s := &fakeSender{reply: func(ctx context.Context, n int32, cmds []Command) ([]Reply, error) {
		if n == 2 {
			return nil, &RequestError{HTTPStatus: 400, Err: errors.New("status 400")}
		}
		return block(ctx, n, cmds)
	}}
	f := newTestForwarder(t, s, Config{Concurrency: 1})
	first := submit(t, f, pub("a"))
	s.waitCalls(t, 1)
	batch := []<-chan Outcome{submit(t, f, pub("b")), submit(t, f, pub("c")), submit(t, f, Command{Channels: []string{"d", "e"}, Data: []byte(`{}`)})}
	drained(t, f)
	close(release)
	if o := wait(t, first); o.Err != nil {
		t.Errorf("first request: %v", o.Err)
	}
	for i, ch := range batch {
		if o := wait(t, ch); o.Err == nil || o.Err.Code() != CodeUpstreamRejected || !strings.Contains(o.Err.Error(), "400") {
			t.Errorf("item %d of the failed request: %+v, want upstream_rejected naming 400", i, o)
		}
	}
	if got := fmt.Sprint(s.sizes()); got != "[1 3]" {
		t.Errorf("request sizes %s, want [1 3]", got)
	}
	if o := wait(t, submit(t, f, pub("b"))); o.Err != nil {
		t.Errorf("a later request: %v", o.Err)
	}
}

func TestForwardPerCommandErrors(t *testing.T) {
	s := &fakeSender{reply: func(_ context.Context, _ int32, cmds []Command) ([]Reply, error) {
		out := okReplies(cmds)
		for i, c := range cmds {
			switch {
			case c.Channel == "bad":
				out[i] = Reply{Err: &ReplyError{Code: 102, Message: "unknown channel"}}
			case c.Channels != nil:
				out[i].PerChannel[1] = Reply{Err: &ReplyError{Code: 103, Message: "permission denied"}}
			}
		}
		return out, nil
	}}
	release := make(chan struct{})
	outer := &fakeSender{reply: func(ctx context.Context, n int32, cmds []Command) ([]Reply, error) {
		if n == 1 {
			<-release
		}
		return s.Send(ctx, cmds)
	}}
	f := newTestForwarder(t, outer, Config{Concurrency: 1})
	first := submit(t, f, pub("first"))
	outer.waitCalls(t, 1)
	bad := submit(t, f, pub("bad"))
	good := submit(t, f, pub("good"))
	bc := submit(t, f, Command{Channels: []string{"x", "y"}, Data: []byte(`{}`)})
	drained(t, f)
	close(release)
	wait(t, first)
	if o := wait(t, bad); o.Err == nil || o.Err.Code() != CodeUpstreamRejected || !strings.Contains(o.Err.Error(), "102") {
		t.Errorf("bad: %+v, want upstream_rejected with Centrifugo's code 102", o)
	}
	if o := wait(t, good); o.Err != nil {
		t.Errorf("good: %+v, want success: one command's error must not fail its batch", o)
	}
	if o := wait(t, bc); o.Err == nil || !strings.Contains(o.Err.Error(), "y") || !strings.Contains(o.Err.Error(), "103") {
		t.Errorf("broadcast: %+v, want upstream_rejected naming channel y and code 103", o)
	}
	if got := fmt.Sprint(s.sizes()); got != "[1 3]" {
		t.Errorf("request sizes %s, want [1 3]: the three items must share a request", got)
	}
}

// TestForwardRepliesThatSayNothing: replies too few, of the wrong kind, or
// a broadcast's without one response per channel do not say whether
// Centrifugo applied the commands: the request is sent again (safe with
// idempotency keys), never taken for success, and fails upstream_unavailable
// once the attempts are spent.
func TestForwardRepliesThatSayNothing(t *testing.T) {
	bc := Command{Channels: []string{"x", "y"}, Data: []byte(`{}`)}
	tests := []struct {
		name  string
		cmd   Command
		reply func([]Command) []Reply
	}{
		{"no replies", pub("a"), func([]Command) []Reply { return nil }},
		{"an empty reply to a publish", pub("a"), func([]Command) []Reply { return []Reply{{}} }},
		{"a publish reply to a broadcast", bc, func([]Command) []Reply { return []Reply{{Kind: ReplyPublished}} }},
		{"a broadcast without responses", bc, func([]Command) []Reply { return []Reply{{Kind: ReplyBroadcast}} }},
		{"a broadcast response without a result", bc, func([]Command) []Reply {
			return []Reply{{Kind: ReplyBroadcast, PerChannel: []Reply{{Kind: ReplyPublished}, {}}}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeSender{reply: func(_ context.Context, n int32, cmds []Command) ([]Reply, error) {
				if n == 1 {
					return tc.reply(cmds), nil
				}
				return okReplies(cmds), nil
			}}
			f := newTestForwarder(t, s, Config{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
			if o := wait(t, submit(t, f, tc.cmd)); o.Err != nil {
				t.Errorf("outcome %v, want success on the second attempt", o.Err)
			}
			if got := s.calls.Load(); got != 2 {
				t.Errorf("requests %d, want 2 (the first reply said nothing)", got)
			}
		})
	}
	s := &fakeSender{reply: func(context.Context, int32, []Command) ([]Reply, error) { return nil, nil }}
	f := newTestForwarder(t, s, Config{Attempts: 2, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if o := wait(t, submit(t, f, pub("a"))); o.Err == nil || o.Err.Code() != CodeUpstreamUnavailable {
		t.Errorf("outcome %+v after the attempts: want upstream_unavailable", o)
	}
}

func TestForwardItemWithoutCommands(t *testing.T) {
	s := &fakeSender{}
	f := newTestForwarder(t, s, Config{})
	if o := wait(t, submit(t, f)); o.Err != nil || len(o.Results) != 0 {
		t.Fatalf("outcome %+v, want success with no results", o)
	}
	if got := s.calls.Load(); got != 0 {
		t.Errorf("requests %d, want none for nothing to send", got)
	}
}

func TestCloseFlushesAndRefusesNewItems(t *testing.T) {
	f := newTestForwarder(t, &fakeSender{}, Config{})
	var outcomes []<-chan Outcome
	for range 100 {
		outcomes = append(outcomes, submit(t, f, pub("a")))
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, ch := range outcomes {
		select {
		case o := <-ch:
			if o.Err != nil {
				t.Errorf("item %d: %v", i, o.Err)
			}
		default:
			t.Fatalf("item %d has no outcome after Close returned", i)
		}
	}
	if err := f.Submit(context.Background(), &Item{Done: func(Outcome) {}}); err != ErrClosed {
		t.Errorf("Submit after Close: %v, want ErrClosed", err)
	}
}

// TestCloseTimeoutFailsWaitingItems: when Close's context ends, the request
// being retried and the items still waiting fail as a shutdown.
func TestCloseTimeoutFailsWaitingItems(t *testing.T) {
	s := &fakeSender{reply: func(context.Context, int32, []Command) ([]Reply, error) {
		return nil, &RequestError{Unavailable: true, HTTPStatus: 503, Err: errors.New("status 503")}
	}}
	f := newTestForwarder(t, s, Config{Attempts: 1000, Backoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Concurrency: 1})
	first := submit(t, f, pub("a"))
	second := submit(t, f, pub("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); err == nil {
		t.Fatal("Close: want the context's error")
	}
	for name, ch := range map[string]<-chan Outcome{"retried": first, "waiting": second} {
		if o := wait(t, ch); o.Err == nil || o.Err.Code() != CodeUpstreamUnavailable || !o.Err.Shutdown() {
			t.Errorf("%s: %+v, want upstream_unavailable marked as a shutdown", name, o)
		}
	}
}

// TestCloseIsBoundedWhenCentrifugoHangs: a request that never answers and a
// producer blocked on a full queue do not hold Close past its context.
func TestCloseIsBoundedWhenCentrifugoHangs(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := &fakeSender{reply: func(ctx context.Context, n int32, cmds []Command) ([]Reply, error) {
		return blockFirst(release)(ctx, 1, cmds) // every request hangs
	}}
	f := newTestForwarder(t, s, Config{MaxBatch: 1, Concurrency: 1, QueueSize: 1})
	first := submit(t, f, pub("a"))
	blocked := make(chan error, 1)
	go func() { // fill the queue until Submit blocks
		for {
			if err := f.Submit(context.Background(), &Item{Commands: []Command{pub("a")}, Done: func(Outcome) {}}); err != nil {
				blocked <- err
				return
			}
		}
	}()
	// Wait until the producer is blocked: the queue, Submit's buffer (one
	// item) and the dispatcher's hand are full.
	deadline := time.Now().Add(5 * time.Second)
	for len(f.in) < cap(f.in) {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not fill")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := f.Close(ctx); err == nil {
		t.Fatal("Close: want the context's error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a 300ms context", d)
	}
	if err := <-blocked; err != ErrClosed {
		t.Errorf("blocked Submit: %v, want ErrClosed", err)
	}
	if o := wait(t, first); o.Err == nil || o.Err.Code() != CodeUpstreamUnavailable || !strings.Contains(o.Err.Error(), "shutdown") || !o.Err.Shutdown() {
		t.Errorf("in-flight item: %+v, want upstream_unavailable marked as a shutdown", o)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	_ = f.Close(ctx2) // a second Close must not panic
}

// TestSubmitBlocksWhenFull checks that the queue is bounded: with the only
// request slot stuck, Submit stops taking items after QueueSize waiting
// plus a buffer of MaxBatch.
func TestSubmitBlocksWhenFull(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newTestForwarder(t, &fakeSender{reply: blockFirst(release)}, Config{MaxBatch: 1, Concurrency: 1, QueueSize: 3})
	accepted := 0
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := f.Submit(ctx, &Item{Commands: []Command{pub("a")}, Done: func(Outcome) {}})
		cancel()
		if err != nil {
			break
		}
		accepted++
	}
	// 1 in flight + 3 waiting + 1 buffered; the dispatcher may hold one more
	// item in hand while it waits for room.
	if accepted < 5 || accepted > 6 {
		t.Errorf("accepted %d items before blocking, want 5 or 6 (bounded queue)", accepted)
	}
}

// TestTakeKeepsChannelOrder checks the batch selection directly.
func TestTakeKeepsChannelOrder(t *testing.T) {
	f := &Forwarder{cfg: Config{MaxBatch: 3}}
	it := func(chs ...string) *Item {
		if len(chs) == 1 {
			return &Item{Commands: []Command{{Channel: chs[0]}}}
		}
		return &Item{Commands: []Command{{Channels: chs}}}
	}
	a1, b1, a2, c1, ab, d1 := it("a"), it("b"), it("a"), it("c"), it("a", "b"), it("d")
	busy := map[string]struct{}{"b": {}}
	batches, chs, rest := f.take([]*Item{a1, b1, a2, c1, ab, d1}, busy, map[string]struct{}{}, 0, 1)
	batch, chans := one(t, batches, chs)
	// b1 waits for the busy b; a1, a2, c1 fill the batch (3 commands); ab
	// touches b (held) and d1 is past the limit.
	if fmt.Sprint(batch) != fmt.Sprint([]*Item{a1, a2, c1}) {
		t.Errorf("batch %v, want a1 a2 c1", batch)
	}
	if fmt.Sprint(chans) != "[a c]" {
		t.Errorf("channels %v, want [a c]", chans)
	}
	if fmt.Sprint(rest) != fmt.Sprint([]*Item{b1, ab, d1}) {
		t.Errorf("rest %v, want b1 ab d1", rest)
	}
	// An item held for a channel holds later items of that channel even
	// when they could go: here ab is held (b busy) so a later a waits too.
	a3 := it("a")
	batches, chs, rest = f.take([]*Item{ab, a3, c1}, busy, map[string]struct{}{}, 0, 1)
	batch, _ = one(t, batches, chs)
	if fmt.Sprint(batch) != fmt.Sprint([]*Item{c1}) || fmt.Sprint(rest) != fmt.Sprint([]*Item{ab, a3}) {
		t.Errorf("batch %v rest %v: a3 must not overtake ab", batch, rest)
	}
}

func TestTakeFromStart(t *testing.T) {
	f := &Forwarder{cfg: Config{MaxBatch: 10}}
	x1 := &Item{Commands: []Command{{Channel: "x"}}}
	x2 := &Item{Commands: []Command{{Channel: "x"}}}
	y := &Item{Commands: []Command{{Channel: "y"}}}
	held := map[string]struct{}{"x": {}}
	batches, chs, rest := f.take([]*Item{x1, x2, y}, map[string]struct{}{}, held, 1, 1)
	batch, _ := one(t, batches, chs)
	if fmt.Sprint(batch) != fmt.Sprint([]*Item{y}) || fmt.Sprint(rest) != fmt.Sprint([]*Item{x1, x2}) {
		t.Errorf("batch %v rest %v: want y to go and x1 x2 to keep waiting in order", batch, rest)
	}
}

// one returns the only batch take made.
func one(t *testing.T, batches [][]*Item, chans [][]string) ([]*Item, []string) {
	t.Helper()
	if len(batches) != 1 || len(chans) != 1 {
		t.Fatalf("take made %d batches, want 1", len(batches))
	}
	return batches[0], chans[0]
}

// TestTakeSplitsChannelsOverSlots: with several free slots, envelopes of
// different channels go in different batches that can be in flight at once,
// and each channel stays in one batch.
func TestTakeSplitsChannelsOverSlots(t *testing.T) {
	f := &Forwarder{cfg: Config{MaxBatch: 100}}
	it := func(chs ...string) *Item {
		if len(chs) == 1 {
			return &Item{Commands: []Command{{Channel: chs[0]}}}
		}
		return &Item{Commands: []Command{{Channels: chs}}}
	}
	a1, b1, a2, c1, b2, ab, d1 := it("a"), it("b"), it("a"), it("c"), it("b"), it("a", "b"), it("d")
	batches, chans, rest := f.take([]*Item{a1, b1, a2, c1, b2, ab, d1}, map[string]struct{}{}, map[string]struct{}{}, 0, 3)
	// a -> batch 0, b -> batch 1, c -> batch 2; ab spans batches 0 and 1, so
	// it waits; d goes to the smallest batch (c's).
	want := fmt.Sprint([][]*Item{{a1, a2}, {b1, b2}, {c1, d1}})
	if fmt.Sprint(batches) != want {
		t.Errorf("batches %v, want %v", batches, want)
	}
	if fmt.Sprint(chans) != "[[a] [b] [c d]]" {
		t.Errorf("channels %v, want [[a] [b] [c d]]", chans)
	}
	if fmt.Sprint(rest) != fmt.Sprint([]*Item{ab}) {
		t.Errorf("rest %v, want [ab]", rest)
	}
	seen := map[string]int{}
	for b, chs := range chans {
		for _, ch := range chs {
			if prev, ok := seen[ch]; ok && prev != b {
				t.Errorf("channel %s in batches %d and %d", ch, prev, b)
			}
			seen[ch] = b
		}
	}
}

// TestHardening7TooLargeRequestIsSplit: a request Centrifugo answers 413 is
// split until the one item too large alone is found; it fails too_large,
// the others are forwarded, and a channel's items keep their order.
func TestHardening7TooLargeRequestIsSplit(t *testing.T) {
	release := make(chan struct{})
	block := blockFirst(release)
	s := &fakeSender{reply: func(ctx context.Context, n int32, cmds []Command) ([]Reply, error) {
		for _, c := range cmds {
			if string(c.Data) == `"huge"` {
				return nil, &RequestError{HTTPStatus: 413, Err: errors.New("status 413")}
			}
		}
		return block(ctx, n, cmds)
	}}
	f := newTestForwarder(t, s, Config{Concurrency: 1})
	first := submit(t, f, pub("a"))
	s.waitCalls(t, 1)
	huge := Command{Channel: "b", Data: []byte(`"huge"`)}
	batch := []<-chan Outcome{submit(t, f, pub("b")), submit(t, f, pub("c")), submit(t, f, huge), submit(t, f, pub("b")), submit(t, f, pub("d"))}
	drained(t, f)
	close(release)
	if o := wait(t, first); o.Err != nil {
		t.Errorf("first request: %v", o.Err)
	}
	for i, ch := range batch {
		o := wait(t, ch)
		switch {
		case i == 2 && (o.Err == nil || o.Err.Code() != "too_large"):
			t.Errorf("the huge item: %+v, want too_large", o)
		case i != 2 && o.Err != nil:
			t.Errorf("item %d: %v, want forwarded", i, o.Err)
		}
	}
	// Channel b's items went in submission order: pub, then (huge refused), then pub.
	var bSeen []string
	for _, r := range s.requestsCopy() {
		for _, c := range r {
			if c.Channel == "b" {
				bSeen = append(bSeen, string(c.Data))
			}
		}
	}
	if len(bSeen) < 2 || bSeen[len(bSeen)-1] == `"huge"` {
		t.Errorf("channel b's commands in request order %q: want the last one after the huge one", bSeen)
	}
}

// TestHardening2BytesBound: Submit blocks while the bytes held reach
// MaxPendingBytes, and refuses an item over MaxRequestBytes with too_large.
func TestHardening2BytesBound(t *testing.T) {
	release := make(chan struct{})
	s := &fakeSender{reply: blockFirst(release)}
	f := newTestForwarder(t, s, Config{Concurrency: 1, MaxPendingBytes: 1000, MaxRequestBytes: 600})
	big := Command{Channel: "x", Data: make([]byte, 700)}
	if err := f.Submit(context.Background(), &Item{Commands: []Command{big}, Done: func(Outcome) {}}); err == nil || !strings.Contains(err.Error(), "too_large") {
		t.Errorf("an item over MaxRequestBytes: %v, want too_large", err)
	}
	half := Command{Channel: "a", Data: make([]byte, 400)}
	first := submit(t, f, half)
	s.waitCalls(t, 1)
	second := submit(t, f, Command{Channel: "b", Data: make([]byte, 400)})
	// A third item would take the held bytes over 1000: Submit blocks.
	blocked := make(chan error, 1)
	go func() {
		blocked <- f.Submit(context.Background(), &Item{Commands: []Command{{Channel: "c", Data: make([]byte, 400)}}, Done: func(Outcome) {}})
	}()
	select {
	case err := <-blocked:
		t.Fatalf("Submit over the byte bound returned %v without waiting (held %d)", err, f.HeldBytes())
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	wait(t, first)
	wait(t, second)
	select {
	case err := <-blocked:
		if err != nil {
			t.Errorf("Submit once bytes were released: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Submit still blocked after the bytes were released")
	}
}
