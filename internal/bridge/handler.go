package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/hotfile"
	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/pkg/acl"
	"github.com/instant-go/instant/pkg/envelope"
)

// handle is the one path of every envelope, whatever its source: decode,
// check against the ACL, build the Centrifugo commands, forward, and hand
// the outcome back to the source. It runs on the source's receiving
// goroutine, so envelopes of one subscription are queued in arrival order.
func (b *Bridge) handle(d delivery) {
	recv := time.Now()
	b.m.inflight.Inc()
	producer, reg, perr := b.route(d)
	fallbackID, err := d.begin()
	if err == nil {
		err = perr
	}
	if err != nil {
		b.finish(d, failureInfo{id: fallbackID, producer: producer}, recv, nil, err)
		return
	}
	id, cmds, err := b.prepare(producer, reg, d.data(), recv, fallbackID)
	fi := failureInfo{id: id, producer: producer}
	if err != nil {
		b.finish(d, fi, recv, nil, err)
		return
	}
	item := &centrifugo.Item{Commands: cmds}
	item.Done = func(o centrifugo.Outcome) {
		if o.Err != nil {
			b.finish(d, fi, recv, nil, o.Err)
			return
		}
		b.finish(d, fi, recv, o.Results, nil)
	}
	if err := b.fwd.Submit(b.ctx, item); err != nil {
		var refused *centrifugo.Error
		if !errors.As(err, &refused) { // shutdown began; the producer still gets an answer
			err = &Error{code: centrifugo.CodeUpstreamUnavailable, msg: "bridge is shutting down: " + err.Error(), retry: true}
		}
		b.finish(d, fi, recv, nil, err)
	}
}

// route names the producer of a delivery and the registry its envelope is
// checked against: the channels file for the envelopes received on
// INSTANT_SUBJECT, the canary's own for the canary (a delivery that
// routes itself).
func (b *Bridge) route(d delivery) (string, *acl.Registry, error) {
	if r, ok := d.(routed); ok {
		producer, reg := r.route()
		return producer, reg, nil
	}
	producer, err := b.producer(d.subject())
	return producer, b.channels.Current(), err
}

// routed is a delivery that names its producer and registry itself.
type routed interface {
	route() (producer string, reg *acl.Registry)
}

// envelopeRules are what decides what becomes of an envelope, with no I/O:
// the handle path and bridge explain both ask them.
type envelopeRules struct {
	subject  string // INSTANT_SUBJECT
	site     string // INSTANT_SITE_NAME
	mode     envelope.Mode
	limits   envelope.Limits
	channels *hotfile.File[*acl.Registry]
	ids      *ids.Generator

	maxRequestBytes int // INSTANT_MAX_REQUEST_BYTES: django-mode encoding stops beyond it
}

// prepare is the per-envelope hot path: decode, check against the ACL (reg),
// encode the Centrifugo commands. It returns the envelope's id: the
// producer's, else fallbackID, else a new one (fallbackID when the envelope
// could not be decoded).
func (b *envelopeRules) prepare(producer string, reg *acl.Registry, data []byte, recv time.Time, fallbackID string) (string, []centrifugo.Command, error) {
	env, err := envelope.Decode(data, b.limits)
	if err != nil {
		return fallbackID, nil, err
	}
	id := env.ID
	if id == "" {
		id = fallbackID
	}
	if err := reg.CheckPublish(producer, env.Targets()); err != nil {
		return id, nil, err
	}
	if id == "" {
		id = b.ids.Next()
	}
	cmds, err := b.commands(&env, id, idempotencyKey(producer, id), recv)
	return id, cmds, err
}

// idempotencyKey is the key Centrifugo drops repeats by: the envelope id,
// scoped by the producer, so that two producers' envelopes with the same
// id of their own are not taken for one.
func idempotencyKey(producer, id string) string {
	if producer == "" {
		return id
	}
	return producer + "/" + id
}

