package bridge

import (
	"encoding/json"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/logging"
)

// receipt is the answer to a producer that asked for one: its wire format
// is the bridge's own, documented in the README.
type receipt struct {
	OK      bool            `json:"ok"`
	ID      string          `json:"id,omitempty"`
	Offset  uint64          `json:"offset,omitempty"`
	Epoch   string          `json:"epoch,omitempty"`
	Results []channelResult `json:"results,omitempty"`
	Error   *receiptError   `json:"error,omitempty"`
}

// channelResult is the stream position of a message in one channel.
type channelResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
}

type receiptError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// okReceipt is the receipt of a forwarded envelope: its stream position, or
// one per channel when it went to several.
func okReceipt(id string, results []centrifugo.Result) *receipt {
	r := &receipt{OK: true, ID: id}
	if len(results) == 1 {
		r.Offset, r.Epoch = results[0].Offset, results[0].Epoch
		return r
	}
	r.Results = make([]channelResult, len(results))
	for i, res := range results {
		r.Results[i] = channelResult{Channel: res.Channel, Offset: res.Offset, Epoch: res.Epoch}
	}
	return r
}

// failReceipt is the receipt of an envelope that was not forwarded.
func failReceipt(id, code string, err error) *receipt {
	return &receipt{OK: false, ID: id, Error: &receiptError{Code: code, Message: err.Error()}}
}

// publishOK sends the receipt of a forwarded envelope to subject.
func (b *Bridge) publishOK(subject, id string, results []centrifugo.Result) {
	if len(results) == 1 {
		var buf [160]byte
		if data, ok := appendOKReceipt(buf[:0], id, results[0]); ok {
			b.sendReceipt(subject, id, data)
			return
		}
	}
	b.publishReceipt(subject, okReceipt(id, results))
}

// appendOKReceipt appends the ok receipt of an envelope to one channel,
// byte for byte what encoding/json writes for it, when id and epoch need no
// escaping (ids are printable ASCII, epochs are Centrifugo's letters):
// the receipt of every forwarded envelope, written without reflection.
func appendOKReceipt(dst []byte, id string, r centrifugo.Result) ([]byte, bool) {
	if !plainJSON(id) || !plainJSON(r.Epoch) {
		return dst, false
	}
	dst = append(dst, `{"ok":true`...)
	if id != "" {
		dst = append(append(append(dst, `,"id":"`...), id...), '"')
	}
	if r.Offset != 0 {
		dst = strconv.AppendUint(append(dst, `,"offset":`...), r.Offset, 10)
	}
	if r.Epoch != "" {
		dst = append(append(append(dst, `,"epoch":"`...), r.Epoch...), '"')
	}
	return append(dst, '}'), true
}

// plainJSON reports whether encoding/json writes s as is between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// publishReceipt sends r to subject.
func (b *Bridge) publishReceipt(subject string, r *receipt) {
	data, err := json.Marshal(r)
	if err != nil {
		b.m.receiptErrors.Inc()
		b.log.Error("encode receipt", zap.String(logging.FieldID, r.ID), zap.Error(err))
		return
	}
	b.sendReceipt(subject, r.ID, data)
}

// sendReceipt publishes an encoded receipt (NATS copies data).
func (b *Bridge) sendReceipt(subject, id string, data []byte) {
	err := b.nc.Publish(subject, data)
	if err != nil {
		b.m.receiptErrors.Inc()
		b.log.Error("publish receipt", zap.String(logging.FieldID, id), zap.Error(err))
	}
}

// receiptSubject is where d's receipt goes: the reply subject the producer
// gave, when it is a literal subject under INSTANT_RECEIPT_PREFIX. Any other
// is ignored (counted and logged), so that a producer cannot make the bridge
// publish elsewhere with the bridge's permissions.
func (b *Bridge) receiptSubject(d delivery) string {
	to := d.replyTo()
	if to == "" {
		return ""
	}
	if !strings.HasPrefix(to, b.cfg.ReceiptPrefix) || strings.ContainsAny(to, "*> \t\r\n") {
		b.m.receiptsRefused.Inc()
		b.receiptLog.Do(func() {
			b.log.Warn("not sending a receipt to a reply subject outside INSTANT_RECEIPT_PREFIX (logging is rate-limited; see instant_bridge_receipts_refused_total)",
				zap.String("reply_to", headerSafe(to)), zap.String("prefix", b.cfg.ReceiptPrefix))
		})
		return ""
	}
	return to
}

// headerSafe keeps a logged value on one line and short.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 256 {
		s = s[:253] + "..."
	}
	return s
}
