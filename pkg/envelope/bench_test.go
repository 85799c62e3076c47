package envelope

import (
	"testing"
	"time"
)

var benchBody = []byte(`{"channel":"$users","message":"hi","event_class":"important","data":{"a":1,"b":[1,2,3]}}`)

var benchMeta = Meta{ID: "01JDX4J8W6T3Q5Z9K2M7N1P0R8", Site: "mysite", ReceivedAt: time.UnixMilli(1795791845678)}

func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if _, err := Decode(benchBody, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeChannels(b *testing.B) {
	body := []byte(`{"channels":["public","$users","$group_staff","$staff"],"message":"hello, world","site":"s","id":"x-1"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPayload(b *testing.B) {
	env, err := Decode(benchBody, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []Mode{ModeObject, ModeDjango} {
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			var dst []byte
			for b.Loop() {
				dst = AppendPayload(dst[:0], mode, &env, env.Channel, benchMeta)
			}
		})
	}
}

func BenchmarkDecodeAndEncode(b *testing.B) {
	for _, mode := range []Mode{ModeObject, ModeDjango} {
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchBody)))
			var dst []byte
			for b.Loop() {
				env, err := Decode(benchBody, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				for _, ch := range env.Targets() {
					dst = AppendPayload(dst[:0], mode, &env, ch, benchMeta)
				}
			}
		})
	}
}
