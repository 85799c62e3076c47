package bridge

import (
	"encoding/json"
	"testing"

	"github.com/instant-go/instant/internal/centrifugo"
)

// TestAppendOKReceiptMatchesEncodingJSON: the hand-written receipt is byte
// for byte what json.Marshal writes, and refuses what it would escape.
func TestAppendOKReceiptMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		res   centrifugo.Result
		plain bool
	}{
		{"offset and epoch", "01KB3X6V0Q8W3ZC2K7B2J4Y9M5", centrifugo.Result{Channel: "c", Offset: 12, Epoch: "Xvbw"}, true},
		{"no history", "order-42", centrifugo.Result{Channel: "c"}, true},
		{"no id", "", centrifugo.Result{Offset: 1 << 63, Epoch: "e"}, true},
		{"printable id", "a b~!#$%'()*+,-./:;=?@[]^_`{|}", centrifugo.Result{Offset: 7}, true},
		{"html in id", "a<b>&c", centrifugo.Result{Offset: 1}, false},
		{"quote in id", `a"b`, centrifugo.Result{}, false},
		{"backslash in epoch", "x", centrifugo.Result{Epoch: `e\1`}, false},
		{"control in epoch", "x", centrifugo.Result{Epoch: "e\x01"}, false},
		{"non-ASCII epoch", "x", centrifugo.Result{Epoch: "é"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := appendOKReceipt(nil, tc.id, tc.res)
			if ok != tc.plain {
				t.Fatalf("ok %v, want %v", ok, tc.plain)
			}
			if !ok {
				return
			}
			want, err := json.Marshal(okReceipt(tc.id, []centrifugo.Result{tc.res}))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func BenchmarkOKReceipt(b *testing.B) {
	res := []centrifugo.Result{{Channel: "c", Offset: 123456, Epoch: "Xvbw"}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf [160]byte
		for b.Loop() {
			_, _ = appendOKReceipt(buf[:0], "01KB3X6V0Q8W3ZC2K7B2J4Y9M5", res[0])
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(okReceipt("01KB3X6V0Q8W3ZC2K7B2J4Y9M5", res))
		}
	})
}
