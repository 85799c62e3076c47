package bridge

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/pkg/envelope"
)

// Reason codes the bridge itself adds to those of pkg/envelope, pkg/acl and
// internal/centrifugo.
const (
	// CodeInternal: an unexpected failure inside the bridge.
	CodeInternal = "internal_error"
)

// Headers of rejection notices and dead letters.
const (
	HeaderErrorCode       = dlq.HeaderErrorCode
	HeaderError           = dlq.HeaderError
	HeaderOriginalSubject = dlq.HeaderOriginalSubject
	HeaderProducer        = dlq.HeaderProducer
	HeaderEnvelopeID      = dlq.HeaderEnvelopeID
)

// coded is an error with a stable reason code.
type coded interface {
	error
	Code() string
}

// handle is the NATS message handler: decode, check, queue for Centrifugo.
// It runs on the subscription's goroutine, so envelopes of one subscription
// are queued in the order they arrived.
func (b *Bridge) handle(msg *nats.Msg) {
	recv := time.Now()
	b.m.inflight.Inc()
	producer := b.producer(msg.Subject)
	id, cmds, err := b.prepare(producer, msg.Data, recv, "")
	if err != nil {
		b.reject(msg, id, producer, err)
		return
	}
	item := &centrifugo.Item{Commands: cmds}
	item.Done = func(o centrifugo.Outcome) { b.finish(msg, id, producer, recv, o) }
	if err := b.fwd.Submit(b.ctx, item); err != nil {
		// Only after shutdown began; the producer still gets an answer.
		b.reject(msg, id, producer, centrifugo.NewError(centrifugo.CodeUpstreamUnavailable, "bridge is shutting down: "+err.Error()))
	}
}

// prepare is the per-envelope hot path: decode, check against the ACL,
// encode the Centrifugo commands. It returns the envelope's id: the
// producer's, else fallbackID, else a new one ("" when the envelope could
// not be decoded).
func (b *Bridge) prepare(producer string, data []byte, recv time.Time, fallbackID string) (string, []centrifugo.Command, error) {
	env, err := envelope.Decode(data, b.limits)
	if err != nil {
		return "", nil, err
	}
	id := env.ID
	if id == "" {
		id = fallbackID
	}
	if err := b.channels.Current().CheckPublish(producer, env.Targets()); err != nil {
		return id, nil, err
	}
	if id == "" {
		id = b.ids.Next()
	}
	return id, b.commands(&env, id, recv), nil
}

// commands turns an envelope into Centrifugo commands: a publish for one
// channel; for several, a broadcast in object mode, or one publish per
// channel in django mode (whose payload names its channel).
func (b *Bridge) commands(env *envelope.Envelope, id string, recv time.Time) []centrifugo.Command {
	site := env.Site
	if site == "" {
		site = b.cfg.SiteName
	}
	meta := envelope.Meta{ID: id, Site: site, ReceivedAt: recv}
	if env.Channel != "" {
		return []centrifugo.Command{{Channel: env.Channel, Data: envelope.AppendPayload(nil, b.mode, env, env.Channel, meta)}}
	}
	if b.mode == envelope.ModeObject {
		return []centrifugo.Command{{Channels: env.Channels, Data: envelope.AppendPayload(nil, b.mode, env, "", meta)}}
	}
	cmds := make([]centrifugo.Command, len(env.Channels))
	for i, ch := range env.Channels {
		cmds[i] = centrifugo.Command{Channel: ch, Data: envelope.AppendPayload(nil, b.mode, env, ch, meta)}
	}
	return cmds
}

// finish records the outcome of a forwarded envelope and answers the producer.
func (b *Bridge) finish(msg *nats.Msg, id, producer string, recv time.Time, o centrifugo.Outcome) {
	if o.Err != nil {
		b.reject(msg, id, producer, o.Err)
		return
	}
	b.countForwarded(recv)
	if msg.Reply != "" {
		b.respond(msg, okReceipt(id, o))
	}
}

// countForwarded records a forwarded envelope received at recv.
func (b *Bridge) countForwarded(recv time.Time) {
	b.m.inflight.Dec()
	b.m.forwarded.Inc()
	b.m.forwardLatency.Observe(time.Since(recv).Seconds())
}

