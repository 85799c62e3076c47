package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/pkg/envelope"
)

// HeaderReplyTo asks, in jetstream mode, for a receipt once the envelope was
// forwarded or dead-lettered, published to the subject it names.
const HeaderReplyTo = "Instant-Reply-To"

// jsSource is the jetstream delivery mode: a durable pull consumer on the
// envelope stream, shared by the replicas. An envelope is acked once
// Centrifugo accepted it, naked with backoff while Centrifugo is
// unavailable, and dead-lettered (then terminated) when it cannot be
// forwarded or was delivered INSTANT_JETSTREAM_MAX_DELIVER times.
type jsSource struct {
	cfg     Config
	nc      *nats.Conn
	m       *metrics
	log     *zap.Logger
	stopCtx func() context.Context // bounds dead-letter writes during shutdown

	js       jetstream.JetStream
	dead     *dlq.Writer
	ackWait  time.Duration // the consumer's, which may differ from the configuration
	loopDone chan struct{}
	wg       sync.WaitGroup
	stop     chan struct{}

	infoOK    atomic.Int64 // unix nanos of the last successful consumer info
	infoError atomic.Value // string
	down      atomic.Value // string: why fetching stopped, "" while it runs
	dlqDown   atomic.Value // string: why dead letters cannot be written, "" when they can

	mu       sync.Mutex
	consumer jetstream.Consumer        // replaced when set up again
	iter     jetstream.MessagesContext // the current iterator
	draining bool
	held     map[jetstream.Msg]time.Time // handed over, no outcome yet; since when
}

var _ source = (*jsSource)(nil)

func newJSSource(cfg Config, nc *nats.Conn, m *metrics, log *zap.Logger, stopCtx func() context.Context) *jsSource {
	return &jsSource{cfg: cfg, nc: nc, m: m, log: log, stopCtx: stopCtx,
		loopDone: make(chan struct{}), stop: make(chan struct{}), held: map[jetstream.Msg]time.Time{}}
}

// start sets up the streams and the consumer (retrying for a minute while
// NATS starts), then fetches until drain. When the consumer or its stream
// disappears (deleted by an operator), the fetching stops: the source sets
// them up again (INSTANT_JETSTREAM_CREATE=true) or waits for them to be
// back, retrying every second, while /readyz says what is missing.
func (s *jsSource) start(ctx context.Context, handle func(delivery)) error {
	if err := retrySetup(ctx, s.log, time.Minute, s.setup); err != nil {
		return err
	}
	it, err := s.consume()
	if err != nil {
		return err
	}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		defer close(s.loopDone)
		s.fetch(ctx, it, handle)
	}()
	go func() {
		defer s.wg.Done()
		s.watchConsumer()
	}()
	go func() {
		defer s.wg.Done()
		s.keepAlive()
	}()
	return nil
}

// consume starts an iterator on the current consumer.
func (s *jsSource) consume() (jetstream.MessagesContext, error) {
	// The client buffers up to half the ack-pending window (2,500 with the
	// defaults, more than a batch of INSTANT_BATCH_MAX), asking for more when
	// half of it is used: the other half is for envelopes waiting for or in
	// a Centrifugo request. With 1,000 the forwarder ran dry between
	// requests (docs/benchmarks.md). The buffer is bounded in bytes too: a
	// quarter of what the bridge may hold, and at least one largest message.
	msgs := min(s.cfg.QueueSize, max(s.cfg.JetStreamMaxAckPending/2, 1))
	buf := max(s.cfg.MaxPendingBytes/4, int(s.nc.MaxPayload()))
	it, err := s.currentConsumer().Messages(jetstream.PullMaxMessagesWithBytesLimit(msgs, buf))
	if err != nil {
		return nil, fmt.Errorf("consume %s/%s: %w", s.cfg.JetStreamStream, s.cfg.JetStreamConsumer, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		it.Stop()
		return nil, errDraining
	}
	s.iter = it
	return it, nil
}

var errDraining = errors.New("draining")

// fetch hands every fetched envelope over until drain; when the iterator
// ends otherwise (consumer or stream deleted), it sets up again.
func (s *jsSource) fetch(ctx context.Context, it jetstream.MessagesContext, handle func(delivery)) {
	for {
		msg, err := it.Next()
		if err == nil {
			handle(&jsDelivery{msg: msg, src: s})
			continue
		}
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			s.log.Warn("jetstream fetch", zap.Error(err))
			if !errors.Is(err, jetstream.ErrConsumerDeleted) {
				continue
			}
		}
		if s.isDraining() {
			return
		}
		s.down.Store(fmt.Sprintf("consumer %s on stream %s is gone (%v); setting up again", s.cfg.JetStreamConsumer, s.cfg.JetStreamStream, err))
		s.log.Error("jetstream consumer stopped delivering; setting it up again", zap.Error(err))
		if it, err = s.resume(ctx); err != nil {
			return // draining
		}
		s.down.Store("")
		s.log.Info("jetstream consumer back; fetching again")
	}
}

