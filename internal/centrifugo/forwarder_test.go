package centrifugo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"
	"go.uber.org/zap"
)

// fakeAPI is a Centrifugo HTTP API double for faults a real server cannot be
// made to produce on demand. reply decides each command's answer line.
type fakeAPI struct {
	*httptest.Server
	requests atomic.Int32
	mu       sync.Mutex
	batches  [][]string // channels of each request, in command order
}

type fakeCommand struct {
	Method string `json:"method"`
	Params struct {
		Channel  string          `json:"channel"`
		Channels []string        `json:"channels"`
		Data     json.RawMessage `json:"data"`
	} `json:"params"`
}

func newFakeAPI(t *testing.T, status func(n int32) int, reply func(c fakeCommand) string) *fakeAPI {
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		if code := status(n); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		var lines []string
		var chans []string
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var c fakeCommand
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Errorf("fake API: bad command %q: %v", sc.Text(), err)
				return
			}
			chans = append(chans, c.Params.Channel)
			lines = append(lines, reply(c))
		}
		f.mu.Lock()
		f.batches = append(f.batches, chans)
		f.mu.Unlock()
		_, _ = fmt.Fprint(w, strings.Join(lines, "\n"))
	}))
	t.Cleanup(f.Close)
	return f
}

func okReply(c fakeCommand) string {
	if c.Method == "broadcast" {
		var rs []string
		for range c.Params.Channels {
			rs = append(rs, `{"result":{"offset":1,"epoch":"e"}}`)
		}
		return `{"result":{"responses":[` + strings.Join(rs, ",") + `]}}`
	}
	return `{"result":{"offset":7,"epoch":"ep"}}`
}

func always(code int) func(int32) int { return func(int32) int { return code } }

func newTestForwarder(t *testing.T, url string, cfg Config) *Forwarder {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	// A generous timeout: a request that times out on a loaded machine is
	// retried while the fake may still apply the first copy, which is the
	// documented duplicate case, not what these tests are about.
	f := New(cfg, gocent.New(gocent.Config{Addr: url, Key: "k", HTTPClient: &http.Client{Timeout: time.Minute}}), zap.NewNop(), nil)
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	return f
}

// submit queues one publish and returns a channel with its outcome.
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

func TestForwardSuccess(t *testing.T) {
	api := newFakeAPI(t, always(200), okReply)
	f := newTestForwarder(t, api.URL, Config{})
	o := wait(t, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)}))
	if o.Err != nil || len(o.Results) != 1 || o.Results[0] != (Result{Channel: "a", Offset: 7, Epoch: "ep"}) {
		t.Fatalf("outcome %+v", o)
	}
	o = wait(t, submit(t, f, Command{Channels: []string{"a", "b"}, Data: []byte(`{}`)}))
	if o.Err != nil || len(o.Results) != 2 || o.Results[1].Channel != "b" {
		t.Fatalf("broadcast outcome %+v", o)
	}
}

func TestForwardRetriesThenUnavailable(t *testing.T) {
	api := newFakeAPI(t, always(http.StatusServiceUnavailable), okReply)
	f := newTestForwarder(t, api.URL, Config{Attempts: 3})
	o := wait(t, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)}))
	if o.Err == nil || o.Err.Code() != CodeUpstreamUnavailable {
		t.Fatalf("outcome %+v: want upstream_unavailable", o)
	}
	if got := api.requests.Load(); got != 3 {
		t.Errorf("requests %d, want 3 attempts", got)
	}
}

func TestForwardRetrySucceeds(t *testing.T) {
	api := newFakeAPI(t, func(n int32) int {
		if n < 3 {
			return http.StatusBadGateway
		}
		return 200
	}, okReply)
	f := newTestForwarder(t, api.URL, Config{Attempts: 5})
	if o := wait(t, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)})); o.Err != nil {
		t.Fatalf("outcome %+v: want success on the third attempt", o)
	}
}

