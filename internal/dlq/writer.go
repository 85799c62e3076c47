package dlq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig is the dead-letter stream the bridge creates: name, holding
// subjectPrefix.<code>, kept until purged or replayed.
func StreamConfig(name, subjectPrefix string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "Instant dead letters: envelopes that could not be forwarded, with the reason in headers",
		Subjects:    []string{subjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// Writer stores dead letters on SubjectPrefix.<code>.
type Writer struct {
	js            jetstream.JetStream
	nc            *nats.Conn
	subjectPrefix string
}

// NewWriter returns a writer publishing through js on nc.
func NewWriter(js jetstream.JetStream, nc *nats.Conn, subjectPrefix string) *Writer {
	return &Writer{js: js, nc: nc, subjectPrefix: subjectPrefix}
}

// Dead is one envelope to dead-letter: its failure, and where it was in the
// envelope stream.
type Dead struct {
	Failure
	Data       []byte
	Header     nats.Header // the envelope's own headers
	Stream     string
	Sequence   uint64    // in Stream
	Stored     time.Time // when Stream stored it
	Deliveries uint64
}

// Write stores d and returns once JetStream has it. A retried write of the
// same envelope is deduplicated (Nats-Msg-Id <stream>-<seq>-<stored>: the
// store time tells apart the envelopes of a stream that was deleted and
// created again, whose sequences start over). When the
// envelope and its headers exceed the server's max_payload, the dead letter
// keeps the headers and as much of the body as fits, with Instant-Truncated
// giving the original size: a dead letter can always be written.
func (w *Writer) Write(ctx context.Context, d Dead) error {
	m := FailureMsg(w.subjectPrefix+"."+d.Code, d.Data, d.Header, d.Failure)
	m.Header.Set(HeaderDeliveries, strconv.FormatUint(d.Deliveries, 10))
	m.Header.Set(HeaderOriginalSequence, strconv.FormatUint(d.Sequence, 10))
	m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s-%d-%d", d.Stream, d.Sequence, d.Stored.UnixNano()))
	if limit := w.nc.MaxPayload(); limit > 0 {
		fit(m, int(limit))
	}
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("store dead letter on %s: %w", m.Subject, err)
	}
	return nil
}

// fit shortens m's body so that body and headers are within limit bytes,
// marking it with Instant-Truncated. Producer headers go first if even an
// empty body does not fit.
func fit(m *nats.Msg, limit int) {
	// A margin for the size header itself and NATS's framing.
	const margin = 64
	orig := len(m.Data)
	if headerSize(m.Header)+orig+margin <= limit {
		return
	}
	m.Header.Set(HeaderTruncated, strconv.Itoa(orig))
	for k := range m.Header {
		if headerSize(m.Header)+margin <= limit {
			break
		}
		if !Reserved(k) {
			delete(m.Header, k)
		}
	}
	room := max(limit-headerSize(m.Header)-margin, 0)
	m.Data = m.Data[:min(room, orig)]
}

// headerSize is the encoded size of h: "NATS/1.0\r\n", a "k: v\r\n" line per
// value, and the closing "\r\n".
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}
