package bridge

import "context"

// source is where envelopes come from: one implementation per delivery mode,
// each in its own file (core.go, jetstream.go). A source says how envelopes
// are received, how an outcome is answered or acknowledged, how a failure is
// retried, and how receiving stops; everything in between (decode, ACL,
// commands, forwarding, counting, receipts) is the bridge's one handle path.
type source interface {
	// start sets the source up and begins handing each received envelope to
	// handle. Envelopes of one subscription are handed over in order.
	start(ctx context.Context, handle func(delivery)) error
	// drain stops receiving and returns once every envelope received was
	// handed over, or ctx ended.
	drain(ctx context.Context) error
	// status is the source's part of /readyz: a state for the "consumer"
	// field ("" when the mode has none) and whether it is ready.
	status() (state string, ok bool)
}

// delivery is one received envelope, handed to the handle path exactly once
// and settled exactly once.
type delivery interface {
	subject() string
	data() []byte
	// replyTo is where the producer asked for a receipt ("" for none),
	// as given: the handle path checks it before publishing there.
	replyTo() string
	// begin runs before the envelope is decoded. It returns the id to give
	// an envelope without one ("" for a new one), or an error that fails
	// the envelope at once.
	begin() (fallbackID string, err error)
	// settle applies the outcome: err is nil when Centrifugo accepted the
	// envelope. It says what became of the envelope.
	settle(f failureInfo, err error) disposition
}

// disposition is what became of an envelope once settled.
type disposition int

const (
	// forwarded: Centrifugo accepted it.
	forwarded disposition = iota
	// rejected: not forwarded, for good (rejection notice or dead letter).
	rejected
	// retrying: it will be delivered again; no receipt yet.
	retrying
	// probed: a canary probe (canary.go), settled by the canary: not a user
	// envelope, so not counted and never answered.
	probed
)

// failureInfo names the envelope being settled, for notices and dead letters.
type failureInfo struct {
	id       string // "" when it could not be decoded
	producer string
}
