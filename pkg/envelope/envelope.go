package envelope

import "encoding/json"

// Default limits, used for the zero (or negative) fields of a Limits.
const (
	DefaultMaxBytes      = 64 << 10
	DefaultMaxChannels   = 100
	DefaultMaxChannelLen = 255
	DefaultMaxDepth      = 32

	// maxNesting is encoding/json's nesting limit for a whole document. The
	// envelope object is one level, so data can be at most maxNesting-1 deep.
	maxNesting = 10000
)

// Limits bound what Decode accepts. A zero (or negative) field means its default.
type Limits struct {
	MaxBytes      int // body size in bytes, default 64 KiB (65536)
	MaxChannels   int // entries of "channels", default 100
	MaxChannelLen int // bytes of one channel name (after unescaping), default 255
	MaxDepth      int // nesting depth of "data" (the object itself is 1), default 32, at most 9999
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:      DefaultMaxBytes,
		MaxChannels:   DefaultMaxChannels,
		MaxChannelLen: DefaultMaxChannelLen,
		MaxDepth:      DefaultMaxDepth,
	}
}

// withDefaults returns lim with zero and negative fields set to their
// defaults, and MaxDepth capped so that no document deeper than
// encoding/json accepts is accepted.
func (lim Limits) withDefaults() Limits {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxChannels <= 0 {
		lim.MaxChannels = DefaultMaxChannels
	}
	if lim.MaxChannelLen <= 0 {
		lim.MaxChannelLen = DefaultMaxChannelLen
	}
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultMaxDepth
	}
	lim.MaxDepth = min(lim.MaxDepth, maxNesting-1)
	return lim
}

// Envelope is a decoded publish envelope.
type Envelope struct {
	Channel    string   // set when the envelope names one channel
	Channels   []string // set when it names several (then Channel is ""); distinct, in the order given
	Message    string
	HasMessage bool            // "message" was given (it may be "")
	Data       json.RawMessage // the raw object bytes as received, aliasing Decode's input; nil when absent
	EventClass string
	Bucket     string
	Site       string // overrides the configured site name when not ""
	ID         string // the producer's id, "" when not given
}

// Targets returns the channels the envelope is for: Channels, or a 1-slice
// of Channel (allocated on each call). The result shares Channels' backing
// array: do not modify it.
func (e *Envelope) Targets() []string {
	if e.Channels != nil {
		return e.Channels
	}
	if e.Channel == "" {
		return nil
	}
	return []string{e.Channel}
}