// resume sets the streams and the consumer up again, every second, until it
// works or the source drains. It waits a second first: a stream deleted a
// moment ago may still be going away, and one created in that moment can be
// left without its subjects.
func (s *jsSource) resume(ctx context.Context) (jetstream.MessagesContext, error) {
	for {
		select {
		case <-time.After(time.Second):
		case <-s.stop:
			return nil, errDraining
		}
		err := retrySetup(ctx, s.log, 0, s.setup)
		if err == nil {
			var it jetstream.MessagesContext
			if it, err = s.consume(); err == nil {
				return it, nil
			}
		}
		if s.isDraining() || ctx.Err() != nil {
			return nil, errDraining
		}
		s.down.Store(fmt.Sprintf("consumer %s on stream %s: %v; retrying", s.cfg.JetStreamConsumer, s.cfg.JetStreamStream, err))
	}
}

// stopFetching ends the current iterator, so that fetch sets up again.
func (s *jsSource) stopFetching() {
	s.mu.Lock()
	it := s.iter
	s.mu.Unlock()
	if it != nil {
		it.Stop()
	}
}

func (s *jsSource) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

func (s *jsSource) currentConsumer() jetstream.Consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumer
}

// retrySetup runs setup until it succeeds, for up to d (NATS may still be
// starting); d 0 tries once.
func retrySetup(ctx context.Context, log *zap.Logger, d time.Duration, setup func(context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := setup(sctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		log.Warn("jetstream setup failed, retrying", zap.Error(err))
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return err
		}
	}
}

// setup creates (or finds) the streams and the consumer.
func (s *jsSource) setup(ctx context.Context) error {
	if s.js == nil { // the first set-up, before any envelope is handled
		js, err := jetstream.New(s.nc)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		s.js, s.dead = js, dlq.NewWriter(js, s.nc, s.cfg.DLQSubject)
	}
	var err error
	if s.cfg.JetStreamCreate {
		err = s.create(ctx)
	} else {
		err = s.find(ctx)
	}
	if err != nil {
		return err
	}
	ackWait := s.currentConsumer().CachedInfo().Config.AckWait
	if ackWait <= 0 {
		ackWait = 30 * time.Second // the server's default
	}
	if s.ackWait == 0 {
		s.ackWait = ackWait // kept across set-ups: keepAlive reads it
	}
	if ackWait != s.cfg.JetStreamAckWait {
		s.log.Warn("the consumer's ack wait differs from INSTANT_JETSTREAM_ACK_WAIT; using the consumer's",
			zap.Duration("consumer_ack_wait", ackWait), zap.Duration("INSTANT_JETSTREAM_ACK_WAIT", s.cfg.JetStreamAckWait))
	}
	return nil
}

