package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/internal/logging"
)

// Headers of dead letters, and of envelopes in jetstream mode.
const (
	HeaderDeliveries       = dlq.HeaderDeliveries
	HeaderOriginalSequence = dlq.HeaderOriginalSequence
	HeaderOriginalMsgID    = dlq.HeaderOriginalMsgID
	// HeaderReplyTo asks, in jetstream mode, for a receipt once the envelope
	// was forwarded or dead-lettered, published to the subject it names.
	HeaderReplyTo = "Instant-Reply-To"
)

// CodeMaxDeliveries: a stored envelope was delivered more often than
// INSTANT_JETSTREAM_MAX_DELIVER without an outcome (bridges crashing on it).
const CodeMaxDeliveries = "max_deliveries"

// jsState is the bridge's JetStream side in jetstream mode.
type jsState struct {
	js        jetstream.JetStream
	consumer  jetstream.Consumer
	iter      jetstream.MessagesContext
	loopDone  chan struct{}
	infoOK    atomic.Int64 // unix nanos of the last successful consumer info
	infoError atomic.Value // string

	ackWait time.Duration // the consumer's, which may differ from the configuration

	mu   sync.Mutex
	held map[jetstream.Msg]time.Time // handed to the forwarder, no outcome yet; since when
}

// setupJetStream creates (or finds) the streams and the consumer.
func (b *Bridge) setupJetStream(ctx context.Context) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	st := &jsState{js: js, loopDone: make(chan struct{}), held: map[jetstream.Msg]time.Time{}}
	cfg := b.cfg
	if cfg.JetStreamCreate {
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
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
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.DLQ,
			Description: "Instant dead letters: envelopes that could not be forwarded, with the reason in headers",
			Subjects:    []string{cfg.DLQSubject + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.JetStreamReplicas,
		}); err != nil {
			return fmt.Errorf("create dead-letter stream %s (INSTANT_DLQ): %w", cfg.DLQ, err)
		}
		// MaxDeliver is enforced by the bridge (it dead-letters on the last
		// delivery); the server's is unlimited so nothing is ever stuck.
		st.consumer, err = js.CreateOrUpdateConsumer(ctx, cfg.JetStreamStream, jetstream.ConsumerConfig{
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
	} else {
		if st.consumer, err = js.Consumer(ctx, cfg.JetStreamStream, cfg.JetStreamConsumer); err != nil {
			return fmt.Errorf("consumer %s on stream %s (INSTANT_JETSTREAM_CREATE=false: it must exist): %w", cfg.JetStreamConsumer, cfg.JetStreamStream, err)
		}
		cc := st.consumer.CachedInfo().Config
		if cc.AckPolicy != jetstream.AckExplicitPolicy {
			return fmt.Errorf("consumer %s: ack policy %s, want explicit", cfg.JetStreamConsumer, cc.AckPolicy)
		}
		if cc.MaxDeliver > 0 && cc.MaxDeliver <= cfg.JetStreamMaxDeliver {
			b.log.Warn("consumer max_deliver should be -1 (unlimited): the bridge enforces INSTANT_JETSTREAM_MAX_DELIVER and dead-letters on the last delivery; with the server's limit an envelope whose last delivery is lost in a crash stays in the stream",
				zap.Int("consumer_max_deliver", cc.MaxDeliver), zap.Int("INSTANT_JETSTREAM_MAX_DELIVER", cfg.JetStreamMaxDeliver))
		}
	}
	st.ackWait = st.consumer.CachedInfo().Config.AckWait
	if st.ackWait <= 0 {
		st.ackWait = 30 * time.Second // the server's default
	}
	if st.ackWait != cfg.JetStreamAckWait {
		b.log.Warn("the consumer's ack wait differs from INSTANT_JETSTREAM_ACK_WAIT; using the consumer's",
			zap.Duration("consumer_ack_wait", st.ackWait), zap.Duration("INSTANT_JETSTREAM_ACK_WAIT", cfg.JetStreamAckWait))
	}
	b.jets = st
	b.ready.js = st
	return nil
}

// startJetStream starts fetching from the consumer.
func (b *Bridge) startJetStream() error {
	st := b.jets
	it, err := st.consumer.Messages(jetstream.PullMaxMessages(min(b.cfg.QueueSize, 1000)))
	if err != nil {
		return fmt.Errorf("consume %s/%s: %w", b.cfg.JetStreamStream, b.cfg.JetStreamConsumer, err)
	}
	st.iter = it
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(st.loopDone)
		for {
			msg, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				b.log.Warn("jetstream fetch", zap.Error(err))
				continue
			}
			b.handleJS(msg)
		}
	}()
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		b.watchConsumer()
	}()
	go func() {
		defer b.wg.Done()
		b.keepAlive()
	}()
	return nil
}

