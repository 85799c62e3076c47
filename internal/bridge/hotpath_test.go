package bridge

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/hotfile"
	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/pkg/envelope"
)

// hotPathBridge is a Bridge with only what prepare needs.
func hotPathBridge(tb testing.TB, mode envelope.Mode) *Bridge {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "channels.yaml")
	yaml := "channels:\n  - {name: public, level: public}\n  - {name: $users, level: users}\n  - {name: $billing, level: staff, publishers: [billing]}\n"
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	ch, err := hotfile.Load(f, channelsfile.Parse, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	return &Bridge{cfg: Config{SiteName: "site"}, envelopeRules: envelopeRules{site: "site", mode: mode, limits: envelope.DefaultLimits(), channels: ch, ids: ids.New()}}
}

func TestPrepare(t *testing.T) {
	b := hotPathBridge(t, envelope.ModeObject)
	recv := time.UnixMilli(1_700_000_000_123)
	id, cmds, err := b.prepare("", b.channels.Current(), []byte(`{"channel":"$users","message":"hi","id":"e-1"}`), recv, "")
	if err != nil || id != "e-1" || len(cmds) != 1 || cmds[0].Channel != "$users" {
		t.Fatalf("prepare: id %q cmds %+v err %v", id, cmds, err)
	}
	want := `{"id":"e-1","channel":"$users","site":"site","message":"hi","ts":1700000000123}`
	if string(cmds[0].Data) != want {
		t.Errorf("payload\n got %s\nwant %s", cmds[0].Data, want)
	}
	if _, _, err := b.prepare("", b.channels.Current(), []byte(`{"channel":"$billing","message":"hi"}`), recv, ""); err == nil {
		t.Error("anonymous producer on $billing: want publisher_denied")
	}
	if _, _, err := b.prepare("billing", b.channels.Current(), []byte(`{"channel":"$billing","message":"hi"}`), recv, ""); err != nil {
		t.Errorf("billing producer on $billing: %v", err)
	}
	id, _, err = b.prepare("", b.channels.Current(), []byte(`{"channel":"$users","data":{}}`), recv, "")
	if err != nil || len(id) != 26 {
		t.Errorf("generated id %q err %v: want 26 chars", id, err)
	}
}

// TestPrepareStopsAtTheRequestLimit: in django mode (one payload per
// channel) prepare stops encoding once the payloads exceed
// INSTANT_MAX_REQUEST_BYTES and rejects the envelope too_large.
func TestPrepareStopsAtTheRequestLimit(t *testing.T) {
	b := hotPathBridge(t, envelope.ModeDjango)
	b.maxRequestBytes = 256 << 10
	body := `{"channels":["$users","public","$billing"],"message":"` + strings.Repeat("<>&", 10<<10) + `"}` // 30 KiB, about 200 KiB per payload
	_, cmds, err := b.prepare("billing", b.channels.Current(), []byte(body), time.Now(), "")
	var e interface{ Code() string }
	if !errors.As(err, &e) || e.Code() != envelope.CodeTooLarge || !strings.Contains(err.Error(), "INSTANT_MAX_REQUEST_BYTES") || cmds != nil {
		t.Fatalf("got %d commands, error %v; want too_large naming INSTANT_MAX_REQUEST_BYTES", len(cmds), err)
	}
	if !strings.Contains(err.Error(), "(2 of 3 channels encoded)") {
		t.Errorf("error %q: want the count of payloads encoded before stopping", err)
	}
	b.maxRequestBytes = 1 << 20
	if _, cmds, err := b.prepare("billing", b.channels.Current(), []byte(body), time.Now(), ""); err != nil || len(cmds) != 3 {
		t.Errorf("under the limit: got %d commands, error %v; want 3", len(cmds), err)
	}
}

// BenchmarkHotPath measures the per-envelope work of the bridge: decode,
// ACL check, id, payload encode. Target: < 5 µs and < 20 allocs/op.
//
//	go test -run '^$' -bench HotPath -benchmem ./internal/bridge/
func BenchmarkHotPath(b *testing.B) {
	bodies := map[string][]byte{
		"typical":    []byte(`{"channel":"$users","message":"hi","event_class":"important","data":{"a":1,"b":[1,2,3],"c":{"d":"e"}}}`),
		"with-id":    []byte(`{"channel":"$users","message":"hi","id":"order-42","data":{"a":1}}`),
		"3-channels": []byte(`{"channels":["$users","public","$billing"],"message":"hi"}`),
	}
	for _, mode := range []envelope.Mode{envelope.ModeObject, envelope.ModeDjango} {
		br := hotPathBridge(b, mode)
		for name, body := range bodies {
			b.Run(mode.String()+"/"+name, func(b *testing.B) {
				producer := ""
				if name == "3-channels" {
					producer = "billing"
				}
				recv := time.Now()
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, _, err := br.prepare(producer, br.channels.Current(), body, recv, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"": false, "a": true, "order-42": true, "has space": false, "tab\t": false,
		"é": false, string(make([]byte, 129)): false,
	} {
		if got := envelope.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
