package envelope

import "strings"

// Error codes. They are stable: callers may switch on them, log them and
// return them to producers.
const (
	// CodeInvalidJSON: the body is not one valid, UTF-8 encoded JSON value.
	CodeInvalidJSON = "invalid_json"
	// CodeInvalidEnvelope: the body is valid JSON but not a valid envelope.
	CodeInvalidEnvelope = "invalid_envelope"
	// CodeTooLarge: the body, a channel list, a channel name or data exceeds a Limit.
	CodeTooLarge = "too_large"
)

// Sentinel errors, one per code, for errors.Is: every *Error returned by
// Decode matches the sentinel of its code.
var (
	ErrInvalidJSON     = &Error{code: CodeInvalidJSON}
	ErrInvalidEnvelope = &Error{code: CodeInvalidEnvelope}
	ErrTooLarge        = &Error{code: CodeTooLarge}
)

// Error is every Decode failure. Field is the JSON field at fault ("" when
// none), Reason a human sentence.
type Error struct {
	code   string
	Field  string
	Reason string
}

// Code returns the machine code of e: CodeInvalidJSON, CodeInvalidEnvelope or
// CodeTooLarge.
func (e *Error) Code() string { return e.code }

// Error returns "code: field: reason", "code: reason" when Field is empty.
// A Field that is not a plain name (an unknown key can hold anything) is
// quoted.
func (e *Error) Error() string {
	var sb strings.Builder
	sb.WriteString(e.code)
	if e.Field != "" {
		sb.WriteString(": ")
		if plainName(e.Field) {
			sb.WriteString(e.Field)
		} else {
			sb.Write(appendString(nil, e.Field, 1))
		}
	}
	if e.Reason != "" {
		sb.WriteString(": ")
		sb.WriteString(e.Reason)
	}
	return sb.String()
}

// Is reports whether target is the sentinel of e's code (ErrInvalidJSON,
// ErrInvalidEnvelope or ErrTooLarge).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Field == "" && t.Reason == "" && t.code == e.code
}

// plainName reports whether s is 1-64 characters of [A-Za-z0-9_.:-].
func plainName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isClassChar(s[i]) {
			return false
		}
	}
	return true
}

func isClassChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}