// okReceipt is the receipt of a forwarded envelope: its stream position, or
// one per channel when it went to several.
func okReceipt(id string, o centrifugo.Outcome) *receipt {
	r := &receipt{OK: true, ID: id}
	if len(o.Results) == 1 {
		r.Offset, r.Epoch = o.Results[0].Offset, o.Results[0].Epoch
	} else {
		r.Results = o.Results
	}
	return r
}

// failReceipt is the receipt of an envelope that was not forwarded.
func failReceipt(id, code string, err error) *receipt {
	return &receipt{OK: false, ID: id, Error: &receiptError{Code: code, Message: err.Error()}}
}

// reasonCode is the stable code of err, internal_error for an unexpected one.
func reasonCode(err error) string {
	var c coded
	if errors.As(err, &c) {
		return c.Code()
	}
	return CodeInternal
}

// failureMsg is a rejection notice or a dead letter: the original bytes on
// subject, the producer's own headers (see copyHeaders) and the headers
// saying why.
func failureMsg(subject string, data []byte, orig nats.Header, code string, err error, origSubject, producer, id string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	copyHeaders(m.Header, orig)
	m.Header.Set(HeaderErrorCode, code)
	m.Header.Set(HeaderError, headerSafe(err.Error()))
	m.Header.Set(HeaderOriginalSubject, origSubject)
	if producer != "" {
		m.Header.Set(HeaderProducer, producer)
	}
	if id != "" {
		m.Header.Set(HeaderEnvelopeID, id)
	}
	return m
}

// receipt is the answer to a producer that asked for one (nats req).
type receipt struct {
	OK      bool                `json:"ok"`
	ID      string              `json:"id,omitempty"`
	Offset  uint64              `json:"offset,omitempty"`
	Epoch   string              `json:"epoch,omitempty"`
	Results []centrifugo.Result `json:"results,omitempty"`
	Error   *receiptError       `json:"error,omitempty"`
}

type receiptError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// reject answers the producer with the reason (when it asked for a receipt),
// publishes the original envelope to REJECTED_PREFIX.<code>, and counts it.
func (b *Bridge) reject(msg *nats.Msg, id, producer string, err error) {
	code := reasonCode(err)
	b.m.inflight.Dec()
	b.m.envelopes.WithLabelValues("rejected", code).Inc()
	b.rejectLog.Do(func() {
		b.log.Warn("envelope rejected (logging is rate-limited; see instant_bridge_envelopes_total)",
			zap.String(logging.FieldReason, code), zap.String(logging.FieldSubject, msg.Subject),
			zap.String(logging.FieldProducer, producer), zap.String(logging.FieldID, id), zap.Error(err))
	})
	notice := failureMsg(b.cfg.RejectedPrefix+"."+code, msg.Data, msg.Header, code, err, msg.Subject, producer, id)
	if perr := b.nc.PublishMsg(notice); perr != nil {
		b.m.receiptErrors.Inc()
		b.log.Error("publish rejection notice", zap.String(logging.FieldReason, code), zap.Error(perr))
	}
	if msg.Reply != "" {
		b.respond(msg, failReceipt(id, code, err))
	}
}

func (b *Bridge) respond(msg *nats.Msg, r *receipt) {
	b.publishReceipt(msg.Reply, r)
}

func (b *Bridge) publishReceipt(subject string, r *receipt) {
	data, err := json.Marshal(r)
	if err == nil {
		err = b.nc.Publish(subject, data)
	}
	if err != nil {
		b.m.receiptErrors.Inc()
		b.log.Error("publish receipt", zap.String(logging.FieldID, r.ID), zap.Error(err))
	}
}

// headerSafe keeps a header value on one line.
func headerSafe(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	if len(out) > 1024 {
		out = append(out[:1021], "..."...)
	}
	return string(out)
}

// copyHeaders copies a producer's headers onto a rejection notice or a dead
// letter. NATS's own headers (Nats-Expected-Stream and the like would make
// the store fail) and Instant-* headers (which the bridge sets itself, and a
// producer must not forge) are left out; Nats-Msg-Id is kept as
// Instant-Original-Msg-Id.
func copyHeaders(dst, src nats.Header) {
	for k, v := range src {
		switch {
		case k == nats.MsgIdHdr:
			dst[HeaderOriginalMsgID] = v
		case strings.HasPrefix(k, "Nats-"), strings.HasPrefix(k, "Instant-"):
		default:
			dst[k] = v
		}
	}
}
