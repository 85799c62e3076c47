package envelope

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Envelope
	}{
		{
			name: "typical",
			in:   `{"channel":"$users","message":"hi","event_class":"important","data":{"a":1,"b":[1,2,3]}}`,
			want: Envelope{Channel: "$users", Message: "hi", HasMessage: true, EventClass: "important",
				Data: json.RawMessage(`{"a":1,"b":[1,2,3]}`)},
		},
		{
			name: "all fields",
			in: `{"v":1,"id":"msg-1","channels":["a","b"],"message":"m","data":{},"event_class":"A.b:c-d_9",` +
				`"bucket":"bk","site":"other"}`,
			want: Envelope{Channels: []string{"a", "b"}, Message: "m", HasMessage: true, Data: json.RawMessage(`{}`),
				EventClass: "A.b:c-d_9", Bucket: "bk", Site: "other", ID: "msg-1"},
		},
		{name: "empty message counts", in: `{"channel":"c","message":""}`,
			want: Envelope{Channel: "c", HasMessage: true}},
		{name: "data only", in: `{"channel":"c","data":{"x":null}}`,
			want: Envelope{Channel: "c", Data: json.RawMessage(`{"x":null}`)}},
		{name: "data keeps whitespace", in: "{\"channel\":\"c\",\"data\": { \"x\" : [ 1 , 2 ] } }",
			want: Envelope{Channel: "c", Data: json.RawMessage(`{ "x" : [ 1 , 2 ] }`)}},
		{name: "whitespace around", in: " \t\r\n{ \"channel\" : \"c\" , \"message\" : \"m\" } \n",
			want: Envelope{Channel: "c", Message: "m", HasMessage: true}},
		{name: "escapes decoded", in: `{"channel":"a\/b","message":"\"q\" \\ \n\t\u00e9\ud83d\ude00\ud800 x"}`,
			want: Envelope{Channel: "a/b", Message: "\"q\" \\ \n\t\u00e9\U0001F600\uFFFD x", HasMessage: true}},
		{name: "escaped key", in: `{"\u0063hannel":"c","message":"m"}`,
			want: Envelope{Channel: "c", Message: "m", HasMessage: true}},
		{name: "utf-8 message", in: `{"channel":"c","message":"héllo 世界 😀"}`,
			want: Envelope{Channel: "c", Message: "héllo 世界 😀", HasMessage: true}},
		{name: "single entry channels", in: `{"channels":["c"],"message":"m"}`,
			want: Envelope{Channels: []string{"c"}, Message: "m", HasMessage: true}},
		{name: "v as 1.0", in: `{"v":1.0,"channel":"c","message":"m"}`,
			want: Envelope{Channel: "c", Message: "m", HasMessage: true}},
		{name: "v as 1e0", in: `{"v":1e0,"channel":"c","message":"m"}`,
			want: Envelope{Channel: "c", Message: "m", HasMessage: true}},
		{name: "empty site and bucket", in: `{"channel":"c","message":"m","site":"","bucket":""}`,
			want: Envelope{Channel: "c", Message: "m", HasMessage: true}},
		{name: "event_class 64 chars", in: `{"channel":"c","message":"m","event_class":"` + strings.Repeat("e", 64) + `"}`,
			want: Envelope{Channel: "c", Message: "m", HasMessage: true, EventClass: strings.Repeat("e", 64)}},
		{name: "id 128 chars", in: `{"channel":"c","message":"m","id":"` + strings.Repeat("~", 128) + `"}`,
			want: Envelope{Channel: "c", Message: "m", HasMessage: true, ID: strings.Repeat("~", 128)}},
		{name: "channel 255 bytes", in: `{"channel":"` + strings.Repeat("c", 255) + `","message":"m"}`,
			want: Envelope{Channel: strings.Repeat("c", 255), Message: "m", HasMessage: true}},
		{name: "100 channels", in: `{"channels":[` + channelList(100) + `],"message":"m"}`,
			want: Envelope{Channels: channelNames(100), Message: "m", HasMessage: true}},
		{name: "data 32 deep", in: `{"channel":"c","data":` + nested(32) + `}`,
			want: Envelope{Channel: "c", Data: json.RawMessage(nested(32))}},
		{name: "data with odd values", in: `{"channel":"c","data":{"n":-0.5e+10,"t":true,"f":false,"z":null,"s":"\u2028<&>","a":[[],{}]}}`,
			want: Envelope{Channel: "c", Data: json.RawMessage(`{"n":-0.5e+10,"t":true,"f":false,"z":null,"s":"\u2028<&>","a":[[],{}]}`)}},
		{name: "data number beyond float64 passed through", in: `{"channel":"c","data":{"n":1e400}}`,
			want: Envelope{Channel: "c", Data: json.RawMessage(`{"n":1e400}`)}},
		{name: "data duplicate keys passed through", in: `{"channel":"c","data":{"a":1,"a":2}}`,
			want: Envelope{Channel: "c", Data: json.RawMessage(`{"a":1,"a":2}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in), DefaultLimits())
			if err != nil {
				t.Fatalf("Decode(%s): got error %v, want none", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode(%s):\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	small := Limits{MaxBytes: 100, MaxChannels: 2, MaxChannelLen: 5, MaxDepth: 2}
	tests := []struct {
		name      string
		in        string
		lim       Limits
		code      string
		field     string
		reasonHas string
	}{
		// too_large
		{name: "body too large", in: `{"channel":"c","message":"` + strings.Repeat("x", 100) + `"}`, lim: small,
			code: CodeTooLarge, reasonHas: "more than the limit of 100"},
		{name: "body too large checked before syntax", in: strings.Repeat("[", 101), lim: small,
			code: CodeTooLarge},
		{name: "body over default 64 KiB", in: `{"channel":"c","message":"` + strings.Repeat("x", 65536) + `"}`,
			code: CodeTooLarge},
		{name: "too many channels", in: `{"channels":["a","b","c"],"message":"m"}`, lim: small,
			code: CodeTooLarge, field: "channels", reasonHas: "more than 2 channels"},
		{name: "101 channels by default", in: `{"channels":[` + channelList(101) + `],"message":"m"}`,
			code: CodeTooLarge, field: "channels"},
		{name: "channel too long", in: `{"channel":"abcdef","message":"m"}`, lim: small,
			code: CodeTooLarge, field: "channel", reasonHas: "6 bytes"},
		{name: "channel 256 bytes by default", in: `{"channel":"` + strings.Repeat("c", 256) + `","message":"m"}`,
			code: CodeTooLarge, field: "channel"},
		{name: "channels entry too long", in: `{"channels":["a","abcdef"],"message":"m"}`, lim: small,
			code: CodeTooLarge, field: "channels", reasonHas: "entry 1"},
		{name: "channel length counts unescaped bytes", in: `{"channel":"\u00e9\u00e9\u00e9","message":"m"}`, lim: small,
			code: CodeTooLarge, field: "channel"},
		{name: "data too deep", in: `{"channel":"c","data":{"a":[[1]]}}`, lim: small,
			code: CodeTooLarge, field: "data", reasonHas: "3 levels"},
		{name: "data 33 deep by default", in: `{"channel":"c","data":` + nested(33) + `}`,
			code: CodeTooLarge, field: "data"},

		// invalid_json
		{name: "empty body", in: ``, code: CodeInvalidJSON, reasonHas: "end of input"},
		{name: "only whitespace", in: " \n", code: CodeInvalidJSON},
		{name: "truncated", in: `{"channel":"c"`, code: CodeInvalidJSON},
		{name: "trailing comma", in: `{"channel":"c","message":"m",}`, code: CodeInvalidJSON},
		{name: "trailing data", in: `{"channel":"c","message":"m"} x`, code: CodeInvalidJSON, reasonHas: "after the envelope"},
		{name: "two objects", in: `{"channel":"c","message":"m"}{}`, code: CodeInvalidJSON},
		{name: "single quotes", in: `{'channel':'c'}`, code: CodeInvalidJSON},
		{name: "bad escape", in: `{"channel":"\x","message":"m"}`, code: CodeInvalidJSON},
		{name: "short unicode escape", in: `{"channel":"\u12","message":"m"}`, code: CodeInvalidJSON},
		{name: "raw control char", in: "{\"channel\":\"a\tb\",\"message\":\"m\"}", code: CodeInvalidJSON},
		{name: "invalid utf-8", in: "{\"channel\":\"c\",\"message\":\"\xff\"}", code: CodeInvalidJSON, reasonHas: "UTF-8"},
		{name: "invalid utf-8 in data", in: "{\"channel\":\"c\",\"data\":{\"a\":\"\xc3\"}}", code: CodeInvalidJSON},
		{name: "surrogate encoded in utf-8", in: "{\"channel\":\"c\",\"message\":\"\xed\xa0\x80\"}", code: CodeInvalidJSON},
		{name: "bad number in data", in: `{"channel":"c","data":{"a":01}}`, code: CodeInvalidJSON},
		{name: "bad literal in data", in: `{"channel":"c","data":{"a":nul}}`, code: CodeInvalidJSON},
		{name: "NaN in data", in: `{"channel":"c","data":{"a":NaN}}`, code: CodeInvalidJSON},
		{name: "missing colon", in: `{"channel" "c"}`, code: CodeInvalidJSON},
		{name: "broken after envelope error", in: `{"chanel":"c",`, code: CodeInvalidJSON},
		{name: "broken top-level array", in: `[1,`, code: CodeInvalidJSON},
		{name: "nesting beyond encoding/json", in: `{"channel":"c","data":` + nested(10000) + `}`,
			lim: Limits{MaxBytes: 1 << 20, MaxDepth: 1 << 20}, code: CodeInvalidJSON, reasonHas: "nesting"},
		{name: "byte order mark", in: "\ufeff{\"channel\":\"c\",\"message\":\"m\"}", code: CodeInvalidJSON},

		// invalid_envelope: shape
		{name: "array", in: `[{"channel":"c"}]`, code: CodeInvalidEnvelope, reasonHas: "must be a JSON object"},
		{name: "string", in: `"hello"`, code: CodeInvalidEnvelope, reasonHas: "must be a JSON object"},
		{name: "null", in: ` null `, code: CodeInvalidEnvelope, reasonHas: "must be a JSON object"},
		{name: "number", in: `1`, code: CodeInvalidEnvelope, reasonHas: "must be a JSON object"},
		{name: "empty object", in: `{}`, code: CodeInvalidEnvelope, field: "channel"},
		{name: "unknown field", in: `{"chanel":"c","message":"m"}`, code: CodeInvalidEnvelope, field: "chanel",
			reasonHas: "unknown field"},
		{name: "empty key", in: `{"":1,"channel":"c","message":"m"}`, code: CodeInvalidEnvelope, field: "",
			reasonHas: "empty key"},
		{name: "field names are case-sensitive", in: `{"Channel":"c","message":"m"}`, code: CodeInvalidEnvelope,
			field: "Channel"},
		{name: "duplicate field", in: `{"channel":"c","message":"m","channel":"d"}`, code: CodeInvalidEnvelope,
			field: "channel", reasonHas: "duplicate"},
		{name: "duplicate via escape", in: `{"message":"m","channel":"c","\u0063hannel":"d"}`,
			code: CodeInvalidEnvelope, field: "channel", reasonHas: "duplicate"},
		{name: "first error in document order", in: `{"event_class":"no spaces","chanel":"c"}`,
			code: CodeInvalidEnvelope, field: "event_class"},

		// channel / channels
		{name: "no channel", in: `{"message":"m"}`, code: CodeInvalidEnvelope, field: "channel", reasonHas: "required"},
		{name: "both channel and channels", in: `{"channel":"a","channels":["b"],"message":"m"}`,
			code: CodeInvalidEnvelope, field: "channels", reasonHas: "mutually exclusive"},
		{name: "empty channel", in: `{"channel":"","message":"m"}`, code: CodeInvalidEnvelope, field: "channel"},
		{name: "channel not a string", in: `{"channel":1,"message":"m"}`, code: CodeInvalidEnvelope, field: "channel",
			reasonHas: "must be a string"},
		{name: "channel null", in: `{"channel":null,"message":"m"}`, code: CodeInvalidEnvelope, field: "channel",
			reasonHas: "must not be null"},
		{name: "channels not an array", in: `{"channels":"a","message":"m"}`, code: CodeInvalidEnvelope, field: "channels"},
		{name: "channels empty", in: `{"channels":[],"message":"m"}`, code: CodeInvalidEnvelope, field: "channels",
			reasonHas: "must not be empty"},
		{name: "channels null", in: `{"channels":null,"message":"m"}`, code: CodeInvalidEnvelope, field: "channels",
			reasonHas: "null"},
		{name: "channels entry not a string", in: `{"channels":["a",["b"]],"message":"m"}`, code: CodeInvalidEnvelope,
			field: "channels", reasonHas: "entry 1"},
		{name: "channels entry null", in: `{"channels":[null],"message":"m"}`, code: CodeInvalidEnvelope, field: "channels"},
		{name: "channels entry empty", in: `{"channels":["a",""],"message":"m"}`, code: CodeInvalidEnvelope, field: "channels"},
		{name: "channels duplicate", in: `{"channels":["a","b","a"],"message":"m"}`, code: CodeInvalidEnvelope,
			field: "channels", reasonHas: "entries 0 and 2"},
		{name: "channels duplicate via escape", in: `{"channels":["a","\u0061"],"message":"m"}`,
			code: CodeInvalidEnvelope, field: "channels"},
		{name: "channels duplicate in long list", in: `{"channels":[` + channelList(50) + `,"c7"],"message":"m"}`,
			code: CodeInvalidEnvelope, field: "channels", reasonHas: "entries 7 and 50"},

		// message / data
		{name: "neither message nor data", in: `{"channel":"c"}`, code: CodeInvalidEnvelope, field: "message",
			reasonHas: "at least one"},
		{name: "message not a string", in: `{"channel":"c","message":{}}`, code: CodeInvalidEnvelope, field: "message"},
		{name: "message null", in: `{"channel":"c","message":null}`, code: CodeInvalidEnvelope, field: "message",
			reasonHas: "null"},
		{name: "data null", in: `{"channel":"c","data":null}`, code: CodeInvalidEnvelope, field: "data", reasonHas: "null"},
		{name: "data array", in: `{"channel":"c","data":[1]}`, code: CodeInvalidEnvelope, field: "data",
			reasonHas: "JSON object"},
		{name: "data string", in: `{"channel":"c","data":"{}"}`, code: CodeInvalidEnvelope, field: "data"},

		// event_class
		{name: "event_class empty", in: `{"channel":"c","message":"m","event_class":""}`, code: CodeInvalidEnvelope,
			field: "event_class", reasonHas: "1-64 characters"},
		{name: "event_class 65 chars", in: `{"channel":"c","message":"m","event_class":"` + strings.Repeat("e", 65) + `"}`,
			code: CodeInvalidEnvelope, field: "event_class"},
		{name: "event_class bad char", in: `{"channel":"c","message":"m","event_class":"a/b"}`,
			code: CodeInvalidEnvelope, field: "event_class"},
		{name: "event_class not a string", in: `{"channel":"c","message":"m","event_class":true}`,
			code: CodeInvalidEnvelope, field: "event_class"},
		{name: "event_class null", in: `{"channel":"c","message":"m","event_class":null}`,
			code: CodeInvalidEnvelope, field: "event_class", reasonHas: "null"},

		// bucket, site
		{name: "bucket not a string", in: `{"channel":"c","message":"m","bucket":1}`, code: CodeInvalidEnvelope, field: "bucket"},
		{name: "bucket null", in: `{"channel":"c","message":"m","bucket":null}`, code: CodeInvalidEnvelope, field: "bucket"},
		{name: "site not a string", in: `{"channel":"c","message":"m","site":[]}`, code: CodeInvalidEnvelope, field: "site"},
		{name: "site null", in: `{"channel":"c","message":"m","site":null}`, code: CodeInvalidEnvelope, field: "site"},

		// id
		{name: "id empty", in: `{"channel":"c","message":"m","id":""}`, code: CodeInvalidEnvelope, field: "id",
			reasonHas: "printable ASCII"},
		{name: "id 129 chars", in: `{"channel":"c","message":"m","id":"` + strings.Repeat("i", 129) + `"}`,
			code: CodeInvalidEnvelope, field: "id"},
		{name: "id with space", in: `{"channel":"c","message":"m","id":"a b"}`, code: CodeInvalidEnvelope, field: "id"},
		{name: "id non-ASCII", in: `{"channel":"c","message":"m","id":"é"}`, code: CodeInvalidEnvelope, field: "id"},
		{name: "id number", in: `{"channel":"c","message":"m","id":42}`, code: CodeInvalidEnvelope, field: "id"},
		{name: "id null", in: `{"channel":"c","message":"m","id":null}`, code: CodeInvalidEnvelope, field: "id"},

		// v
		{name: "v 2", in: `{"v":2,"channel":"c","message":"m"}`, code: CodeInvalidEnvelope, field: "v",
			reasonHas: "the number 1"},
		{name: "v string", in: `{"v":"1","channel":"c","message":"m"}`, code: CodeInvalidEnvelope, field: "v"},
		{name: "v null", in: `{"v":null,"channel":"c","message":"m"}`, code: CodeInvalidEnvelope, field: "v"},
		{name: "v 1.5", in: `{"v":1.5,"channel":"c","message":"m"}`, code: CodeInvalidEnvelope, field: "v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in), tc.lim)
			if err == nil {
				t.Fatalf("Decode(%.80s): got no error, want %s", tc.in, tc.code)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%.80s): got error %T %v, want *Error", tc.in, err, err)
			}
			if e.Code() != tc.code || e.Field != tc.field {
				t.Errorf("Decode(%.80s): got code %q field %q (%v), want code %q field %q",
					tc.in, e.Code(), e.Field, err, tc.code, tc.field)
			}
			if !strings.Contains(e.Reason, tc.reasonHas) {
				t.Errorf("Decode(%.80s): got reason %q, want it to contain %q", tc.in, e.Reason, tc.reasonHas)
			}
			if e.Reason == "" {
				t.Errorf("Decode(%.80s): got an empty reason", tc.in)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{code: CodeInvalidEnvelope, Field: "event_class", Reason: "must be 1-64 characters of [A-Za-z0-9_.:-]"},
			`invalid_envelope: event_class: must be 1-64 characters of [A-Za-z0-9_.:-]`},
		{&Error{code: CodeInvalidEnvelope, Reason: "the envelope must be a JSON object"},
			`invalid_envelope: the envelope must be a JSON object`},
		{&Error{code: CodeInvalidEnvelope, Field: "a b\n", Reason: "unknown field"},
			`invalid_envelope: "a b\n": unknown field`},
		{ErrTooLarge, `too_large`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error(): got %q, want %q", got, tc.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{`, ErrInvalidJSON},
		{`[]`, ErrInvalidEnvelope},
		{`{"channel":"` + strings.Repeat("c", 300) + `","message":"m"}`, ErrTooLarge},
	}
	sentinels := []error{ErrInvalidJSON, ErrInvalidEnvelope, ErrTooLarge}
	for _, tc := range tests {
		_, err := Decode([]byte(tc.in), Limits{})
		for _, s := range sentinels {
			if got, want := errors.Is(err, s), s == tc.want; got != want {
				t.Errorf("Decode(%.40s) = %v: errors.Is(err, %v) = %v, want %v", tc.in, err, s, got, want)
			}
		}
	}
}

func TestUnknownFieldTruncated(t *testing.T) {
	key := strings.Repeat("k", 60) + "ééé"
	_, err := Decode([]byte(`{"`+key+`":1}`), Limits{})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	if want := strings.Repeat("k", 60) + "éé"; e.Field != want {
		t.Errorf("got Field %q, want %q", e.Field, want)
	}
}

func TestDataAliasesInput(t *testing.T) {
	in := []byte(`{"channel":"c","data":{"a":1}}`)
	env, err := Decode(in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	in[len(in)-3] = '2'
	if got, want := string(env.Data), `{"a":2}`; got != want {
		t.Errorf("after changing the input: got Data %s, want %s (aliasing)", got, want)
	}
	if cap(env.Data) != len(env.Data) {
		t.Errorf("got cap(Data) %d, want %d: appending to Data must not overwrite the input", cap(env.Data), len(env.Data))
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxBytes: -1}.withDefaults()
	if want := DefaultLimits(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := (Limits{MaxDepth: 1 << 30}).withDefaults().MaxDepth; got != 9999 {
		t.Errorf("got MaxDepth %d, want 9999 (encoding/json's limit minus the envelope)", got)
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		env  Envelope
		want []string
	}{
		{Envelope{Channel: "a"}, []string{"a"}},
		{Envelope{Channels: []string{"a", "b"}}, []string{"a", "b"}},
		{Envelope{}, nil},
	}
	for _, tc := range tests {
		if got := tc.env.Targets(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v.Targets(): got %q, want %q", tc.env, got, tc.want)
		}
	}
}

func channelNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "c" + itoa(i)
	}
	return out
}

func channelList(n int) string {
	return `"` + strings.Join(channelNames(n), `","`) + `"`
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// nested returns a data object nested depth levels deep: {"a":{"a":...{}}}.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
}