// create creates or updates the envelope stream, the dead-letter stream and
// the consumer.
func (s *jsSource) create(ctx context.Context) error {
	cfg := s.cfg
	if _, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.JetStreamStream,
		Description: "Instant publish envelopes, removed once forwarded to Centrifugo or dead-lettered",
		Subjects:    []string{cfg.Subject, cfg.Subject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.JetStreamReplicas,
		Duplicates:  2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("create stream %s (INSTANT_JETSTREAM_STREAM): %w", cfg.JetStreamStream, err)
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, dlq.StreamConfig(cfg.DLQ, cfg.DLQSubject, cfg.JetStreamReplicas)); err != nil {
		return fmt.Errorf("create dead-letter stream %s (INSTANT_DLQ): %w", cfg.DLQ, err)
	}
	// MaxDeliver is enforced by the bridge (it dead-letters on the last
	// delivery); the server's is unlimited so nothing is ever stuck.
	c, err := s.js.CreateOrUpdateConsumer(ctx, cfg.JetStreamStream, jetstream.ConsumerConfig{
		Durable:       cfg.JetStreamConsumer,
		Description:   "Instant bridges",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.JetStreamAckWait,
		MaxDeliver:    -1,
		MaxAckPending: cfg.JetStreamMaxAckPending,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s (INSTANT_JETSTREAM_CONSUMER): %w", cfg.JetStreamConsumer, err)
	}
	s.setConsumer(c)
	return nil
}

func (s *jsSource) setConsumer(c jetstream.Consumer) {
	s.mu.Lock()
	s.consumer = c
	s.mu.Unlock()
}

// find looks up the existing consumer (INSTANT_JETSTREAM_CREATE=false).
func (s *jsSource) find(ctx context.Context) error {
	cfg := s.cfg
	c, err := s.js.Consumer(ctx, cfg.JetStreamStream, cfg.JetStreamConsumer)
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s (INSTANT_JETSTREAM_CREATE=false: it must exist): %w", cfg.JetStreamConsumer, cfg.JetStreamStream, err)
	}
	cc := c.CachedInfo().Config
	if cc.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("consumer %s: ack policy %s, want explicit", cfg.JetStreamConsumer, cc.AckPolicy)
	}
	if cc.MaxDeliver > 0 && cc.MaxDeliver <= cfg.JetStreamMaxDeliver {
		s.log.Warn("consumer max_deliver should be -1 (unlimited): the bridge enforces INSTANT_JETSTREAM_MAX_DELIVER and dead-letters on the last delivery; with the server's limit an envelope whose last delivery is lost in a crash stays in the stream",
			zap.Int("consumer_max_deliver", cc.MaxDeliver), zap.Int("INSTANT_JETSTREAM_MAX_DELIVER", cfg.JetStreamMaxDeliver))
	}
	s.setConsumer(c)
	return nil
}

// drain stops fetching and waits until every fetched envelope was handed
// over; what is left when ctx ends is redelivered after the ack wait.
func (s *jsSource) drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	it := s.iter
	s.mu.Unlock()
	close(s.stop) // ends a set-up in progress
	if it != nil {
		it.Drain()
		select {
		case <-s.loopDone:
		case <-ctx.Done():
			it.Stop()
		}
	}
	s.wg.Wait()
	return nil
}

// status reports the consumer: ready while its info could be read in the
// last 10 seconds.
func (s *jsSource) status() (string, bool) {
	if down, _ := s.down.Load().(string); down != "" {
		return down, false
	}
	if down, _ := s.dlqDown.Load().(string); down != "" {
		return down, false
	}
	last := s.infoOK.Load()
	if last != 0 && time.Since(time.Unix(0, last)) <= 10*time.Second {
		return "ok", true
	}
	msg, _ := s.infoError.Load().(string)
	if last == 0 {
		return "no consumer info yet: " + msg, false
	}
	return "no consumer info for " + time.Since(time.Unix(0, last)).Round(time.Second).String() + ": " + msg, false
}

