package acl

import "fmt"

// Codes of *Error, stable: callers may rely on them.
const (
	CodeUnknownChannel  = "unknown_channel"
	CodeInactiveChannel = "inactive_channel"
	CodePublisherDenied = "publisher_denied"
)

// Error is why CheckPublish refused an envelope: the code and the first
// channel that failed.
type Error struct {
	code     string
	Channel  string
	Producer string
}

// Code returns the stable machine code, one of the Code constants.
func (e *Error) Code() string { return e.code }

func (e *Error) Error() string {
	switch e.code {
	case CodeUnknownChannel:
		return fmt.Sprintf("%s: channel %q is not registered", e.code, e.Channel)
	case CodeInactiveChannel:
		return fmt.Sprintf("%s: channel %q is not active", e.code, e.Channel)
	case CodePublisherDenied:
		return fmt.Sprintf("%s: producer %q may not publish to channel %q", e.code, e.Producer, e.Channel)
	}
	return fmt.Sprintf("%s: channel %q", e.code, e.Channel)
}

// CheckPublish reports whether producer may publish an envelope addressed to
// channels: every channel must be registered and active and, when its
// Publishers list is not empty, name producer (the empty producer is never
// named). The envelope is refused whole on the first failing channel, which
// the returned *Error names. An empty channels list is not refused here:
// envelope validation rejects it. CheckPublish does not allocate when it
// returns nil.
func (r *Registry) CheckPublish(producer string, channels []string) error {
	for _, name := range channels {
		var c *Channel
		if r != nil {
			c = r.byName[name]
		}
		switch {
		case c == nil:
			return &Error{code: CodeUnknownChannel, Channel: name, Producer: producer}
		case !c.Active:
			return &Error{code: CodeInactiveChannel, Channel: name, Producer: producer}
		case len(c.Publishers) > 0 && !mayPublish(producer, c.Publishers):
			return &Error{code: CodePublisherDenied, Channel: name, Producer: producer}
		}
	}
	return nil
}

func mayPublish(producer string, publishers []string) bool {
	if producer == "" {
		return false
	}
	for _, p := range publishers {
		if p == producer {
			return true
		}
	}
	return false
}
