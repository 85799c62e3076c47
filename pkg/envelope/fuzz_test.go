package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	`{"channel":"$users","message":"hi","event_class":"important","data":{"a":1,"b":[1,2,3]}}`,
	`{"v":1,"id":"msg-1","channels":["a","b"],"message":"m","data":{},"event_class":"A.b:c-d_9","bucket":"bk","site":"other"}`,
	`{"channel":"c","message":""}`,
	`{"channel":"c","data":{"x":null,"y":[true,false,-1.5e3,"s"]}}`,
	`{"channels":["a","a"],"message":"m"}`,
	`{"channels":["a","b","c","d","e","f"],"message":"m"}`,
	`{"channels":[],"message":"m"}`,
	`{"channels":[1,null,"x"],"message":"m"}`,
	`{"channel":"c","channels":["d"],"message":"m"}`,
	`{"chanel":"c","message":"m"}`,
	`{"channel":"c","message":"m","channel":"d"}`,
	`{"\u0063hannel":"c\ud800\udc00\ud800","message":"\"\\\/\b\f\n\r\t\u00e9"}`,
	`{"channel":null,"message":null,"data":null}`,
	`{"channel":"c","data":[1]}`,
	`{"channel":"c","data":{"a":{"b":{"c":{"d":{}}}}}}`,
	`{"channel":"c","message":"m","v":2}`,
	`{"channel":"c","message":"m","v":1.0}`,
	`{"channel":"c","message":"m","id":"a b"}`,
	`{"channel":"c","message":"m","event_class":""}`,
	`{"channel":"c","message":"<>&\u2028\u2029"}`,
	"{\"channel\":\"c\",\"message\":\"\xff\"}",
	"{\"channel\":\"c\",\"message\":\"\xed\xa0\x80\"}",
	`{"channel":"c"} {}`,
	`{"channel":"c",}`,
	`[1,2]`,
	`"s"`,
	`nul`,
	``,
	` `,
	`{"channel":"c","data":{"a":01}}`,
	`{"channel":"c","data":{"a":1.}}`,
	`{"channel":"c","data":{"a":-}}`,
	`{"channel":"c","data":{"a":"\u12"}}`,
	`{"Channel":"c","message":"m"}`,
}

// FuzzDecode checks Decode against encoding/json: whatever encoding/json
// rejects Decode rejects; a reference decoder built on encoding/json gives
// the same result (code and field, or the same Envelope); and the payloads
// of a decoded envelope are valid JSON in both modes.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	small := Limits{MaxBytes: 4096, MaxChannels: 3, MaxChannelLen: 4, MaxDepth: 3}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range []Limits{DefaultLimits(), small} {
			env, err := Decode(b, lim)
			valid := json.Valid(b)
			if err == nil && !valid {
				t.Fatalf("Decode(%q) succeeded, json.Valid says invalid", b)
			}
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("Decode(%q): error %T is not *Error", b, err)
			}
			if err != nil && !valid && e.Code() != CodeInvalidJSON && e.Code() != CodeTooLarge {
				t.Fatalf("Decode(%q): got %v for a body json.Valid rejects, want invalid_json", b, err)
			}
			if err != nil && valid && e.Code() == CodeInvalidJSON && utf8.Valid(b) {
				t.Fatalf("Decode(%q): got %v for valid UTF-8 JSON", b, err)
			}

			want, wantCode, wantField := refDecode(b, lim)
			if err != nil {
				if e.Code() != wantCode || e.Field != wantField {
					t.Fatalf("Decode(%q): got %v (field %q), reference wants code %q field %q",
						b, err, e.Field, wantCode, wantField)
				}
				continue
			}
			if wantCode != "" {
				t.Fatalf("Decode(%q) succeeded, reference wants code %q field %q", b, wantCode, wantField)
			}
			if !reflect.DeepEqual(env, want) {
				t.Fatalf("Decode(%q):\n got %#v\nwant %#v", b, env, want)
			}
			checkPayloads(t, &env)
		}
	})
}

// checkPayloads checks that both payload modes produce valid JSON that
// decodes back to the envelope.
func checkPayloads(t *testing.T, env *Envelope) {
	t.Helper()
	meta := Meta{ID: "bridge-1", Site: "site\n<1>", ReceivedAt: testTime}
	for _, ch := range append([]string{""}, env.Targets()...) {
		obj := AppendPayload(nil, ModeObject, env, ch, meta)
		if !json.Valid(obj) {
			t.Fatalf("object payload %s is not valid JSON", obj)
		}
		got, ok := mustUnmarshal(obj).(map[string]any)
		if !ok {
			t.Fatalf("object payload %s is not a JSON object", obj)
		}
		want := payloadMap(env, ch, meta, true)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("object payload %s:\n got %#v\nwant %#v", obj, got, want)
		}
		if ch == "" {
			continue
		}
		dj := AppendPayload(nil, ModeDjango, env, ch, meta)
		var inner string
		if err := json.Unmarshal(dj, &inner); err != nil {
			t.Fatalf("django payload %s is not a JSON string: %v", dj, err)
		}
		if !json.Valid([]byte(inner)) {
			t.Fatalf("django payload content %s is not valid JSON", inner)
		}
		got, ok = mustUnmarshal([]byte(inner)).(map[string]any)
		if !ok {
			t.Fatalf("django payload content %s is not a JSON object", inner)
		}
		want = payloadMap(env, ch, meta, false)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("django payload %s:\n got %#v\nwant %#v", dj, got, want)
		}
	}
}

