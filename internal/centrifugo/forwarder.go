// Package centrifugo forwards publications to Centrifugo's server API:
// batched into one request per group of channels, with bounded concurrency,
// per-channel order, and bounded retries when Centrifugo is unreachable. The
// wire format is a Sender's business (sender.go).
package centrifugo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Observer receives forwarding measurements (metrics).
type Observer interface {
	// Request is called after each request with the number of commands,
	// its duration and its error (nil when Centrifugo answered).
	Request(commands int, d time.Duration, err error)
	// Queue reports the number of items waiting and in flight.
	Queue(waiting, inflight int)
}

type nopObserver struct{}

func (nopObserver) Request(int, time.Duration, error) {}
func (nopObserver) Queue(int, int)                    {}

// Config tunes the forwarder.
type Config struct {
	// MaxBatch is the most commands sent in one request.
	MaxBatch int
	// Concurrency is the most requests in flight.
	Concurrency int
	// QueueSize is how many items may wait for a request slot; beyond it
	// (plus a buffer of MaxBatch) Submit blocks.
	QueueSize int
	// Attempts is how many times a request is tried when Centrifugo is
	// unavailable (RequestError.Unavailable), before its items fail with
	// upstream_unavailable.
	Attempts int
	// Backoff is the first wait between attempts, doubling up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxPendingBytes bounds the items submitted and not yet done (waiting
	// and in flight), measured as encoded commands: Submit blocks beyond it.
	MaxPendingBytes int
	// MaxRequestBytes bounds one request's commands. Submit refuses an item
	// larger than this with ErrTooLarge; batches stay under it.
	MaxRequestBytes int
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
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 16 << 20
	}
	if c.MaxRequestBytes <= 0 || c.MaxRequestBytes > c.MaxPendingBytes {
		c.MaxRequestBytes = min(4<<20, c.MaxPendingBytes)
	}
}

// Forwarder sends Items to Centrifugo. Items are batched naturally: a batch
// leaves as soon as a request slot is free, holding whatever has accumulated,
// so a lone item goes at once and a burst goes in few requests. An item whose
// channel is in a request still in flight waits for that request, so messages
// to one channel reach Centrifugo in the order they were submitted.
type Forwarder struct {
	cfg    Config
	sender Sender
	log    *zap.Logger
	obs    Observer

	in      chan *Item
	bytes   *budget
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

// New starts a forwarder sending through sender; Close stops it.
func New(cfg Config, sender Sender, log *zap.Logger, obs Observer) *Forwarder {
	cfg.defaults()
	if obs == nil {
		obs = nopObserver{}
	}
	f := &Forwarder{
		cfg:     cfg,
		sender:  sender,
		log:     log,
		obs:     obs,
		in:      make(chan *Item, cfg.MaxBatch),
		bytes:   newBudget(cfg.MaxPendingBytes),
		closing: make(chan struct{}),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	f.abortCtx, f.abort = context.WithCancel(context.Background())
	go f.dispatch()
	return f
}

// Submit queues an item, blocking while the queue is full or the bytes held
// are at MaxPendingBytes (backpressure: the caller stops taking new work).
// An item over MaxRequestBytes is refused with ErrTooLarge. After Close it
// returns ErrClosed. An item refused is not taken: Done is not called.
func (f *Forwarder) Submit(ctx context.Context, it *Item) error {
	if err := CheckSize(it, f.cfg.MaxRequestBytes); err != nil {
		return err
	}
	f.submitMu.RLock()
	defer f.submitMu.RUnlock()
	if f.isClosed {
		return ErrClosed
	}
	if err := f.bytes.acquire(ctx, f.closing, it.size); err != nil {
		return err
	}
	done := it.Done
	it.Done = func(o Outcome) {
		f.bytes.release(it.size)
		done(o)
	}
	select {
	case f.in <- it:
		return nil
	case <-f.closing:
		f.bytes.release(it.size)
		return ErrClosed
	case <-ctx.Done():
		f.bytes.release(it.size)
		return ctx.Err()
	}
}

// CheckSize sets the item's size and returns the too_large error Submit
// refuses it with when its commands exceed maxRequestBytes, nil otherwise.
func CheckSize(it *Item, maxRequestBytes int) error {
	it.size = it.encodedSize()
	if it.size > maxRequestBytes {
		return &Error{code: codeTooLarge, msg: fmt.Sprintf("its Centrifugo commands take %d bytes, over the %d of one request (INSTANT_MAX_REQUEST_BYTES)", it.size, maxRequestBytes)}
	}
	return nil
}

// HeldBytes is the size of the items submitted and not yet done.
func (f *Forwarder) HeldBytes() int { return f.bytes.held() }

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
