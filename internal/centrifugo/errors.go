package centrifugo

import (
	"errors"

	"github.com/instant-go/instant/pkg/envelope"
)

// Stable codes of forwarding failures.
const (
	// CodeUpstreamRejected: Centrifugo answered the command with an error.
	CodeUpstreamRejected = "upstream_rejected"
	// CodeUpstreamUnavailable: Centrifugo could not be reached after the retries.
	CodeUpstreamUnavailable = "upstream_unavailable"
)

// codeTooLarge: an item cannot go in one request (too large for
// MaxRequestBytes, or Centrifugo answered 413 to it alone): the envelope's
// too_large.
const codeTooLarge = envelope.CodeTooLarge

// Error is a forwarding failure with a stable code.
type Error struct {
	code     string
	msg      string
	shutdown bool
}

// NewError returns an error with a code.
func NewError(code, msg string) *Error { return &Error{code: code, msg: msg} }

// Code is the stable reason code.
func (e *Error) Code() string { return e.code }

// Shutdown reports whether the failure is due to Close's timeout: Centrifugo
// may not even have been tried, so the item should be retried later.
func (e *Error) Shutdown() bool { return e.shutdown }

func (e *Error) Error() string { return e.code + ": " + e.msg }

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("forwarder closed")

var errShuttingDown = &Error{code: CodeUpstreamUnavailable, msg: "shutdown timeout reached before Centrifugo accepted the message", shutdown: true}
