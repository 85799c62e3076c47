package dlq

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// Headers the bridge sets on rejection notices and dead letters. They are
// declared here only; the bridge and the tools import them.
const (
	HeaderErrorCode        = "Instant-Error-Code"
	HeaderError            = "Instant-Error"
	HeaderDeliveries       = "Instant-Deliveries"
	HeaderOriginalSubject  = "Instant-Original-Subject"
	HeaderOriginalSequence = "Instant-Original-Sequence"
	HeaderOriginalMsgID    = "Instant-Original-Msg-Id"
	HeaderEnvelopeID       = "Instant-Envelope-Id"
	HeaderProducer         = "Instant-Producer"
	// HeaderTruncated holds the original size in bytes of an envelope whose
	// dead letter keeps only the start of it: the whole would have exceeded
	// the NATS server's max_payload.
	HeaderTruncated = "Instant-Truncated"
	// HeaderReplayedFrom marks a replayed envelope with its dead letter's
	// sequence.
	HeaderReplayedFrom = "Instant-Replayed-From"
)

// Reserved reports whether a header name belongs to NATS (Nats-*) or to the
// bridge (Instant-*), in any letter case: a producer cannot set these on a
// notice, a dead letter or a replay.
func Reserved(name string) bool {
	return hasPrefixFold(name, "Instant-") || hasPrefixFold(name, "Nats-")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Failure says why an envelope was not forwarded.
type Failure struct {
	Code            string // stable reason code
	Reason          string // human-readable, one line
	OriginalSubject string
	Producer        string // "" for the bare subject
	EnvelopeID      string // "" when the envelope could not be decoded
}

// FailureMsg is a rejection notice or the start of a dead letter: the
// original bytes on subject, the producer's own headers less the reserved
// ones (Nats-Msg-Id is kept as Instant-Original-Msg-Id), and the headers
// saying why.
func FailureMsg(subject string, data []byte, orig nats.Header, f Failure) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	for k, v := range orig {
		switch {
		case k == nats.MsgIdHdr:
			m.Header[HeaderOriginalMsgID] = v
		case Reserved(k):
		default:
			m.Header[k] = v
		}
	}
	m.Header.Set(HeaderErrorCode, f.Code)
	m.Header.Set(HeaderError, headerSafe(f.Reason))
	m.Header.Set(HeaderOriginalSubject, f.OriginalSubject)
	if f.Producer != "" {
		m.Header.Set(HeaderProducer, f.Producer)
	}
	if f.EnvelopeID != "" {
		m.Header.Set(HeaderEnvelopeID, f.EnvelopeID)
	}
	return m
}

// headerSafe keeps a header value on one line and at most 1 KiB.
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
