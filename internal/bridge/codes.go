package bridge

import (
	"errors"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/pkg/acl"
	"github.com/instant-go/instant/pkg/envelope"
)

// Reason codes of the bridge itself. Those of decoding, of the ACL and of
// forwarding are declared by pkg/envelope, pkg/acl and internal/centrifugo.
const (
	// CodeMaxDeliveries: a stored envelope was delivered more often than
	// INSTANT_JETSTREAM_MAX_DELIVER without an outcome (bridges crashing on it).
	CodeMaxDeliveries = "max_deliveries"
	// CodeInternal: an unexpected failure inside the bridge.
	CodeInternal = "internal_error"
)

// ReasonCodes lists every reason code the bridge can answer with, in the
// order of the README's table.
func ReasonCodes() []string {
	return []string{
		envelope.CodeInvalidJSON, envelope.CodeInvalidEnvelope, envelope.CodeTooLarge,
		acl.CodeUnknownChannel, acl.CodeInactiveChannel, acl.CodePublisherDenied,
		centrifugo.CodeUpstreamRejected, centrifugo.CodeUpstreamUnavailable,
		CodeMaxDeliveries, CodeInternal,
	}
}

// Error is a failure the bridge decides itself, with a stable code.
type Error struct {
	code string
	msg  string
	// retry: the envelope was not tried (the bridge is shutting down); a
	// stored one is redelivered rather than dead-lettered.
	retry bool
}

func newError(code, msg string) *Error { return &Error{code: code, msg: msg} }

// Code is the stable reason code.
func (e *Error) Code() string { return e.code }

func (e *Error) Error() string { return e.code + ": " + e.msg }

// coded is an error with a stable reason code.
type coded interface {
	error
	Code() string
}

// reasonCode is the stable code of err, internal_error for an unexpected one.
func reasonCode(err error) string {
	var c coded
	if errors.As(err, &c) {
		return c.Code()
	}
	return CodeInternal
}

// retryLater reports whether a failed envelope was not really tried and a
// stored copy should be redelivered: the bridge was shutting down.
func retryLater(err error) bool {
	var be *Error
	if errors.As(err, &be) {
		return be.retry
	}
	var ce *centrifugo.Error
	return errors.As(err, &ce) && ce.Shutdown()
}
