// Package envelope decodes and validates the publish envelope that backends
// send to the Instant bridge, and encodes the publication data the bridge
// sends to Centrifugo. It is pure: no I/O, no logging, no state.
//
// # The envelope (version 1)
//
// A JSON object with these fields; any other key, a duplicate key or a null
// value is invalid:
//
//	channel      string       the one target channel, non-empty
//	channels     [string]     several target channels: non-empty, distinct, non-empty names
//	                          (exactly one of channel and channels is required)
//	message      string       may be "" (then it still counts as given)
//	data         object       any JSON object (at least one of message and data is required)
//	event_class  string       optional, 1-64 characters of [A-Za-z0-9_.:-]
//	bucket       string       optional
//	site         string       optional, overrides the configured site name ("" does not)
//	id           string       optional producer id, 1-128 printable ASCII characters (0x21-0x7E)
//	v            number       optional, must be 1
//
// Field names are case-sensitive. Strings are unescaped as encoding/json
// does (an unpaired surrogate escape such as \ud800 becomes U+FFFD). data is
// kept as the raw bytes received, not re-encoded: its duplicate keys,
// whitespace and number spellings reach the subscribers unchanged.
//
// # Limits
//
// Limits bound what Decode accepts; a zero field means the default:
//
//	MaxBytes       65536  size of the body in bytes
//	MaxChannels    100    entries of channels
//	MaxChannelLen  255    bytes of one channel name, after unescaping
//	MaxDepth       32     nesting of data; {} is 1, {"a":[]} is 2 (at most 9999)
//
// # Errors
//
// Every Decode error is an *Error with a stable Code, the Field at fault
// (empty when none) and a Reason; errors.Is matches it against ErrInvalidJSON,
// ErrInvalidEnvelope and ErrTooLarge.
//
//	code              when
//	too_large         the body exceeds MaxBytes (checked first, before parsing);
//	                  channels has more than MaxChannels entries (field "channels"), a channel
//	                  name exceeds MaxChannelLen (field "channel" or "channels"), data is nested
//	                  deeper than MaxDepth (field "data")
//	invalid_json      the body is not exactly one JSON value (plus whitespace) as encoding/json
//	                  accepts it, or a string in it is not valid UTF-8 (encoding/json would
//	                  accept that and replace the bytes with U+FFFD; Decode rejects it)
//	invalid_envelope  valid JSON that breaks a rule above: not an object (field ""), an
//	                  unknown or duplicate field, null, a wrong type, a bad value, a missing
//	                  channel/channels (field "channel") or message/data (field "message"),
//	                  both channel and channels (field "channels")
//
// invalid_json wins over every other error but the body size; between the
// others the first in document order wins, and the rules spanning fields
// (channel or channels, message or data) come last.
//
// # Payloads
//
// AppendPayload writes the publication data for one Centrifugo publish, in
// one of two modes.
//
// ModeObject ("object") writes a JSON object, keys in this order, empty
// ones omitted:
//
//	{"id":"…","channel":"…","site":"…","message":"…","data":{…},"event_class":"…","bucket":"…","ts":1795791845678}
//
// A broadcast copy (channel "") has "channels":[…] in place of "channel".
// id is Meta.ID and site is Meta.Site (the caller applies the defaults: the
// bridge gives the envelope's id and site, else its own); message is present whenever the envelope had one, even "";
// data is the envelope's raw bytes; ts is Meta.ReceivedAt as integer Unix
// milliseconds (UTC), omitted when ReceivedAt is the zero time.
//
// ModeDjango ("django") writes django-instant's payload: a JSON string
// whose content is the object
//
//	{"channel":"…","site":"…","message":"…","data":{…},"event_class":"…","bucket":"…"}
//
// with channel and site always, message when given, data when given,
// event_class and bucket when not empty; no id and no ts. django-instant's
// browser client JSON.parses every publication's data.
//
// Strings are escaped as encoding/json escapes them: ", \ and control
// characters, and also <, >, &, U+2028 and U+2029; invalid UTF-8 becomes
// U+FFFD. The output is valid JSON for any Go strings.
package envelope
