// Package centrifugo forwards publications to Centrifugo's HTTP API through
// gocent: batched into pipelined requests, with bounded concurrency, per-channel
// order, and bounded retries when Centrifugo is unreachable.
package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/centrifugal/gocent/v3"
	"go.uber.org/zap"
)

// Stable codes of forwarding failures.
const (
	// CodeUpstreamRejected: Centrifugo answered the command with an error.
	CodeUpstreamRejected = "upstream_rejected"
	// CodeUpstreamUnavailable: Centrifugo could not be reached after the retries.
	CodeUpstreamUnavailable = "upstream_unavailable"
)

// Error is a forwarding failure with a stable code.
type Error struct {
	code     string
	msg      string
	shutdown bool
}

// Shutdown reports whether the failure is due to Close's timeout: Centrifugo
// may not even have been tried, so the item should be retried later.
func (e *Error) Shutdown() bool { return e.shutdown }

// NewError returns an error with a code.
func NewError(code, msg string) *Error { return &Error{code: code, msg: msg} }

// Code is the stable reason code.
func (e *Error) Code() string { return e.code }

func (e *Error) Error() string { return e.code + ": " + e.msg }

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("forwarder closed")

var errShuttingDown = &Error{code: CodeUpstreamUnavailable, msg: "shutdown timeout reached before Centrifugo accepted the message", shutdown: true}

// Command is one Centrifugo command: a publish to Channel, or, when Channels
// is set, a broadcast to all of them.
type Command struct {
	Channel  string
	Channels []string
	Data     []byte
}

// Result is what Centrifugo answered for one channel.
type Result struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
}

// Outcome is the fate of an Item: Err is nil when every command was accepted;
// then Results has one entry per channel in command order.
type Outcome struct {
	Err     *Error
	Results []Result
}

// Item is one unit of work: the commands of one envelope. They go in one
// request, in order, and Done is called exactly once with the outcome.
// Centrifugo applies the items of a channel in submission order, but the
// Done calls of two items of a channel may run in either order.
type Item struct {
	Commands []Command
	Done     func(Outcome)
}

func (it *Item) channels(yield func(string) bool) {
	for _, c := range it.Commands {
		if c.Channels == nil {
			if !yield(c.Channel) {
				return
			}
			continue
		}
		for _, ch := range c.Channels {
			if !yield(ch) {
				return
			}
		}
	}
}

// Observer receives forwarding measurements (metrics).
type Observer interface {
	// Request is called after each HTTP request with the number of commands,
	// its duration and its error (nil on HTTP success).
	Request(commands int, d time.Duration, err error)
	// Queue reports the number of items waiting and in flight.
	Queue(waiting, inflight int)
}

type nopObserver struct{}

func (nopObserver) Request(int, time.Duration, error) {}
func (nopObserver) Queue(int, int)                    {}

// Config tunes the forwarder.
type Config struct {
	// MaxBatch is the most commands sent in one HTTP request.
	MaxBatch int
	// Concurrency is the most HTTP requests in flight.
	Concurrency int
	// QueueSize is how many items may wait for a request slot; beyond it
	// (plus a buffer of MaxBatch) Submit blocks.
	QueueSize int
	// Attempts is how many times a request is tried when Centrifugo is
	// unreachable or answers 5xx, before its items fail with upstream_unavailable.
	Attempts int
	// Backoff is the first wait between attempts, doubling up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

func (c *Config) defaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 500
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 10000
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = 2 * time.Second
	}
}

// Forwarder sends Items to Centrifugo. Items are batched naturally: a batch
// leaves as soon as a request slot is free, holding whatever has accumulated,
// so a lone item goes at once and a burst goes in few requests. An item whose
// channel is in a request still in flight waits for that request, so messages
// to one channel reach Centrifugo in the order they were submitted.
type Forwarder struct {
	cfg    Config
	client *gocent.Client
	log    *zap.Logger
	obs    Observer

	in      chan *Item
	closing chan struct{} // Close began: Submit refuses
	closed  chan struct{} // Close timed out: stop retrying, fail what waits
	done    chan struct{}

	// abortCtx is the context of every request, cancelled when Close times out.
	abortCtx  context.Context
	abort     context.CancelFunc
	abortOnce sync.Once

	outcomes  sync.WaitGroup // requests whose items' Done calls are not all made
	closeOnce sync.Once
	submitMu  sync.RWMutex // held for reading by Submit, for writing by Close
	isClosed  bool
}

