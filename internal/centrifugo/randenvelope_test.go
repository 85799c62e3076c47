package centrifugo

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/instant-go/instant/pkg/envelope"
)

// Random envelopes for the differential tests of the batch body: what the
// bridge turns into commands, with every kind of text that needs escaping.

// nameParts make channel names and ids: ASCII, JSON escapes, control
// characters, multi-byte runes, U+2028 and invalid UTF-8.
var nameParts = []string{"a", "chat:room", "$users", "\"", "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "日本", "\u2028", "\u2029", "\xff", "\xe2\x80", "<>&", "😀", " "}

// textParts make messages and the strings inside data: valid UTF-8 only,
// as envelope.Decode returns them.
var textParts = []string{"hi", "<", ">", "&", "<script>", "\"", "\\", "/", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "日本語", "\u2028", "\u2029", "😀", "\ufffd", " "}

func randFrom(r *rand.Rand, parts []string, n int) string {
	var b strings.Builder
	for range r.IntN(n + 1) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

// randString is a random name: "" sometimes, invalid UTF-8 sometimes.
func randString(r *rand.Rand) string { return randFrom(r, nameParts, 7) }

// randSpace is JSON whitespace, usually none.
func randSpace(r *rand.Rand, b []byte) []byte {
	if r.IntN(4) == 0 {
		b = append(b, " \t\n\r"[r.IntN(4)])
	}
	return b
}

// appendRandString writes s as a JSON string literal, each rune written
// raw or escaped at random (\uXXXX, surrogate pairs, short escapes).
func appendRandString(r *rand.Rand, b []byte, s string) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', byte(c))
		case c == '\n' && r.IntN(2) == 0:
			b = append(b, `\n`...)
		case c < 0x20 || r.IntN(4) == 0:
			if c > 0xffff {
				hi, lo := utf16.EncodeRune(c)
				b = appendU(appendU(b, hi), lo)
			} else {
				b = appendU(b, c)
			}
		default:
			b = utf8.AppendRune(b, c)
		}
	}
	return append(b, '"')
}

func appendU(b []byte, c rune) []byte {
	h := strconv.FormatInt(int64(c), 16)
	return append(append(b, `\u`...), strings.Repeat("0", 4-len(h))+h...)
}

var numbers = []string{"0", "-1", "42", "12345678901234567890", "-9223372036854775809", "1.5e3", "-0.25E-7", "3.14159", "1e400", "0.000001"}

// appendRandValue writes a random JSON value, nested at most depth more levels.
func appendRandValue(r *rand.Rand, b []byte, depth int) []byte {
	b = randSpace(r, b)
	k := r.IntN(7)
	if depth == 0 {
		k = 2 + r.IntN(5)
	}
	switch k {
	case 0:
		b = appendRandObject(r, b, depth-1)
	case 1:
		b = append(b, '[')
		for i := range r.IntN(4) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRandValue(r, b, depth-1)
		}
		b = append(randSpace(r, b), ']')
	case 2, 3:
		b = appendRandString(r, b, randFrom(r, textParts, 6))
	case 4:
		b = append(b, numbers[r.IntN(len(numbers))]...)
	case 5:
		b = strconv.AppendInt(b, r.Int64()-r.Int64(), 10)
	default:
		b = append(b, []string{"true", "false", "null"}[r.IntN(3)]...)
	}
	return randSpace(r, b)
}

// appendRandObject writes a random JSON object, keys escaped at random
// (sometimes repeated: the last one wins, for every decoder).
func appendRandObject(r *rand.Rand, b []byte, depth int) []byte {
	b = append(randSpace(r, b), '{')
	for i := range r.IntN(5) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRandString(r, randSpace(r, b), randFrom(r, textParts, 3))
		b = append(randSpace(r, b), ':')
		b = appendRandValue(r, b, depth)
	}
	return append(randSpace(r, b), '}')
}

// decodedData is data as envelope.Decode returns it (a JSON object, the
// bytes as sent), or ok false when Decode refuses it.
func decodedData(data []byte) ([]byte, bool) {
	body := append(append([]byte(`{"channel":"c","data":`), data...), '}')
	env, err := envelope.Decode(body, envelope.DefaultLimits())
	if err != nil || env.Data == nil {
		return nil, false
	}
	return env.Data, true
}

// randEnvelope is a random envelope: one channel or several (distinct,
// non-empty), a message sometimes, a data object sometimes, optional
// fields with text that needs escaping.
func randEnvelope(tb testing.TB, r *rand.Rand) envelope.Envelope {
	tb.Helper()
	var env envelope.Envelope
	if n := r.IntN(4); n == 0 {
		env.Channel = "c" + randString(r)
	} else {
		for i := range n + 1 {
			env.Channels = append(env.Channels, strconv.Itoa(i)+randString(r))
		}
	}
	if r.IntN(4) != 0 {
		env.HasMessage, env.Message = true, randFrom(r, textParts, 8)
	}
	if r.IntN(4) != 0 {
		data, ok := decodedData(appendRandObject(r, nil, 3))
		if !ok {
			tb.Fatalf("random data %q: envelope.Decode refuses it", data)
		}
		env.Data = data
	}
	if r.IntN(3) == 0 {
		env.EventClass = randFrom(r, textParts, 3)
	}
	if r.IntN(3) == 0 {
		env.Bucket = randFrom(r, textParts, 3)
	}
	if r.IntN(3) == 0 {
		env.Site = randFrom(r, textParts, 3)
	}
	return env
}

// envelopeCommands are the commands the bridge sends for env in mode (as
// its handler builds them): one publish for one channel; for several, a
// broadcast in object mode or a publish per channel in django mode; the id
// is every command's idempotency key.
func envelopeCommands(env *envelope.Envelope, mode envelope.Mode, id string, recv time.Time) []Command {
	meta := envelope.Meta{ID: id, Site: env.Site, ReceivedAt: recv}
	if meta.Site == "" {
		meta.Site = "site"
	}
	if env.Channel != "" {
		return []Command{{Channel: env.Channel, IdempotencyKey: id, Data: envelope.AppendPayload(nil, mode, env, env.Channel, meta)}}
	}
	if mode == envelope.ModeObject {
		return []Command{{Channels: env.Channels, IdempotencyKey: id, Data: envelope.AppendPayload(nil, mode, env, "", meta)}}
	}
	var cmds []Command
	for _, ch := range env.Channels {
		cmds = append(cmds, Command{Channel: ch, IdempotencyKey: id, Data: envelope.AppendPayload(nil, mode, env, ch, meta)})
	}
	return cmds
}

// randCommands are the commands of a batch: those of 1 to 4 random
// envelopes in mode, and sometimes a command whose data is any JSON value.
func randCommands(tb testing.TB, r *rand.Rand, mode envelope.Mode) []Command {
	tb.Helper()
	var cmds []Command
	for range 1 + r.IntN(4) {
		env := randEnvelope(tb, r)
		id := randString(r)
		if r.IntN(2) == 0 {
			id = "01J9Z3K4M5N6P7Q8R9S0T1V" + strconv.Itoa(r.IntN(1000))
		}
		recv := time.UnixMilli(r.Int64N(1 << 42))
		if r.IntN(8) == 0 {
			recv = time.Time{}
		}
		cmds = append(cmds, envelopeCommands(&env, mode, id, recv)...)
		if r.IntN(4) == 0 {
			cmds = append(cmds, Command{Channel: randString(r), Data: appendRandValue(r, nil, 2)})
		}
	}
	return cmds
}
