package envelope

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 27, 15, 4, 5, 678_900_000, time.UTC)

func TestAppendPayloadObject(t *testing.T) {
	tests := []struct {
		name    string
		env     Envelope
		channel string
		meta    Meta
		want    string // exact output
	}{
		{
			name:    "typical",
			env:     Envelope{Channel: "$users", Message: "hi", HasMessage: true, EventClass: "important", Data: json.RawMessage(`{"a":1}`)},
			channel: "$users",
			meta:    Meta{ID: "id1", Site: "mysite", ReceivedAt: testTime},
			want:    `{"id":"id1","channel":"$users","site":"mysite","message":"hi","data":{"a":1},"event_class":"important","ts":1795791845678}`,
		},
		{
			name:    "minimal",
			env:     Envelope{Channel: "c", Data: json.RawMessage(`{}`)},
			channel: "c",
			want:    `{"channel":"c","data":{}}`,
		},
		{
			name:    "empty message kept, bucket",
			env:     Envelope{Channel: "c", HasMessage: true, Bucket: "b"},
			channel: "c",
			meta:    Meta{ReceivedAt: time.UnixMilli(0)},
			want:    `{"channel":"c","message":"","bucket":"b","ts":0}`,
		},
		{
			name:    "broadcast copy of several channels",
			env:     Envelope{Channels: []string{"a", "b"}, Message: "m", HasMessage: true},
			channel: "",
			want:    `{"channels":["a","b"],"message":"m"}`,
		},
		{
			name: "broadcast copy of one channel",
			env:  Envelope{Channel: "a", Message: "m", HasMessage: true},
			want: `{"channels":["a"],"message":"m"}`,
		},
		{
			name:    "per-channel copy of several channels",
			env:     Envelope{Channels: []string{"a", "b"}, Message: "m", HasMessage: true},
			channel: "b",
			want:    `{"channel":"b","message":"m"}`,
		},
		{
			name:    "meta site written, not the envelope's (defaults are the caller's)",
			env:     Envelope{Channel: "c", Message: "m", HasMessage: true, Site: "override"},
			channel: "c",
			meta:    Meta{Site: "configured"},
			want:    `{"channel":"c","site":"configured","message":"m"}`,
		},
		{
			name:    "meta id written, not the envelope's",
			env:     Envelope{Channel: "c", Message: "m", HasMessage: true, ID: "producer"},
			channel: "c",
			meta:    Meta{ID: "bridge"},
			want:    `{"id":"bridge","channel":"c","message":"m"}`,
		},
		{
			name:    "no id when meta has none",
			env:     Envelope{Channel: "c", Message: "m", HasMessage: true, ID: "producer"},
			channel: "c",
			want:    `{"channel":"c","message":"m"}`,
		},
		{
			name:    "escaping",
			env:     Envelope{Channel: "c", Message: "\"q\"\\\n\r\t\b\f\x01<>&\u2028\u2029é\xff", HasMessage: true},
			channel: "c",
			want:    `{"channel":"c","message":"\"q\"\\\n\r\t\b\f\u0001\u003c\u003e\u0026\u2028\u2029é\ufffd"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendPayload(nil, ModeObject, &tc.env, tc.channel, tc.meta)
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("output is not valid JSON: %s", got)
			}
		})
	}
}

func TestAppendPayloadDjango(t *testing.T) {
	tests := []struct {
		name    string
		env     Envelope
		channel string
		meta    Meta
		want    map[string]any // the inner object
	}{
		{
			name:    "typical",
			env:     Envelope{Channel: "$users", Message: "hi", HasMessage: true, EventClass: "important", Data: json.RawMessage(`{"a":1,"b":[1,2,3]}`), ID: "x"},
			channel: "$users",
			meta:    Meta{ID: "id1", Site: "mysite", ReceivedAt: testTime},
			want: map[string]any{"channel": "$users", "site": "mysite", "message": "hi",
				"data": map[string]any{"a": 1.0, "b": []any{1.0, 2.0, 3.0}}, "event_class": "important"},
		},
		{
			name:    "site always, even empty",
			env:     Envelope{Channel: "c", Data: json.RawMessage(`{}`)},
			channel: "c",
			want:    map[string]any{"channel": "c", "site": "", "data": map[string]any{}},
		},
		{
			name:    "empty message kept, bucket, meta site",
			env:     Envelope{Channel: "c", HasMessage: true, Bucket: "b", Site: "s2"},
			channel: "c",
			meta:    Meta{Site: "s1"},
			want:    map[string]any{"channel": "c", "site": "s1", "message": "", "bucket": "b"},
		},
		{
			name:    "copy for one of several channels",
			env:     Envelope{Channels: []string{"a", "b"}, Message: "m", HasMessage: true},
			channel: "b",
			want:    map[string]any{"channel": "b", "site": "", "message": "m"},
		},
		{
			name: "empty channel falls back to the envelope's channel",
			env:  Envelope{Channel: "a", Message: "m", HasMessage: true},
			want: map[string]any{"channel": "a", "site": "", "message": "m"},
		},
		{
			name: "escaping twice",
			env: Envelope{Channel: "c\"\\", Message: "\"q\"\\\n\x01<>&\u2028é\xff", HasMessage: true,
				Data: json.RawMessage("{ \"s\" : \"\\\"\\\\\\n\\u0041\u2028<\" ,\n\t\"t\":[ ] }")},
			channel: "c\"\\",
			want: map[string]any{"channel": "c\"\\", "site": "", "message": "\"q\"\\\n\x01<>&\u2028é\uFFFD",
				"data": map[string]any{"s": "\"\\\nA\u2028<", "t": []any{}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendPayload(nil, ModeDjango, &tc.env, tc.channel, tc.meta)
			var inner string
			if err := json.Unmarshal(got, &inner); err != nil {
				t.Fatalf("output %s is not a JSON string: %v", got, err)
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(inner), &obj); err != nil {
				t.Fatalf("inner %s is not a JSON object: %v", inner, err)
			}
			if !reflect.DeepEqual(obj, tc.want) {
				t.Errorf("got  %#v\nwant %#v", obj, tc.want)
			}
		})
	}
}

func TestAppendPayloadDjangoKeyOrder(t *testing.T) {
	env := Envelope{Channel: "c", Message: "m", HasMessage: true, Data: json.RawMessage(`{"x":1}`), EventClass: "e", Bucket: "b"}
	got := string(AppendPayload(nil, ModeDjango, &env, "c", Meta{Site: "s", ID: "id", ReceivedAt: testTime}))
	want := `"{\"channel\":\"c\",\"site\":\"s\",\"message\":\"m\",\"data\":{\"x\":1},\"event_class\":\"e\",\"bucket\":\"b\"}"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendPayloadAppends(t *testing.T) {
	env := Envelope{Channel: "c", Message: "m", HasMessage: true}
	for _, mode := range []Mode{ModeObject, ModeDjango} {
		dst := []byte("prefix")
		got := AppendPayload(dst, mode, &env, "c", Meta{})
		if !strings.HasPrefix(string(got), "prefix") || !json.Valid(got[len("prefix"):]) {
			t.Errorf("%v: got %s, want prefix then a JSON value", mode, got)
		}
	}
}

func TestStringEscapingMatchesEncodingJSON(t *testing.T) {
	var all []byte
	for c := 0; c < 0x80; c++ {
		all = append(all, byte(c))
	}
	inputs := []string{string(all), "é世😀\u2028\u2029", "\xff\xfe a \xc3", "\xed\xa0\x80", "<script>&amp;</script>"}
	for _, s := range inputs {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s, 1); string(got) != string(want) {
			t.Errorf("appendString(%q):\n got %s\nwant %s", s, got, want)
		}
		wantTwice, err := json.Marshal(string(want))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s, 2); `"`+string(got)+`"` != string(wantTwice) {
			t.Errorf("appendString(%q, 2):\n got %s\nwant %s", s, got, wantTwice)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeObject, ModeDjango} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q): got %v, %v; want %v, nil", m.String(), got, err, m)
		}
	}
	for _, s := range []string{"", "Object", "json", "django "} {
		if _, err := ParseMode(s); !errors.Is(err, ErrUnknownMode) {
			t.Errorf("ParseMode(%q): got error %v, want ErrUnknownMode", s, err)
		}
	}
	if got, want := Mode(7).String(), "Mode(7)"; got != want {
		t.Errorf("Mode(7).String(): got %q, want %q", got, want)
	}
}