// keepAlive tells JetStream, every third of the ack wait, that the envelopes
// this bridge holds are still being worked on, so a slow Centrifugo (retries,
// a long queue) does not get them redelivered to another replica meanwhile.
func (s *jsSource) keepAlive() {
	t := time.NewTicker(s.ackWait / 3)
	defer t.Stop()
	// A message held far longer than any retry budget would be a bug in
	// the bridge: stop extending it, so JetStream redelivers it.
	limit := 10*s.ackWait + time.Duration(s.cfg.RetryAttempts)*(s.cfg.CentrifugoTimeout+s.cfg.RetryMaxBackoff)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for _, m := range s.stillHeld(limit) {
			if !s.isHeld(m) {
				continue // its outcome arrived meanwhile
			}
			if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				s.m.jsAckErrors.Inc()
			}
		}
	}
}

// stillHeld lists the held envelopes, letting go of those held over limit.
func (s *jsSource) stillHeld(limit time.Duration) []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := make([]jetstream.Msg, 0, len(s.held))
	for m, since := range s.held {
		if time.Since(since) > limit {
			delete(s.held, m)
			s.log.Error("envelope held without an outcome for too long; letting JetStream redeliver it", zap.Duration("held", time.Since(since)))
			continue
		}
		held = append(held, m)
	}
	return held
}

func (s *jsSource) hold(m jetstream.Msg) {
	s.mu.Lock()
	s.held[m] = time.Now()
	s.mu.Unlock()
}

func (s *jsSource) isHeld(m jetstream.Msg) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.held[m]
	return ok
}

func (s *jsSource) release(m jetstream.Msg) {
	s.mu.Lock()
	delete(s.held, m)
	s.mu.Unlock()
}

// watchConsumer keeps the consumer gauges and the readiness state fresh.
func (s *jsSource) watchConsumer() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := s.currentConsumer().Info(ctx)
		cancel()
		if err == nil {
			s.m.jsPending.Set(float64(info.NumPending))
			s.m.jsAckPending.Set(float64(info.NumAckPending))
			s.infoOK.Store(time.Now().UnixNano())
			s.infoError.Store("")
		} else {
			s.infoError.Store(err.Error())
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				s.stopFetching() // fetch sets up again
			}
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// jsDelivery is one stored envelope.
type jsDelivery struct {
	msg jetstream.Msg
	md  *jetstream.MsgMetadata
	src *jsSource
}

func (d *jsDelivery) subject() string { return d.msg.Subject() }
func (d *jsDelivery) data() []byte    { return d.msg.Data() }
func (d *jsDelivery) replyTo() string { return d.msg.Headers().Get(HeaderReplyTo) }

// begin holds the envelope (kept alive until settled) and gives it a stable
// id: the one a replay kept, else one derived from its stream position, so
// that every redelivered copy carries the same id. An envelope delivered
// more than INSTANT_JETSTREAM_MAX_DELIVER times fails before it is decoded,
// so that one which crashes the bridge is dead-lettered too.
func (d *jsDelivery) begin() (string, error) {
	s := d.src
	s.hold(d.msg)
	md, err := d.msg.Metadata()
	if err != nil {
		return "", newError(CodeInternal, "jetstream message without metadata: "+err.Error())
	}
	d.md = md
	if md.NumDelivered > 1 {
		s.m.jsRedeliveries.Inc()
	}
	id := d.msg.Headers().Get(dlq.HeaderEnvelopeID) // kept by dlq replay
	if !envelope.ValidID(id) {
		id = ids.At(md.Timestamp, md.Sequence.Stream)
	}
	if md.NumDelivered > uint64(s.cfg.JetStreamMaxDeliver) {
		return id, newError(CodeMaxDeliveries, fmt.Sprintf("delivered %d times without an outcome (INSTANT_JETSTREAM_MAX_DELIVER=%d)", md.NumDelivered, s.cfg.JetStreamMaxDeliver))
	}
	return id, nil
}