// payloadMap is what a payload must decode to.
func payloadMap(env *Envelope, ch string, meta Meta, object bool) map[string]any {
	m := map[string]any{}
	site := meta.Site
	if object {
		m["id"] = meta.ID
		m["ts"] = json.Number(strconv.FormatInt(meta.ReceivedAt.UnixMilli(), 10))
		if site != "" {
			m["site"] = site
		}
	} else {
		m["site"] = site
	}
	if ch != "" {
		m["channel"] = ch
	} else {
		var list []any
		for _, c := range env.Targets() {
			list = append(list, c)
		}
		m["channels"] = list
	}
	if env.HasMessage {
		m["message"] = env.Message
	}
	if env.Data != nil {
		m["data"] = mustUnmarshal(env.Data)
	}
	if env.EventClass != "" {
		m["event_class"] = env.EventClass
	}
	if env.Bucket != "" {
		m["bucket"] = env.Bucket
	}
	return m
}

// refDecode is a slow reference implementation of Decode on top of
// encoding/json. It returns the envelope, or the code and field of the error
// Decode must return.
func refDecode(b []byte, lim Limits) (env Envelope, code, field string) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxBytes {
		return Envelope{}, CodeTooLarge, ""
	}
	if !json.Valid(b) || !utf8.Valid(b) {
		return Envelope{}, CodeInvalidJSON, ""
	}
	if bytes.TrimLeft(b, " \t\r\n")[0] != '{' {
		return Envelope{}, CodeInvalidEnvelope, ""
	}
	fail := func(c, f string) {
		if code == "" {
			code, field = c, f
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		panic(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			panic(err)
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			panic(err)
		}
		switch key {
		case "channel", "channels", "message", "data", "event_class", "bucket", "site", "id", "v":
		default:
			k := key
			for len(k) > 64 {
				_, size := utf8.DecodeLastRuneInString(k)
				k = k[:len(k)-size]
			}
			fail(CodeInvalidEnvelope, k)
			continue
		}
		if seen[key] {
			fail(CodeInvalidEnvelope, key)
			continue
		}
		seen[key] = true
		if string(raw) == "null" {
			fail(CodeInvalidEnvelope, key)
			continue
		}
		var s string
		isString := raw[0] == '"'
		if isString {
			if err := json.Unmarshal(raw, &s); err != nil {
				panic(err)
			}
		}
		if !isString && key != "channels" && key != "data" && key != "v" {
			fail(CodeInvalidEnvelope, key)
			continue
		}
		switch key {
		case "channel":
			switch {
			case s == "":
				fail(CodeInvalidEnvelope, key)
			case len(s) > lim.MaxChannelLen:
				fail(CodeTooLarge, key)
			}
			env.Channel = s
		case "channels":
			var list []json.RawMessage
			if err := json.Unmarshal(raw, &list); err != nil {
				fail(CodeInvalidEnvelope, key)
				continue
			}
			for i, r := range list {
				if i == lim.MaxChannels {
					fail(CodeTooLarge, key)
				}
				var c string
				switch err := json.Unmarshal(r, &c); {
				case r[0] != '"' || err != nil:
					fail(CodeInvalidEnvelope, key)
				case c == "":
					fail(CodeInvalidEnvelope, key)
				case len(c) > lim.MaxChannelLen:
					fail(CodeTooLarge, key)
				}
				env.Channels = append(env.Channels, c)
			}
			if len(list) == 0 {
				fail(CodeInvalidEnvelope, key)
			}
			dup := map[string]bool{}
			for _, c := range env.Channels {
				if dup[c] {
					fail(CodeInvalidEnvelope, key)
				}
				dup[c] = true
			}
		case "message":
			env.Message, env.HasMessage = s, true
		case "data":
			v := mustUnmarshal(raw)
			if _, ok := v.(map[string]any); !ok {
				fail(CodeInvalidEnvelope, key)
				continue
			}
			if jsonDepth(v) > lim.MaxDepth {
				fail(CodeTooLarge, key)
			}
			env.Data = raw
		case "event_class":
			if len(s) < 1 || len(s) > 64 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != "" {
				fail(CodeInvalidEnvelope, key)
			}
			env.EventClass = s
		case "bucket":
			env.Bucket = s
		case "site":
			env.Site = s
		case "id":
			if len(s) < 1 || len(s) > 128 || strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
				fail(CodeInvalidEnvelope, key)
			}
			env.ID = s
		case "v":
			f, err := strconv.ParseFloat(string(raw), 64)
			if raw[0] == '"' || err != nil || f != 1 {
				fail(CodeInvalidEnvelope, key)
			}
		}
	}
	switch {
	case code != "":
	case seen["channel"] && seen["channels"]:
		fail(CodeInvalidEnvelope, "channels")
	case !seen["channel"] && !seen["channels"]:
		fail(CodeInvalidEnvelope, "channel")
	case !seen["message"] && !seen["data"]:
		fail(CodeInvalidEnvelope, "message")
	}
	if code != "" {
		return Envelope{}, code, field
	}
	return env, "", ""
}

// jsonDepth is the container nesting depth of v (0 for a scalar).
func jsonDepth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			d = max(d, jsonDepth(x))
		}
		return d + 1
	case []any:
		for _, x := range v {
			d = max(d, jsonDepth(x))
		}
		return d + 1
	}
	return 0
}

// mustUnmarshal decodes one valid JSON value, numbers as json.Number (a
// number out of float64's range is valid JSON and passes through data).
func mustUnmarshal(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(err)
	}
	return v
}