func TestForwardClientErrorIsNotRetried(t *testing.T) {
	api := newFakeAPI(t, always(http.StatusUnauthorized), okReply)
	f := newTestForwarder(t, api.URL, Config{Attempts: 5})
	o := wait(t, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)}))
	if o.Err == nil || o.Err.Code() != CodeUpstreamRejected || !strings.Contains(o.Err.Error(), "401") {
		t.Fatalf("outcome %+v: want upstream_rejected naming 401", o)
	}
	if got := api.requests.Load(); got != 1 {
		t.Errorf("requests %d, want 1 (no retry of a 4xx)", got)
	}
}

func TestForwardUnreachable(t *testing.T) {
	api := newFakeAPI(t, always(200), okReply)
	url := api.URL
	api.Close()
	f := newTestForwarder(t, url, Config{Attempts: 2})
	o := wait(t, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)}))
	if o.Err == nil || o.Err.Code() != CodeUpstreamUnavailable {
		t.Fatalf("outcome %+v: want upstream_unavailable", o)
	}
}

func TestForwardPerCommandErrors(t *testing.T) {
	api := newFakeAPI(t, always(200), func(c fakeCommand) string {
		switch {
		case c.Params.Channel == "bad":
			return `{"error":{"code":102,"message":"unknown channel"}}`
		case c.Method == "broadcast":
			return `{"result":{"responses":[{"result":{"offset":1}},{"error":{"code":103,"message":"permission denied"}}]}}`
		}
		return okReply(c)
	})
	f := newTestForwarder(t, api.URL, Config{})
	bad := submit(t, f, Command{Channel: "bad", Data: []byte(`{}`)})
	good := submit(t, f, Command{Channel: "good", Data: []byte(`{}`)})
	bc := submit(t, f, Command{Channels: []string{"x", "y"}, Data: []byte(`{}`)})
	if o := wait(t, bad); o.Err == nil || o.Err.Code() != CodeUpstreamRejected || !strings.Contains(o.Err.Error(), "102") {
		t.Errorf("bad: %+v, want upstream_rejected with Centrifugo's code 102", o)
	}
	if o := wait(t, good); o.Err != nil {
		t.Errorf("good: %+v, want success: one command's error must not fail its batch", o)
	}
	if o := wait(t, bc); o.Err == nil || !strings.Contains(o.Err.Error(), "y") {
		t.Errorf("broadcast: %+v, want upstream_rejected naming channel y", o)
	}
}

