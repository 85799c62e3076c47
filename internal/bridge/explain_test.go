package bridge_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/testenv"
)

// TestExplainAgreesWithBridge: for a table of envelopes and subjects, in
// each payload mode, what bridge.Explain says is what the running bridge
// does: the same reason code and message in the receipt of a rejected
// envelope, and for a forwarded one the same payload bytes (the receive time
// aside, in object mode) reaching a websocket subscriber of each channel.
func TestExplainAgreesWithBridge(t *testing.T) {
	for _, mode := range []string{"object", "django"} {
		t.Run(mode, func(t *testing.T) {
			s := startStack(t, func(c *bridge.Config) { c.MaxEnvelopeBytes, c.PayloadMode = 2048, mode })
			sub := s.subscriber("public", "$users", "$billing")
			for _, tc := range explainCases {
				t.Run(tc.name, func(t *testing.T) { checkExplain(t, s, sub, tc) })
			}
		})
	}
}

// explainCases are the envelopes TestExplainAgreesWithBridge sends.
var explainCases = []struct{ name, subject, body string }{
	{"publish", "instant.publish", `{"channel":"$users","message":"hi","id":"x-1","event_class":"a.b"}`},
	{"broadcast", "instant.publish.billing", `{"channels":["$billing","public"],"data":{"k":[1,2]},"id":"x-2"}`},
	{"site override", "instant.publish", `{"channel":"public","message":"<&>","site":"other","id":"x-3"}`},
	{"unknown channel", "instant.publish", `{"channel":"$nope","message":"hi"}`},
	{"inactive channel", "instant.publish", `{"channel":"$old","message":"hi"}`},
	{"publisher denied", "instant.publish.shop", `{"channel":"$billing","message":"hi"}`},
	{"one channel of two denied", "instant.publish", `{"channels":["public","$billing"],"message":"hi"}`},
	{"unknown field", "instant.publish", `{"chanel":"public","message":"hi"}`},
	{"broken json", "instant.publish", `{"channel":`},
	{"too large", "instant.publish", `{"channel":"public","message":"` + strings.Repeat("x", 3000) + `"}`},
	{"wrong subject", "instant.publishXbilling", `{"channel":"public","message":"hi"}`},
}

// checkExplain compares Explain's answer for one case with what the
// running bridge of s does with the envelope.
func checkExplain(t *testing.T, s *stack, sub *testenv.Subscriber, tc struct{ name, subject, body string }) {
	e, err := bridge.Explain(s.cfg, tc.subject, []byte(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	if tc.subject == "instant.publishXbilling" {
		// The bridge does not subscribe there; a stream wider than its
		// subject would hand it over, and it is refused the same way.
		if e.Forwarded || e.Code != "invalid_envelope" {
			t.Errorf("explain %+v, want invalid_envelope", e)
		}
		return
	}
	r := s.request(tc.subject, tc.body)
	if r.OK != e.Forwarded {
		t.Fatalf("receipt %+v, explain forwarded=%v (%s)", r, e.Forwarded, e.Message)
	}
	if !r.OK {
		if r.Error.Code != e.Code || r.Error.Message != e.Message {
			t.Errorf("receipt %s %q, explain %s %q", r.Error.Code, r.Error.Message, e.Code, e.Message)
		}
		return
	}
	want := map[string][]byte{} // channel → payload explain gave it
	for _, c := range e.Commands {
		for _, ch := range c.Channels {
			want[ch] = stable(t, s.cfg.PayloadMode, c.Data)
		}
	}
	for range len(want) {
		p := sub.Next(5 * time.Second)
		if got, ok := want[p.Channel]; !ok || !bytes.Equal(stable(t, s.cfg.PayloadMode, p.Data), got) {
			t.Errorf("%s received\n %s\nexplain said\n %s", p.Channel, p.Data, got)
		}
		delete(want, p.Channel)
	}
}

// stable is a payload with what differs between two runs zeroed: an
// object payload's receive time (a django payload has none).
func stable(t *testing.T, mode string, data []byte) []byte {
	t.Helper()
	if mode == "django" {
		if !bytes.HasPrefix(data, []byte(`"`)) {
			t.Errorf("django payload %s is not a JSON string", data)
		}
		return data
	}
	return withoutTS(t, data)
}

var tsField = regexp.MustCompile(`,"ts":[0-9]+}$`)

// withoutTS is an object payload's bytes with its receive time zeroed.
func withoutTS(t *testing.T, data []byte) []byte {
	t.Helper()
	if !tsField.Match(data) {
		t.Errorf("payload %s does not end with ts", data)
	}
	return tsField.ReplaceAll(data, []byte(`,"ts":0}`))
}
