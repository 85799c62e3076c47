package envelope

import (
	"strconv"
)

// Field bits, to find duplicate keys.
const (
	fChannel = 1 << iota
	fChannels
	fMessage
	fData
	fEventClass
	fBucket
	fSite
	fID
	fV
)

// maxIDLen is the longest producer id.
const maxIDLen = 128

// maxFieldInError is how much of an unknown key an Error keeps.
const maxFieldInError = 64

// Decode decodes and validates one version 1 publish envelope.
//
// Checks come in this order: the body size (CodeTooLarge); then the JSON
// syntax of the whole body, which wins over every other error
// (CodeInvalidJSON); then the first envelope error in document order
// (CodeInvalidEnvelope or CodeTooLarge); then the rules that span fields
// (channel or channels, message or data). Every error is an *Error.
//
// The returned Envelope's Data aliases b: copy it (or b) if b is reused.
func Decode(b []byte, lim Limits) (Envelope, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxBytes {
		return Envelope{}, &Error{code: CodeTooLarge, Reason: "the envelope is " + strconv.Itoa(len(b)) +
			" bytes, more than the limit of " + strconv.Itoa(lim.MaxBytes)}
	}
	d := decoder{scanner: scanner{b: b}, lim: lim}
	env, err := d.decode()
	if err != nil {
		return Envelope{}, err
	}
	return env, nil
}

type decoder struct {
	scanner
	lim  Limits
	seen uint
	fail *Error // first envelope (non-syntax) error
}

// reject records an envelope error unless one is already recorded.
func (d *decoder) reject(code, field, reason string) {
	if d.fail == nil {
		d.fail = &Error{code: code, Field: field, Reason: reason}
	}
}

func (d *decoder) decode() (Envelope, *Error) {
	var env Envelope
	d.skipWS()
	if d.peek() != '{' {
		if _, err := d.skipValue(0); err != nil {
			return env, err
		}
		if err := d.end(); err != nil {
			return env, err
		}
		return env, &Error{code: CodeInvalidEnvelope, Reason: "the envelope must be a JSON object"}
	}
	d.pos++
	d.skipWS()
	if d.peek() == '}' {
		d.pos++
	} else {
		for {
			if err := d.member(&env); err != nil {
				return env, err
			}
			d.skipWS()
			c := d.peek()
			if c == '}' {
				d.pos++
				break
			}
			if c != ',' {
				return env, d.syntaxError()
			}
			d.pos++
			d.skipWS()
		}
	}
	if err := d.end(); err != nil {
		return env, err
	}
	if d.fail != nil {
		return env, d.fail
	}
	switch {
	case d.seen&(fChannel|fChannels) == fChannel|fChannels:
		return env, &Error{code: CodeInvalidEnvelope, Field: "channels", Reason: `"channel" and "channels" are mutually exclusive`}
	case d.seen&(fChannel|fChannels) == 0:
		return env, &Error{code: CodeInvalidEnvelope, Field: "channel", Reason: `one of "channel" or "channels" is required`}
	case d.seen&(fMessage|fData) == 0:
		return env, &Error{code: CodeInvalidEnvelope, Field: "message", Reason: `at least one of "message" or "data" is required`}
	}
	return env, nil
}

// end checks that only whitespace follows the top-level value.
func (d *decoder) end() *Error {
	d.skipWS()
	if d.pos != len(d.b) {
		return &Error{code: CodeInvalidJSON, Reason: "unexpected data after the envelope at offset " + strconv.Itoa(d.pos)}
	}
	return nil
}

// member reads one "key": value pair of the envelope object.
func (d *decoder) member(env *Envelope) *Error {
	raw, esc, err := d.readString()
	if err != nil {
		return err
	}
	d.skipWS()
	if err := d.expect(':'); err != nil {
		return err
	}
	d.skipWS()
	var key string
	if esc {
		key = unquote(raw, esc)
	}
	var bit uint
	var name string
	// switch string(raw) does not allocate.
	switch {
	case !esc:
		switch string(raw) {
		case "channel":
			bit, name = fChannel, "channel"
		case "channels":
			bit, name = fChannels, "channels"
		case "message":
			bit, name = fMessage, "message"
		case "data":
			bit, name = fData, "data"
		case "event_class":
			bit, name = fEventClass, "event_class"
		case "bucket":
			bit, name = fBucket, "bucket"
		case "site":
			bit, name = fSite, "site"
		case "id":
			bit, name = fID, "id"
		case "v":
			bit, name = fV, "v"
		default:
			key = string(raw)
		}
	default:
		bit, name = fieldBit(key)
	}
	if bit == 0 {
		reason := "unknown field"
		if key == "" {
			reason = `unknown field "" (an empty key)`
		}
		d.reject(CodeInvalidEnvelope, truncate(key, maxFieldInError), reason)
		_, err := d.skipValue(1)
		return err
	}
	if d.seen&bit != 0 {
		d.reject(CodeInvalidEnvelope, name, "duplicate field")
		_, err := d.skipValue(1)
		return err
	}
	d.seen |= bit
	if d.peek() == 'n' {
		if err := d.readLiteral("null"); err != nil {
			return err
		}
		d.reject(CodeInvalidEnvelope, name, "must not be null")
		return nil
	}
	switch bit {
	case fChannels:
		return d.channels(env)
	case fData:
		return d.data(env)
	case fV:
		return d.version()
	}

	// The other fields are strings.
	if d.peek() != '"' {
		d.reject(CodeInvalidEnvelope, name, "must be a string")
		_, err := d.skipValue(1)
		return err
	}
	raw, esc, err = d.readString()
	if err != nil {
		return err
	}
	if d.fail != nil {
		return nil // the envelope is rejected anyway: only check syntax
	}
	s := unquote(raw, esc)
	switch bit {
	case fChannel:
		if d.checkChannel("channel", s, -1) {
			env.Channel = s
		}
	case fMessage:
		env.Message, env.HasMessage = s, true
	case fEventClass:
		if !plainName(s) {
			d.reject(CodeInvalidEnvelope, name, "must be 1-64 characters of [A-Za-z0-9_.:-]")
		}
		env.EventClass = s
	case fBucket:
		env.Bucket = s
	case fSite:
		env.Site = s
	case fID:
		if !ValidID(s) {
			d.reject(CodeInvalidEnvelope, name, "must be 1-128 printable ASCII characters (0x21-0x7E)")
		}
		env.ID = s
	}
	return nil
}