// keepAlive tells JetStream, every third of the ack wait, that the envelopes
// this bridge holds are still being worked on, so a slow Centrifugo (retries,
// a long queue) does not get them redelivered to another replica meanwhile.
func (b *Bridge) keepAlive() {
	t := time.NewTicker(b.jets.ackWait / 3)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		// A message held far longer than any retry budget would be a bug in
		// the bridge: stop extending it, so JetStream redelivers it.
		limit := 10*b.jets.ackWait + time.Duration(b.cfg.RetryAttempts)*(b.cfg.CentrifugoTimeout+b.cfg.RetryMaxBackoff)
		b.jets.mu.Lock()
		held := make([]jetstream.Msg, 0, len(b.jets.held))
		for m, since := range b.jets.held {
			if time.Since(since) > limit {
				delete(b.jets.held, m)
				b.log.Error("envelope held without an outcome for too long; letting JetStream redeliver it", zap.Duration("held", time.Since(since)))
				continue
			}
			held = append(held, m)
		}
		b.jets.mu.Unlock()
		for _, m := range held {
			if !b.jets.isHeld(m) {
				continue // its outcome arrived meanwhile
			}
			if err := m.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				b.m.jsAckErrors.Inc()
			}
		}
	}
}

func (st *jsState) hold(m jetstream.Msg) {
	st.mu.Lock()
	st.held[m] = time.Now()
	st.mu.Unlock()
}

func (st *jsState) isHeld(m jetstream.Msg) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.held[m]
	return ok
}

func (st *jsState) release(m jetstream.Msg) {
	st.mu.Lock()
	delete(st.held, m)
	st.mu.Unlock()
}

// stopJetStream stops fetching and waits until every fetched envelope was
// handed to the forwarder (or dead-lettered).
func (b *Bridge) stopJetStream(ctx context.Context) {
	st := b.jets
	if st == nil || st.iter == nil {
		return
	}
	st.iter.Drain()
	select {
	case <-st.loopDone:
	case <-ctx.Done():
		st.iter.Stop() // what is left is redelivered after the ack wait
	}
}

// handleJS handles one stored envelope: decode, check, forward. Its outcome
// acks it, naks it for a later redelivery, or dead-letters and terminates it.
func (b *Bridge) handleJS(msg jetstream.Msg) {
	recv := time.Now()
	b.m.inflight.Inc()
	md, err := msg.Metadata()
	if err != nil {
		b.log.Error("jetstream message without metadata", zap.Error(err))
		b.m.inflight.Dec()
		return
	}
	if md.NumDelivered > 1 {
		b.m.jsRedeliveries.Inc()
	}
	producer := b.producer(msg.Subject())
	fallbackID := msg.Headers().Get(HeaderEnvelopeID) // kept by dlq replay
	if !validID(fallbackID) {
		fallbackID = ids.At(md.Timestamp, md.Sequence.Stream)
	}
	// Checked before anything else, so an envelope that crashes the bridge
	// while being decoded is dead-lettered too.
	if md.NumDelivered > uint64(b.cfg.JetStreamMaxDeliver) {
		b.deadLetter(msg, md, fallbackID, producer, centrifugo.NewError(CodeMaxDeliveries,
			fmt.Sprintf("delivered %d times without an outcome (INSTANT_JETSTREAM_MAX_DELIVER=%d)", md.NumDelivered, b.cfg.JetStreamMaxDeliver)))
		return
	}
	id, cmds, err := b.prepare(producer, msg.Data(), recv, fallbackID)
	if err != nil {
		b.deadLetter(msg, md, id, producer, err)
		return
	}
	item := &centrifugo.Item{Commands: cmds}
	item.Done = func(o centrifugo.Outcome) {
		b.jets.release(msg)
		b.finishJS(msg, md, id, producer, recv, o)
	}
	b.jets.hold(msg)
	if err := b.fwd.Submit(b.ctx, item); err != nil {
		b.jets.release(msg)
		b.m.inflight.Dec()
		b.nak(msg, md) // shutting down: another replica or the next start takes it
	}
}

func (b *Bridge) finishJS(msg jetstream.Msg, md *jetstream.MsgMetadata, id, producer string, recv time.Time, o centrifugo.Outcome) {
	if o.Err == nil {
		if err := msg.Ack(); err != nil {
			b.m.jsAckErrors.Inc()
			b.log.Error("ack", zap.String(logging.FieldID, id), zap.Error(err))
		}
		b.m.jsAcks.WithLabelValues("ack").Inc()
		b.countForwarded(recv)
		if to := b.replyTo(msg); to != "" {
			b.publishReceipt(to, okReceipt(id, o))
		}
		return
	}
	if o.Err.Shutdown() || (o.Err.Code() == centrifugo.CodeUpstreamUnavailable && md.NumDelivered < uint64(b.cfg.JetStreamMaxDeliver)) {
		b.m.inflight.Dec()
		b.nak(msg, md)
		return
	}
	b.deadLetter(msg, md, id, producer, o.Err)
}