// settle acks a forwarded envelope; naks one that may succeed later (the
// bridge was shutting down, or Centrifugo was unavailable with deliveries
// left); dead-letters and terminates the others.
func (d *jsDelivery) settle(fi failureInfo, err error) disposition {
	s := d.src
	defer s.release(d.msg)
	switch {
	case err == nil:
		d.ack("ack", d.msg.Ack())
		return forwarded
	case d.md == nil: // not from a consumer: nothing to count deliveries by
		d.ack("nak", d.msg.Nak())
		return retrying
	case retryLater(err) || (reasonCode(err) == centrifugo.CodeUpstreamUnavailable && d.md.NumDelivered < uint64(s.cfg.JetStreamMaxDeliver)):
		d.nak()
		return retrying
	}
	return d.deadLetter(fi, err)
}

// deadLetter stores the envelope in the dead-letter stream with the reason,
// then terminates it. If the dead letter cannot be stored, the envelope is
// naked instead: it never leaves the stream without a trace.
func (d *jsDelivery) deadLetter(fi failureInfo, cause error) disposition {
	s, code := d.src, reasonCode(cause)
	ctx, cancel := context.WithTimeout(s.stopCtx(), 5*time.Second)
	defer cancel()
	err := s.dead.Write(ctx, dlq.Dead{
		Failure: dlq.Failure{Code: code, Reason: cause.Error(), OriginalSubject: d.msg.Subject(), Producer: fi.producer, EnvelopeID: fi.id},
		Data:    d.msg.Data(), Header: d.msg.Headers(),
		Stream: s.cfg.JetStreamStream, Sequence: d.md.Sequence.Stream, Stored: d.md.Timestamp, Deliveries: d.md.NumDelivered,
	})
	s.deadLetterOutcome(ctx, err)
	if err != nil {
		s.log.Error("store dead letter; the envelope will be redelivered",
			zap.String("reason", code), zap.Uint64("seq", d.md.Sequence.Stream), zap.Error(err))
		d.nak()
		return retrying
	}
	d.ack("term", d.msg.TermWithReason(code))
	s.m.deadLettered.WithLabelValues(code).Inc()
	return rejected
}

// deadLetterOutcome keeps /readyz honest about the dead-letter stream: when
// a write finds no stream (deleted), the bridge is not ready until one
// succeeds, and with INSTANT_JETSTREAM_CREATE=true it creates the stream
// again.
func (s *jsSource) deadLetterOutcome(ctx context.Context, err error) {
	if err == nil {
		s.dlqDown.Store("")
		return
	}
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return
	}
	s.dlqDown.Store(fmt.Sprintf("dead-letter stream %s (INSTANT_DLQ) missing: %v", s.cfg.DLQ, err))
	if s.cfg.JetStreamCreate {
		if _, cerr := s.js.CreateOrUpdateStream(ctx, dlq.StreamConfig(s.cfg.DLQ, s.cfg.DLQSubject, s.cfg.JetStreamReplicas)); cerr != nil {
			s.log.Error("create the dead-letter stream again", zap.String("stream", s.cfg.DLQ), zap.Error(cerr))
			return
		}
		s.log.Warn("the dead-letter stream was missing; created it again", zap.String("stream", s.cfg.DLQ))
	}
}

// nak asks for a redelivery after the backoff step of this delivery.
func (d *jsDelivery) nak() {
	steps := d.src.cfg.JetStreamBackoff
	i := min(max(int(d.md.NumDelivered)-1, 0), len(steps)-1)
	d.ack("nak", d.msg.NakWithDelay(steps[i]))
}

// ack counts an acknowledgement of kind (ack, nak, term) and its error.
func (d *jsDelivery) ack(kind string, err error) {
	s := d.src
	s.m.jsAcks.WithLabelValues(kind).Inc()
	if err != nil {
		s.m.jsAckErrors.Inc()
		s.log.Error(kind, zap.Uint64("seq", d.seq()), zap.Error(err))
	}
}

func (d *jsDelivery) seq() uint64 {
	if d.md == nil {
		return 0
	}
	return d.md.Sequence.Stream
}