// fieldBit returns the bit and name of a known field, 0 and "" for others.
func fieldBit(key string) (uint, string) {
	switch key {
	case "channel":
		return fChannel, key
	case "channels":
		return fChannels, key
	case "message":
		return fMessage, key
	case "data":
		return fData, key
	case "event_class":
		return fEventClass, key
	case "bucket":
		return fBucket, key
	case "site":
		return fSite, key
	case "id":
		return fID, key
	case "v":
		return fV, key
	}
	return 0, ""
}

// checkChannel checks one channel name; index is its place in "channels",
// -1 for "channel". It reports whether the name is valid.
func (d *decoder) checkChannel(field, s string, index int) bool {
	where := ""
	if index >= 0 {
		where = "entry " + strconv.Itoa(index) + ": "
	}
	switch {
	case s == "":
		d.reject(CodeInvalidEnvelope, field, where+"must not be empty")
		return false
	case len(s) > d.lim.MaxChannelLen:
		d.reject(CodeTooLarge, field, where+"the channel name is "+strconv.Itoa(len(s))+
			" bytes, more than the limit of "+strconv.Itoa(d.lim.MaxChannelLen))
		return false
	}
	return true
}

// channels reads the value of "channels".
func (d *decoder) channels(env *Envelope) *Error {
	const name = "channels"
	if d.peek() != '[' {
		d.reject(CodeInvalidEnvelope, name, "must be an array of strings")
		_, err := d.skipValue(1)
		return err
	}
	d.pos++
	d.skipWS()
	var list []string
	n := 0
	if d.peek() == ']' {
		d.pos++
	} else {
		for {
			if n == d.lim.MaxChannels {
				d.reject(CodeTooLarge, name, "more than "+strconv.Itoa(d.lim.MaxChannels)+" channels")
			}
			if d.peek() == '"' {
				raw, esc, err := d.readString()
				if err != nil {
					return err
				}
				if d.fail == nil {
					s := unquote(raw, esc)
					if d.checkChannel(name, s, n) {
						if list == nil {
							list = make([]string, 0, 8)
						}
						list = append(list, s)
					}
				}
			} else {
				d.reject(CodeInvalidEnvelope, name, "entry "+strconv.Itoa(n)+": must be a string")
				if _, err := d.skipValue(2); err != nil {
					return err
				}
			}
			n++
			d.skipWS()
			c := d.peek()
			if c == ']' {
				d.pos++
				break
			}
			if c != ',' {
				return d.syntaxError()
			}
			d.pos++
			d.skipWS()
		}
	}
	if n == 0 {
		d.reject(CodeInvalidEnvelope, name, "must not be empty")
	}
	if d.fail != nil {
		return nil
	}
	if i, j, dup := duplicate(list); dup {
		d.reject(CodeInvalidEnvelope, name, "entries "+strconv.Itoa(i)+" and "+strconv.Itoa(j)+
			" are the same channel")
		return nil
	}
	env.Channels = list
	return nil
}

// duplicate finds two equal entries of list.
func duplicate(list []string) (i, j int, found bool) {
	if len(list) <= 16 {
		for j := 1; j < len(list); j++ {
			for i := 0; i < j; i++ {
				if list[i] == list[j] {
					return i, j, true
				}
			}
		}
		return 0, 0, false
	}
	first := make(map[string]int, len(list))
	for j, s := range list {
		if i, ok := first[s]; ok {
			return i, j, true
		}
		first[s] = j
	}
	return 0, 0, false
}

// data reads the value of "data".
func (d *decoder) data(env *Envelope) *Error {
	const name = "data"
	if d.peek() != '{' {
		d.reject(CodeInvalidEnvelope, name, "must be a JSON object")
		_, err := d.skipValue(1)
		return err
	}
	start := d.pos
	deepest, err := d.skipValue(1)
	if err != nil {
		return err
	}
	if depth := deepest - 1; depth > d.lim.MaxDepth {
		d.reject(CodeTooLarge, name, "nested "+strconv.Itoa(depth)+" levels deep, more than the limit of "+
			strconv.Itoa(d.lim.MaxDepth))
		return nil
	}
	env.Data = d.b[start:d.pos:d.pos]
	return nil
}

// version reads the value of "v", which must be the number 1.
func (d *decoder) version() *Error {
	c := d.peek()
	if c != '-' && (c < '0' || c > '9') {
		d.reject(CodeInvalidEnvelope, "v", "must be the number 1")
		_, err := d.skipValue(1)
		return err
	}
	num, err := d.readNumber()
	if err != nil {
		return err
	}
	if string(num) != "1" {
		if f, perr := strconv.ParseFloat(string(num), 64); perr != nil || f != 1 {
			d.reject(CodeInvalidEnvelope, "v", "must be the number 1")
		}
	}
	return nil
}

// ValidID reports whether s is a valid envelope id: 1-128 printable ASCII
// characters (0x21-0x7E). The bridge applies the same rule to ids it finds
// elsewhere (a dead letter's replayed id).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