// replyTo is the envelope's Instant-Reply-To subject when it is allowed: a
// literal subject under INSTANT_RECEIPT_PREFIX, so that a producer cannot
// make the bridge publish elsewhere with its permissions.
func (b *Bridge) replyTo(msg jetstream.Msg) string {
	to := msg.Headers().Get(HeaderReplyTo)
	if to == "" {
		return ""
	}
	if !strings.HasPrefix(to, b.cfg.ReceiptPrefix) || strings.ContainsAny(to, "*> \t\r\n") {
		b.rejectLog.Do(func() {
			b.log.Warn("ignoring Instant-Reply-To outside INSTANT_RECEIPT_PREFIX", zap.String("reply_to", headerSafe(to)), zap.String("prefix", b.cfg.ReceiptPrefix))
		})
		return ""
	}
	return to
}

// nak asks for a redelivery after the backoff step of this delivery.
func (b *Bridge) nak(msg jetstream.Msg, md *jetstream.MsgMetadata) {
	steps := b.cfg.JetStreamBackoff
	i := int(md.NumDelivered) - 1
	if i >= len(steps) {
		i = len(steps) - 1
	}
	if i < 0 {
		i = 0
	}
	if err := msg.NakWithDelay(steps[i]); err != nil {
		b.m.jsAckErrors.Inc()
		b.log.Error("nak", zap.Uint64("seq", md.Sequence.Stream), zap.Error(err))
	}
	b.m.jsAcks.WithLabelValues("nak").Inc()
}

// deadLetter stores the envelope in the dead-letter stream with the reason,
// then terminates it. If the dead letter cannot be stored, the envelope is
// naked instead: it never leaves the stream without a trace.
func (b *Bridge) deadLetter(msg jetstream.Msg, md *jetstream.MsgMetadata, id, producer string, cause error) {
	code := reasonCode(cause)
	dl := failureMsg(b.cfg.DLQSubject+"."+code, msg.Data(), msg.Headers(), code, cause, msg.Subject(), producer, id)
	dl.Header.Set(HeaderDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	dl.Header.Set(HeaderOriginalSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	// The dead letter's own Nats-Msg-Id makes a retried store idempotent.
	dl.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s-%d", b.cfg.JetStreamStream, md.Sequence.Stream))
	ctx, cancel := context.WithTimeout(b.stopCtx(), 5*time.Second)
	defer cancel()
	if _, err := b.jets.js.PublishMsg(ctx, dl); err != nil {
		b.log.Error("store dead letter; the envelope will be redelivered",
			zap.String(logging.FieldReason, code), zap.Uint64("seq", md.Sequence.Stream), zap.Error(err))
		b.m.inflight.Dec()
		b.nak(msg, md)
		return
	}
	if err := msg.TermWithReason(code); err != nil {
		b.m.jsAckErrors.Inc()
		b.log.Error("term", zap.Uint64("seq", md.Sequence.Stream), zap.Error(err))
	}
	b.m.jsAcks.WithLabelValues("term").Inc()
	b.m.inflight.Dec()
	b.m.envelopes.WithLabelValues("rejected", code).Inc()
	b.m.deadLettered.WithLabelValues(code).Inc()
	b.rejectLog.Do(func() {
		b.log.Warn("envelope dead-lettered (logging is rate-limited; see instant_bridge_dead_lettered_total)",
			zap.String(logging.FieldReason, code), zap.String(logging.FieldSubject, msg.Subject()),
			zap.Uint64("seq", md.Sequence.Stream), zap.String(logging.FieldID, id), zap.Error(cause))
	})
	if to := b.replyTo(msg); to != "" {
		b.publishReceipt(to, failReceipt(id, code, cause))
	}
}

// watchConsumer keeps the consumer gauges and the readiness state fresh.
func (b *Bridge) watchConsumer() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		info, err := b.jets.consumer.Info(ctx)
		cancel()
		if err == nil {
			b.m.jsPending.Set(float64(info.NumPending))
			b.m.jsAckPending.Set(float64(info.NumAckPending))
			b.jets.infoOK.Store(time.Now().UnixNano())
			b.jets.infoError.Store("")
		} else {
			b.jets.infoError.Store(err.Error())
		}
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// validID is the envelope's rule for ids: 1-128 printable ASCII characters.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