// commands turns an envelope into Centrifugo commands: a publish for one
// channel; for several, a broadcast in object mode, or one publish per
// channel in django mode (whose payload names its channel). The site and id
// defaults are applied here, once. Every command carries key (see
// idempotencyKey), so a retried request (a timeout after Centrifugo
// applied it, a redelivered stored envelope) is not published twice.
// In django mode, building stops as soon as the payloads exceed
// INSTANT_MAX_REQUEST_BYTES (too_large): a 64 KiB envelope to 100 channels
// would otherwise cost tens of megabytes of encoding before the forwarder
// refuses it.
func (b *envelopeRules) commands(env *envelope.Envelope, id, key string, recv time.Time) ([]centrifugo.Command, error) {
	meta := envelope.Meta{ID: id, Site: env.Site, ReceivedAt: recv}
	if meta.Site == "" {
		meta.Site = b.site
	}
	if env.Channel != "" {
		return []centrifugo.Command{{Channel: env.Channel, IdempotencyKey: key, Data: envelope.AppendPayload(nil, b.mode, env, env.Channel, meta)}}, nil
	}
	if b.mode == envelope.ModeObject {
		return []centrifugo.Command{{Channels: env.Channels, IdempotencyKey: key, Data: envelope.AppendPayload(nil, b.mode, env, "", meta)}}, nil
	}
	cmds := make([]centrifugo.Command, len(env.Channels))
	size, limit := 0, b.maxRequestBytes
	for i, ch := range env.Channels {
		cmds[i] = centrifugo.Command{Channel: ch, IdempotencyKey: key, Data: envelope.AppendPayload(nil, b.mode, env, ch, meta)}
		if size += len(cmds[i].Data); limit > 0 && size > limit {
			return nil, newError(envelope.CodeTooLarge, fmt.Sprintf("its Centrifugo commands take more than %d bytes (%d of %d channels encoded), over the %d of one request (INSTANT_MAX_REQUEST_BYTES)",
				size, i+1, len(env.Channels), limit))
		}
	}
	return cmds, nil
}

// finish hands the outcome to the envelope's source, then counts it and
// answers the producer: the one place where an envelope leaves the bridge.
func (b *Bridge) finish(d delivery, fi failureInfo, recv time.Time, results []centrifugo.Result, err error) {
	disp := d.settle(fi, err)
	b.m.inflight.Dec()
	switch disp {
	case forwarded:
		b.m.forwarded.Inc()
		b.m.forwardLatency.Observe(time.Since(recv).Seconds())
		if to := b.receiptSubject(d); to != "" {
			b.publishOK(to, fi.id, results)
		}
	case rejected:
		code := reasonCode(err)
		b.m.envelopes.WithLabelValues("rejected", code).Inc()
		b.rejectLog.Do(func() {
			b.log.Warn("envelope rejected (logging is rate-limited; see instant_bridge_envelopes_total)",
				zap.String(logging.FieldReason, code), zap.String(logging.FieldSubject, d.subject()),
				zap.String(logging.FieldProducer, fi.producer), zap.String(logging.FieldID, fi.id), zap.Error(err))
		})
		if to := b.receiptSubject(d); to != "" {
			b.publishReceipt(to, failReceipt(fi.id, code, err))
		}
	case retrying, probed:
	}
}

// producer names the producer from the subject: the tokens after
// INSTANT_SUBJECT and a dot ("instant.publish.billing" is "billing"); "" for
// the bare subject. Any other subject (a stream whose subjects are wider
// than the bridge's, such as instant.publishXbilling) is refused.
func (b *envelopeRules) producer(subject string) (string, error) {
	if subject == b.subject {
		return "", nil
	}
	if p, ok := strings.CutPrefix(subject, b.subject+"."); ok && p != "" {
		return p, nil
	}
	return "", newError(envelope.CodeInvalidEnvelope, fmt.Sprintf("subject %q is neither INSTANT_SUBJECT %q nor %s.<producer>", subject, b.subject, b.subject))
}
