package bridge

import (
	"encoding/json"
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

// publishReceipt sends r to subject.
func (b *Bridge) publishReceipt(subject string, r *receipt) {
	data, err := json.Marshal(r)
	if err == nil {
		err = b.nc.Publish(subject, data)
	}
	if err != nil {
		b.m.receiptErrors.Inc()
		b.log.Error("publish receipt", zap.String(logging.FieldID, r.ID), zap.Error(err))
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
