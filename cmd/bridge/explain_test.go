package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainCommand: bridge explain reads the channels file of the
// configuration, takes the envelope as an argument or on stdin, prints the
// verdict first and answers with the exit convention (errRejected: 1).
func TestExplainCommand(t *testing.T) {
	f := filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(f, []byte("channels:\n  - name: public\n    level: public\n  - name: $billing\n    level: staff\n    publishers: [billing]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INSTANT_CHANNELS_FILE", f)
	t.Setenv("INSTANT_CENTRIFUGO_API_KEY", "") // not needed to explain
	for _, tc := range []struct {
		args     []string
		stdin    string
		first    string
		rejected bool
	}{
		{[]string{`{"channel":"public","message":"hi","id":"a"}`}, "", "forwarded: 1 Centrifugo command(s), payload mode object, envelope id a", false},
		{[]string{"--subject", "instant.publish.billing", "-"}, `{"channel":"$billing","message":"hi","id":"b"}`, "forwarded: 1 Centrifugo command(s), payload mode object, envelope id b", false},
		{nil, `{"channel":"$billing","message":"hi"}`, `rejected: publisher_denied: producer "" may not publish to channel "$billing" (channels.yaml:6)`, true},
		{[]string{`{"channel":"nope"}`}, "", "rejected: invalid_envelope: ", true},
	} {
		stdin = strings.NewReader(tc.stdin)
		var out bytes.Buffer
		err := run(append([]string{"explain"}, tc.args...), &out)
		if errors.Is(err, errRejected) != tc.rejected || (err != nil && !errors.Is(err, errRejected)) {
			t.Errorf("explain %v: error %v, want rejected=%v", tc.args, err, tc.rejected)
		}
		if first, _, _ := strings.Cut(out.String(), "\n"); !strings.HasPrefix(first, tc.first) {
			t.Errorf("explain %v: first line %q, want %q", tc.args, first, tc.first)
		}
	}
}
