package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/testenv"
)

// deadLetters starts NATS with the dead-letter stream holding letters
// written by dlq.Writer, as the bridge writes them, and points
// INSTANT_NATS_URL at it.
func deadLetters(t *testing.T, letters ...dlq.Dead) *nats.Conn {
	t.Helper()
	n := testenv.StartNATS(t)
	t.Setenv("INSTANT_NATS_URL", n.URL())
	nc := n.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, dlq.StreamConfig("INSTANT_DLQ", "instant.dlq", 1)); err != nil {
		t.Fatal(err)
	}
	w := dlq.NewWriter(js, nc, "instant.dlq")
	for _, d := range letters {
		if err := w.Write(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	return nc
}

func dead(seq uint64, code, id, body string) dlq.Dead {
	return dlq.Dead{
		Failure: dlq.Failure{Code: code, Reason: code + ": test", OriginalSubject: "instant.publish", EnvelopeID: id},
		Data:    []byte(body), Stream: "INSTANT", Sequence: seq, Deliveries: 1,
	}
}

func TestDLQCommand(t *testing.T) {
	deadLetters(t,
		dead(1, "unknown_channel", "d-1", `{"channel":"$nope","message":"x","id":"d-1"}`),
		dead(2, "invalid_envelope", "", `{"channel":"$users"}`))
	dlqRun := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(append([]string{"dlq"}, args...), &out)
		return out.String(), err
	}
	out, err := dlqRun("list")
	if err != nil || !containsAll(out, "unknown_channel", "invalid_envelope", "d-1", "instant.publish") {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err = dlqRun("list", "--code", "unknown_channel", "--json")
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"envelope":"{\"channel\":\"$nope\"`) {
		t.Errorf("list --code --json: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"replay"}, {"purge", "--all", "--code", "x"}, {"show"}, {"frobnicate"}} {
		if _, err := dlqRun(args...); err == nil {
			t.Errorf("dlq %v: want an argument error", args)
		}
	}
	if _, err := dlqRun("replay"); err == nil || !strings.Contains(err.Error(), "--all") {
		t.Errorf("replay without a selection: %v, want an error asking for one", err)
	}
	out, err = dlqRun("purge", "--code", "invalid_envelope")
	if err != nil || !strings.Contains(out, "purged 1") {
		t.Errorf("purge --code: %v %s", err, out)
	}
	out, err = dlqRun("show", "1")
	if err != nil || !strings.Contains(out, `"code": "unknown_channel"`) {
		t.Errorf("show 1: %v\n%s", err, out)
	}
	if out, err = dlqRun("--help"); err != nil || !strings.Contains(out, "replay") {
		t.Errorf("dlq --help: %v\n%s", err, out)
	}
}

// TestDLQShowTruncated: a dead letter that had to be truncated to fit the
// server's max_payload says so in list and show.
func TestDLQShowTruncated(t *testing.T) {
	nc := deadLetters(t)
	big := `{"channel":"$users","message":"` + strings.Repeat("x", int(nc.MaxPayload())) + `"}`
	w, ctx := writer(t, nc), context.Background()
	if err := w.Write(ctx, dead(7, "too_large", "", big)); err != nil {
		t.Fatalf("writing an over-large dead letter: %v", err)
	}
	var out strings.Builder
	if err := run([]string{"dlq", "show", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	var l letterOut
	if err := json.Unmarshal([]byte(out.String()), &l); err != nil {
		t.Fatalf("show: %v\n%s", err, out.String())
	}
	if l.Truncated != len(big) || len(l.Envelope) >= len(big) || !strings.HasPrefix(big, l.Envelope) {
		t.Errorf("show: truncated_from_bytes %d (want %d), kept %d bytes", l.Truncated, len(big), len(l.Envelope))
	}
	out.Reset()
	if err := run([]string{"dlq", "list"}, &out); err != nil || !strings.Contains(out.String(), "truncated") {
		t.Errorf("list does not say the dead letter is truncated: %v\n%s", err, out.String())
	}
	// Replaying the start of an envelope could only fail: it is kept.
	out.Reset()
	if err := run([]string{"dlq", "replay", "--all"}, &out); err != nil || !strings.Contains(out.String(), "replayed 0") || !strings.Contains(out.String(), "kept 1 truncated") {
		t.Errorf("replay --all of a truncated dead letter: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"dlq", "show", "1"}, &out); err != nil {
		t.Errorf("the truncated dead letter is gone after replay: %v", err)
	}
}

func writer(t *testing.T, nc *nats.Conn) *dlq.Writer {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return dlq.NewWriter(js, nc, "instant.dlq")
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
