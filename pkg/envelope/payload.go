package envelope

import (
	"errors"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrUnknownMode is returned by ParseMode for a name it does not know.
var ErrUnknownMode = errors.New("unknown payload mode")

// Mode is the format of the publication data sent to Centrifugo.
type Mode int

// Payload modes.
const (
	// ModeObject publishes a JSON object with the bridge's metadata.
	ModeObject Mode = iota
	// ModeDjango publishes django-instant's payload as a JSON string.
	ModeDjango
)

// ParseMode parses "object" or "django".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "object":
		return ModeObject, nil
	case "django":
		return ModeDjango, nil
	}
	return 0, &modeError{name: s}
}

type modeError struct{ name string }

func (e *modeError) Error() string {
	return "payload mode " + strconv.Quote(e.name) + `: want "object" or "django"`
}

func (e *modeError) Unwrap() error { return ErrUnknownMode }

// String returns "object" or "django" ("Mode(n)" for other values).
func (m Mode) String() string {
	switch m {
	case ModeObject:
		return "object"
	case ModeDjango:
		return "django"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Meta is what the bridge stamps on every payload, its defaults already
// applied: AppendPayload writes these, not the envelope's ID and Site.
type Meta struct {
	ID         string    // payload id (object mode); omitted when ""
	Site       string    // site name; omitted when ""
	ReceivedAt time.Time // when the bridge received the envelope; "ts" is omitted when zero
}

// AppendPayload appends the Centrifugo publication data for env to dst.
//
// channel is the channel this copy is published to; "" in object mode means a
// broadcast copy: then the payload has "channels" (env.Targets()) instead of
// "channel". django mode requires channel != "" (when it is "", env.Channel
// is written).
//
// The site and id written are meta's (the id in object mode only).
//
// env.Data is embedded verbatim in object mode and must be a valid JSON
// object, as Decode returns it. Strings are escaped like encoding/json does
// (including <, > and &, U+2028 and U+2029; invalid UTF-8 becomes U+FFFD),
// so the output is valid JSON for any strings.
func AppendPayload(dst []byte, mode Mode, env *Envelope, channel string, meta Meta) []byte {
	dst = slices.Grow(dst, payloadSizeHint(env, channel, meta))
	site, id := meta.Site, meta.ID
	if mode == ModeDjango {
		return appendDjango(dst, env, channel, site)
	}
	dst = append(dst, '{')
	if id != "" {
		dst = append(dst, `"id":`...)
		dst = appendString(dst, id, 1)
		dst = append(dst, ',')
	}
	if channel != "" {
		dst = append(dst, `"channel":`...)
		dst = appendString(dst, channel, 1)
	} else {
		dst = append(dst, `"channels":[`...)
		if env.Channels != nil {
			for i, c := range env.Channels {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, c, 1)
			}
		} else if env.Channel != "" {
			dst = appendString(dst, env.Channel, 1)
		}
		dst = append(dst, ']')
	}
	if site != "" {
		dst = append(dst, `,"site":`...)
		dst = appendString(dst, site, 1)
	}
	if env.HasMessage {
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, env.Message, 1)
	}
	if env.Data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, env.Data...)
	}
	if env.EventClass != "" {
		dst = append(dst, `,"event_class":`...)
		dst = appendString(dst, env.EventClass, 1)
	}
	if env.Bucket != "" {
		dst = append(dst, `,"bucket":`...)
		dst = appendString(dst, env.Bucket, 1)
	}
	if !meta.ReceivedAt.IsZero() {
		dst = append(dst, `,"ts":`...)
		dst = strconv.AppendInt(dst, meta.ReceivedAt.UnixMilli(), 10)
	}
	return append(dst, '}')
}

// payloadSizeHint is the size of the payload when no string needs escaping
// (exact in object mode, a little over in django mode): one allocation for
// the usual envelope, where growing from nothing took several.
func payloadSizeHint(env *Envelope, channel string, meta Meta) int {
	n := 128 + len(meta.ID) + len(meta.Site) + len(channel) + len(env.Message) + len(env.Data) + len(env.EventClass) + len(env.Bucket)
	if channel == "" {
		n += len(env.Channel)
		for _, c := range env.Channels {
			n += len(c) + 3
		}
	}
	return n
}

// appendDjango appends django-instant's payload, JSON-encoded twice: a JSON
// string whose content is the JSON object. It is written in one pass: every
// piece of the inner object is escaped once more as string content.
func appendDjango(dst []byte, env *Envelope, channel, site string) []byte {
	if channel == "" {
		channel = env.Channel
	}
	dst = append(dst, `"{\"channel\":`...)
	dst = appendString(dst, channel, 2)
	dst = append(dst, `,\"site\":`...)
	dst = appendString(dst, site, 2)
	if env.HasMessage {
		dst = append(dst, `,\"message\":`...)
		dst = appendString(dst, env.Message, 2)
	}
	if env.Data != nil {
		dst = append(dst, `,\"data\":`...)
		dst = appendContent(dst, []byte(env.Data), 1)
	}
	if env.EventClass != "" {
		dst = append(dst, `,\"event_class\":`...)
		dst = appendString(dst, env.EventClass, 2)
	}
	if env.Bucket != "" {
		dst = append(dst, `,\"bucket\":`...)
		dst = appendString(dst, env.Bucket, 2)
	}
	return append(dst, `}"`...)
}

// appendString appends s as a JSON string literal, escaped passes times:
// passes 1 is the literal itself, passes 2 the literal as the content of
// another JSON string (the django mode).
func appendString[T string | []byte](dst []byte, s T, passes int) []byte {
	if passes == 1 {
		dst = append(dst, '"')
		dst = appendContent(dst, s, 1)
		return append(dst, '"')
	}
	dst = append(dst, '\\', '"')
	dst = appendContent(dst, s, 2)
	return append(dst, '\\', '"')
}

const hexDigits = "0123456789abcdef"

// safe reports whether the ASCII byte c needs no escaping in a JSON string.
func safe(c byte) bool {
	return c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendContent appends s as the content of a JSON string (without quotes),
// escaped passes (1 or 2) times.
func appendContent[T string | []byte](dst []byte, s T, passes int) []byte {
	start := 0
	var seq [6]byte
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe(c) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			var n int
			switch c {
			case '"', '\\':
				seq[0], seq[1], n = '\\', c, 2
			case '\n':
				seq[0], seq[1], n = '\\', 'n', 2
			case '\r':
				seq[0], seq[1], n = '\\', 'r', 2
			case '\t':
				seq[0], seq[1], n = '\\', 't', 2
			case '\b':
				seq[0], seq[1], n = '\\', 'b', 2
			case '\f':
				seq[0], seq[1], n = '\\', 'f', 2
			default: // other control characters, <, >, &
				seq = [6]byte{'\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF]}
				n = 6
			}
			dst = appendSeq(dst, seq[:n], passes)
			i++
			start = i
			continue
		}
		// Converting at most 4 bytes to a string does not allocate.
		r, size := utf8.DecodeRuneInString(string(s[i : i+min(len(s)-i, utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = appendSeq(dst, []byte(`\ufffd`), passes)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			seq = [6]byte{'\\', 'u', '2', '0', '2', hexDigits[r&0xF]}
			dst = appendSeq(dst, seq[:], passes)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// appendSeq appends an escape sequence (ASCII: a backslash, letters, digits
// or a quote), escaped once more when passes is 2.
func appendSeq(dst, seq []byte, passes int) []byte {
	if passes == 1 {
		return append(dst, seq...)
	}
	for _, c := range seq {
		if c == '\\' || c == '"' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}
