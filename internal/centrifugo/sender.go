package centrifugo

import (
	"context"
	"strconv"
)

// Sender is the transport to Centrifugo's server API: the only thing the
// Forwarder knows of HTTP, JSON or client libraries. Each implementation is
// one file: http_sender.go (the bridge's), gocent_sender.go.
type Sender interface {
	// Send sends cmds in one request, applied by Centrifugo in order. It
	// returns one Reply per command, in order, or a request-level error when
	// no command has a reply: a *RequestError says whether sending again may
	// succeed; any other error counts as Centrifugo being unavailable.
	Send(ctx context.Context, cmds []Command) ([]Reply, error)
	// Ready returns nil when Centrifugo answers its API (readiness probe).
	Ready(ctx context.Context) error
}

// Reply is Centrifugo's answer to one command. For a publish, Offset and
// Epoch are the publication's place in the channel's history (zero when the
// channel keeps none); for a broadcast, PerChannel has one Reply per channel
// of the command, in order.
type Reply struct {
	Err        *ReplyError
	Kind       ReplyKind // what Centrifugo answered, when Err is nil
	Offset     uint64
	Epoch      string
	PerChannel []Reply
}

// ReplyKind is what a reply says was done. A reply whose kind does not
// match its command (or a broadcast reply without one response per
// channel) says nothing of what happened: the Forwarder sends the request
// again rather than take it for success.
type ReplyKind uint8

const (
	// ReplyUnknown: the reply names no result.
	ReplyUnknown ReplyKind = iota
	// ReplyPublished: a publication was made (a publish's result, or one
	// channel's result within a broadcast).
	ReplyPublished
	// ReplyBroadcast: a broadcast's responses, in PerChannel.
	ReplyBroadcast
)

// ReplyError is Centrifugo's error for one command (or one channel of a
// broadcast). Code 0 means the sender could not read the command's result.
type ReplyError struct {
	Code    uint32
	Message string
}

func (e *ReplyError) Error() string {
	return "centrifugo error " + strconv.FormatUint(uint64(e.Code), 10) + ": " + e.Message
}

// RequestError is the failure of a whole request.
type RequestError struct {
	// Unavailable: Centrifugo was not reached, did not answer in time, or
	// answered 5xx or 429, so sending again may succeed. Otherwise it refused
	// the request (other 4xx) or answered something unreadable.
	Unavailable bool
	// HTTPStatus is the response's status code, 0 when there was none.
	HTTPStatus int
	Err        error
}

func (e *RequestError) Error() string { return e.Err.Error() }

func (e *RequestError) Unwrap() error { return e.Err }

// unavailableStatus reports whether an HTTP status means Centrifugo may
// accept the same request later.
func unavailableStatus(code int) bool { return code >= 500 || code == 429 }
