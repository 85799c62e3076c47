package channelsfile_test

import (
	"testing"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/pkg/acl"
)

// TestSourceLines: the registry remembers the file and line of each channel
// and field, so that a decision can name them.
func TestSourceLines(t *testing.T) {
	r, err := channelsfile.Parse("channels.yaml", []byte("channels:\n  - name: public\n    level: public\n  - name: $staff\n    level: staff\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := r.ExplainSubscribe(acl.User{Username: "alice"}, "$staff")
	if got := d.Source.At(d.Field); got != "channels.yaml:5" {
		t.Errorf("decision at %q, want channels.yaml:5", got)
	}
	if s, _ := r.Source("public"); s.At("") != "channels.yaml:2" {
		t.Errorf("public at %q, want channels.yaml:2", s.At(""))
	}
}

// TestCanaryPrefixReserved: a channels file cannot name a canary channel.
func TestCanaryPrefixReserved(t *testing.T) {
	_, err := channelsfile.Parse("channels.yaml", []byte("channels:\n  - name: public\n    level: public\n  - name: $instant-canary-x\n    level: public\n"))
	if err == nil || err.Error() != `channels.yaml:4: entry 1 ($instant-canary-x): name: names starting with "$instant-canary-" are reserved for the bridge's canary` {
		t.Errorf("got %v, want the reserved-name error at line 4", err)
	}
}