// New starts a forwarder; Close stops it.
func New(cfg Config, client *gocent.Client, log *zap.Logger, obs Observer) *Forwarder {
	cfg.defaults()
	if obs == nil {
		obs = nopObserver{}
	}
	f := &Forwarder{
		cfg:     cfg,
		client:  client,
		log:     log,
		obs:     obs,
		in:      make(chan *Item, cfg.MaxBatch),
		closing: make(chan struct{}),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	f.abortCtx, f.abort = context.WithCancel(context.Background())
	go f.dispatch()
	return f
}

// Submit queues an item, blocking while the queue is full. After Close it
// returns ErrClosed and the item is not taken.
func (f *Forwarder) Submit(ctx context.Context, it *Item) error {
	f.submitMu.RLock()
	defer f.submitMu.RUnlock()
	if f.isClosed {
		return ErrClosed
	}
	select {
	case f.in <- it:
		return nil
	case <-f.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking items, sends everything already submitted and waits for
// all outcomes, or until ctx ends: then the items still waiting fail with
// upstream_unavailable and Close returns ctx's error once requests in flight
// have returned.
func (f *Forwarder) Close(ctx context.Context) error {
	f.closeOnce.Do(func() {
		close(f.closing) // unblocks Submits waiting for room
		f.submitMu.Lock()
		f.isClosed = true
		close(f.in)
		f.submitMu.Unlock()
	})
	select {
	case <-f.done:
		f.abort() // release the context
		return nil
	default:
	}
	select {
	case <-f.done:
		f.abort() // release the context
		return nil
	case <-ctx.Done():
		f.abortOnce.Do(func() {
			f.abort()
			close(f.closed)
		})
		<-f.done
		return ctx.Err()
	}
}

type batchDone struct {
	channels []string
}

func (f *Forwarder) dispatch() {
	defer func() {
		f.outcomes.Wait()
		close(f.done)
	}()
	var (
		waiting  []*Item
		busy     = map[string]struct{}{} // channels with a request in flight
		held     = map[string]struct{}{} // channels of waiting[:scanned], all blocked
		scanned  = 0                     // waiting[:scanned] cannot go until busy changes
		slots    = f.cfg.Concurrency
		finished = make(chan batchDone, f.cfg.Concurrency)
		in       = f.in
		aborting = false
		closed   = f.closed
	)
	for {
		if in == nil && len(waiting) == 0 && slots == f.cfg.Concurrency {
			return
		}
		recv := in
		if len(waiting) >= f.cfg.QueueSize {
			recv = nil // full: Submit blocks until requests finish
		}
		select {
		case it, ok := <-recv:
			if !ok {
				in = nil
				break
			}
			waiting = append(waiting, it)
			// Take what else is queued without blocking, so a burst is batched.
			for more := true; more && len(waiting) < f.cfg.QueueSize; {
				select {
				case it, ok := <-in:
					if !ok {
						in = nil
						more = false
						break
					}
					waiting = append(waiting, it)
				default:
					more = false
				}
			}
		case d := <-finished:
			slots++
			for _, ch := range d.channels {
				delete(busy, ch)
			}
			scanned, held = 0, map[string]struct{}{}
		case <-closed:
			aborting, closed = true, nil
		}
		if aborting {
			if in != nil {
				for it := range in { // closed by Close before f.closed
					waiting = append(waiting, it)
				}
				in = nil
			}
			for _, it := range waiting {
				it.Done(Outcome{Err: errShuttingDown})
			}
			waiting, scanned = waiting[:0], 0
		}
		if slots > 0 && len(waiting) > scanned {
			batches, chans, rest := f.take(waiting, busy, held, scanned, slots)
			if len(batches) == 0 {
				scanned = len(waiting)
			} else {
				waiting = rest
				scanned, held = 0, map[string]struct{}{}
			}
			for i, batch := range batches {
				slots--
				for _, ch := range chans[i] {
					busy[ch] = struct{}{}
				}
				f.outcomes.Add(1)
				go func() {
					defer f.outcomes.Done()
					// Centrifugo has applied the request once send returns: free
					// its channels before the outcomes are handled.
					f.send(batch, func() { finished <- batchDone{channels: chans[i]} })
				}()
			}
		}
		f.obs.Queue(len(waiting)+len(in), f.cfg.Concurrency-slots)
	}
}

// take picks, in order, the items that can go in the next requests, as up
// to k batches of at most MaxBatch commands. A channel belongs to one batch
// only, so batches can be in flight at once without reordering a channel;
// items touching a busy channel wait, and so does every later item of a
// channel that has an item waiting. waiting[:start] are known to be blocked
// and their channels are in held, which gains the channels of the items left
// behind. It returns the batches, the channels of each, and the items left
// waiting, in order.
func (f *Forwarder) take(waiting []*Item, busy, held map[string]struct{}, start, k int) (batches [][]*Item, chans [][]string, rest []*Item) {
	owner := map[string]int{} // channel -> batch in this pass
	var sizes []int
	full := 0
	rest = make([]*Item, start, len(waiting))
	copy(rest, waiting[:start])
	for i := start; i < len(waiting); i++ {
		it := waiting[i]
		if full == k {
			rest = append(rest, waiting[i:]...)
			break
		}
		blocked, target := false, -1
		for ch := range it.channels {
			if _, ok := busy[ch]; ok {
				blocked = true
				break
			}
			if _, ok := held[ch]; ok {
				blocked = true
				break
			}
			if b, ok := owner[ch]; ok {
				if target >= 0 && target != b {
					blocked = true // its channels are split over two batches
					break
				}
				target = b
			}
		}
		if !blocked && target < 0 {
			if len(batches) < k {
				batches, chans, sizes = append(batches, nil), append(chans, nil), append(sizes, 0)
				target = len(batches) - 1
			} else {
				target = 0
				for b := range sizes {
					if sizes[b] < sizes[target] {
						target = b
					}
				}
			}
		}
		if !blocked && sizes[target] > 0 && sizes[target]+len(it.Commands) > f.cfg.MaxBatch {
			blocked = true
		}
		if blocked {
			for ch := range it.channels {
				held[ch] = struct{}{}
			}
			rest = append(rest, it)
			continue
		}
		batches[target] = append(batches[target], it)
		wasFull := sizes[target] >= f.cfg.MaxBatch
		sizes[target] += len(it.Commands)
		if !wasFull && sizes[target] >= f.cfg.MaxBatch {
			full++
		}
		for ch := range it.channels {
			if _, ok := owner[ch]; !ok {
				owner[ch] = target
				chans[target] = append(chans[target], ch)
			}
		}
	}
	// A batch opened for an item that then did not fit stays empty: drop it.
	out, outChans := batches[:0], chans[:0]
	for b := range batches {
		if len(batches[b]) > 0 {
			out, outChans = append(out, batches[b]), append(outChans, chans[b])
		}
	}
	return out, outChans, rest
}

// send delivers one batch, retrying the whole request while Centrifugo is
// unreachable, calls sent once the request is over, then every item's Done.
func (f *Forwarder) send(batch []*Item, sent func()) {
	pipe := f.client.Pipe()
	ncmd := 0
	for _, it := range batch {
		for _, c := range it.Commands {
			if c.Channels != nil {
				_ = pipe.AddBroadcast(c.Channels, c.Data)
			} else {
				_ = pipe.AddPublish(c.Channel, c.Data)
			}
			ncmd++
		}
	}
	var (
		replies []gocent.Reply
		err     error
		wait    = f.cfg.Backoff
	)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		replies, err = f.client.SendPipe(f.abortCtx, pipe)
		f.obs.Request(ncmd, time.Since(start), err)
		if err == nil || !retryable(err) || attempt >= f.cfg.Attempts {
			break
		}
		f.log.Warn("centrifugo request failed, retrying",
			zap.Int("attempt", attempt), zap.Int("commands", ncmd), zap.Duration("backoff", wait), zap.Error(err))
		aborted := false
		select {
		case <-time.After(wait):
		case <-f.closed:
			aborted = true
		}
		if aborted {
			break
		}
		wait = min(2*wait, f.cfg.MaxBackoff)
	}
	sent()
	if err != nil {
		code, msg := CodeUpstreamUnavailable, err.Error()
		if !retryable(err) {
			code = CodeUpstreamRejected
		}
		switch {
		case f.abortCtx.Err() != nil:
			msg = "shutdown timeout reached before Centrifugo answered (it may have applied the message): " + err.Error()
		case code == CodeUpstreamUnavailable:
			msg = fmt.Sprintf("centrifugo unreachable after %d attempts: %v", f.cfg.Attempts, err)
		}
		f.log.Error("centrifugo request failed", zap.String("reason", code), zap.Int("commands", ncmd), zap.Error(err))
		aborted := f.abortCtx.Err() != nil
		for _, it := range batch {
			it.Done(Outcome{Err: &Error{code: code, msg: msg, shutdown: aborted}})
		}
		return
	}
	i := 0
	for _, it := range batch {
		it.Done(outcome(it, replies[i:i+len(it.Commands)]))
		i += len(it.Commands)
	}
}

func outcome(it *Item, replies []gocent.Reply) Outcome {
	var o Outcome
	for k, c := range it.Commands {
		r := replies[k]
		if r.Error != nil {
			return Outcome{Err: &Error{code: CodeUpstreamRejected, msg: fmt.Sprintf("centrifugo error %d: %s", r.Error.Code, r.Error.Message)}}
		}
		if c.Channels == nil {
			pr, ok := parsePublishResult(r.Result)
			if !ok {
				if err := json.Unmarshal(r.Result, &pr); err != nil {
					return Outcome{Err: &Error{code: CodeUpstreamRejected, msg: "malformed publish result: " + err.Error()}}
				}
			}
			o.Results = append(o.Results, Result{Channel: c.Channel, Offset: pr.Offset, Epoch: pr.Epoch})
			continue
		}
		var br gocent.BroadcastResult
		if len(r.Result) > 0 {
			if err := json.Unmarshal(r.Result, &br); err != nil {
				return Outcome{Err: &Error{code: CodeUpstreamRejected, msg: "malformed broadcast result: " + err.Error()}}
			}
		}
		for j, ch := range c.Channels {
			res := Result{Channel: ch}
			if j < len(br.Responses) {
				pr := br.Responses[j]
				if pr.Error != nil {
					return Outcome{Err: &Error{code: CodeUpstreamRejected, msg: fmt.Sprintf("centrifugo error %d on %s: %s", pr.Error.Code, ch, pr.Error.Message)}}
				}
				if pr.Result != nil {
					res.Offset, res.Epoch = pr.Result.Offset, pr.Result.Epoch
				}
			}
			o.Results = append(o.Results, res)
		}
	}
	return o
}

// retryable reports whether a failed request may succeed if tried again:
// transport errors, timeouts and 5xx answers. A 4xx (bad API key, bad
// request) will not.
func retryable(err error) bool {
	var sc gocent.ErrStatusCode
	if errors.As(err, &sc) {
		return sc.Code >= 500 || sc.Code == http.StatusTooManyRequests
	}
	return !errors.Is(err, gocent.ErrMalformedResponse)
}

// parsePublishResult reads Centrifugo's usual publish result, {} or
// {"offset":N,"epoch":"E"} in either order, without encoding/json; ok is
// false for anything else (the caller then falls back to encoding/json).
func parsePublishResult(b []byte) (pr gocent.PublishResult, ok bool) {
	if len(b) == 0 {
		return pr, true
	}
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return pr, false
	}
	rest := b[1 : len(b)-1]
	for len(rest) > 0 {
		switch {
		case bytes.HasPrefix(rest, []byte(`"offset":`)):
			rest = rest[len(`"offset":`):]
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
			if err != nil {
				return pr, false
			}
			pr.Offset, rest = v, rest[n:]
		case bytes.HasPrefix(rest, []byte(`"epoch":"`)):
			rest = rest[len(`"epoch":"`):]
			end := bytes.IndexByte(rest, '"')
			if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
				return pr, false
			}
			pr.Epoch, rest = string(rest[:end]), rest[end+1:]
		default:
			return pr, false
		}
		if len(rest) > 0 {
			if rest[0] != ',' {
				return pr, false
			}
			rest = rest[1:]
		}
	}
	return pr, true
}