func TestForwardMalformedResponse(t *testing.T) {
	api := newFakeAPI(t, always(200), func(fakeCommand) string { return "" }) // no reply lines
	f := newTestForwarder(t, api.URL, Config{})
	o := wait(t, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)}))
	if o.Err == nil || o.Err.Code() != CodeUpstreamRejected {
		t.Fatalf("outcome %+v: want upstream_rejected for a reply count mismatch", o)
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

// TestForwardOrderUnderConcurrency sends many items on few channels with
// small batches and many request slots; the fake records the order in which
// commands arrive per channel.
func TestForwardOrderUnderConcurrency(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]int{} // per channel, the order the server processed
	api := newFakeAPI(t, always(200), func(c fakeCommand) string {
		var d struct{ I int }
		if err := json.Unmarshal(c.Params.Data, &d); err != nil {
			t.Errorf("data %s: %v", c.Params.Data, err)
		}
		mu.Lock()
		seen[c.Params.Channel] = append(seen[c.Params.Channel], d.I)
		mu.Unlock()
		time.Sleep(20 * time.Microsecond)
		return okReply(c)
	})
	f := newTestForwarder(t, api.URL, Config{MaxBatch: 5, Concurrency: 4})
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		ch := fmt.Sprintf("ch%d", i%3)
		data := fmt.Appendf(nil, `{"i":%d}`, i)
		if err := f.Submit(context.Background(), &Item{Commands: []Command{{Channel: ch, Data: data}}, Done: func(o Outcome) {
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
				t.Fatalf("channel %s: %d processed after %d", ch, is[k], is[k-1])
			}
		}
	}
	if total != n {
		t.Errorf("server processed %d commands, want %d", total, n)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	concurrentBatches := 0
	for _, b := range api.batches {
		if len(b) > 5 {
			t.Errorf("batch of %d commands, want at most 5", len(b))
		}
		if len(b) > 1 {
			concurrentBatches++
		}
	}
	if concurrentBatches == 0 {
		t.Error("no request carried more than one command: batching did not happen")
	}
}

func TestCloseFlushesAndRefusesNewItems(t *testing.T) {
	api := newFakeAPI(t, always(200), okReply)
	f := newTestForwarder(t, api.URL, Config{})
	var outcomes []<-chan Outcome
	for range 100 {
		outcomes = append(outcomes, submit(t, f, Command{Channel: "a", Data: []byte(`{}`)}))
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

func TestCloseTimeoutFailsWaitingItems(t *testing.T) {
	api := newFakeAPI(t, always(http.StatusServiceUnavailable), okReply)
	f := newTestForwarder(t, api.URL, Config{Attempts: 1000, Backoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Concurrency: 1})
	first := submit(t, f, Command{Channel: "a", Data: []byte(`{}`)})
	second := submit(t, f, Command{Channel: "a", Data: []byte(`{}`)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); err == nil {
		t.Fatal("Close: want the context's error")
	}
	for name, ch := range map[string]<-chan Outcome{"first": first, "second": second} {
		if o := wait(t, ch); o.Err == nil || o.Err.Code() != CodeUpstreamUnavailable {
			t.Errorf("%s: %+v, want upstream_unavailable", name, o)
		}
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

// TestSubmitBlocksWhenFull checks that the queue is bounded: with the only
// request slot stuck, Submit stops taking items after QueueSize waiting
// plus a buffer of MaxBatch.
func TestSubmitBlocksWhenFull(t *testing.T) {
	release := make(chan struct{})
	api := newFakeAPI(t, func(int32) int { <-release; return 200 }, okReply)
	defer close(release)
	f := newTestForwarder(t, api.URL, Config{MaxBatch: 1, Concurrency: 1, QueueSize: 3})
	accepted := 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := f.Submit(ctx, &Item{Commands: []Command{{Channel: "a", Data: []byte(`{}`)}}, Done: func(Outcome) {}})
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

func TestParsePublishResult(t *testing.T) {
	cases := []struct {
		in   string
		want gocent.PublishResult
		ok   bool
	}{
		{``, gocent.PublishResult{}, true},
		{`{}`, gocent.PublishResult{}, true},
		{`{"offset":12,"epoch":"Xvbw"}`, gocent.PublishResult{Offset: 12, Epoch: "Xvbw"}, true},
		{`{"epoch":"e","offset":3}`, gocent.PublishResult{Offset: 3, Epoch: "e"}, true},
		{`{"offset":1, "epoch":"e"}`, gocent.PublishResult{}, false}, // spaces: encoding/json's job
		{`{"epoch":"a\"b"}`, gocent.PublishResult{}, false},
		{`{"offset":-1}`, gocent.PublishResult{}, false},
		{`{"other":1}`, gocent.PublishResult{}, false},
		{`[1]`, gocent.PublishResult{}, false},
	}
	for _, tc := range cases {
		got, ok := parsePublishResult([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parsePublishResult(%s) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok {
			var ref gocent.PublishResult
			if tc.in != "" {
				if err := json.Unmarshal([]byte(tc.in), &ref); err != nil || ref != got {
					t.Errorf("%s: encoding/json gives %+v (%v), fast path %+v", tc.in, ref, err, got)
				}
			}
		}
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

// TestCloseIsBoundedWhenCentrifugoHangs: a request that never answers and a
// producer blocked on a full queue do not hold Close past its context.
func TestCloseIsBoundedWhenCentrifugoHangs(t *testing.T) {
	release := make(chan struct{})
	api := newFakeAPI(t, func(int32) int { <-release; return 200 }, okReply)
	defer close(release)
	f := newTestForwarder(t, api.URL, Config{MaxBatch: 1, Concurrency: 1, QueueSize: 1})
	first := submit(t, f, Command{Channel: "a", Data: []byte(`{}`)})
	// Fill the queue until Submit blocks, in the background.
	blocked := make(chan error, 1)
	go func() {
		for {
			if err := f.Submit(context.Background(), &Item{Commands: []Command{{Channel: "a"}}, Done: func(Outcome) {}}); err != nil {
				blocked <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the producer fill the queue and block
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
	// A second Close must not panic.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	_ = f.Close(ctx2)
}
