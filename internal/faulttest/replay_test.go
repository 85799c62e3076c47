package faulttest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/testenv"
)

// TestReplayAfterChannelFixed publishes to a channel missing from the
// channels file: every envelope is dead-lettered as unknown_channel. Once
// the channel is added (the bridge reloads the file) `bridge dlq replay
// --code unknown_channel` delivers each of them exactly once.
func TestReplayAfterChannelFixed(t *testing.T) {
	s := newStack(t, channelsYAML)
	// At info level the bridge logs the reload of the channels file, which
	// is how the test knows the fix is in force.
	p := s.startBridge("bridge", append(jetstreamEnv, "INSTANT_LOG_LEVEL=info")...)
	r := s.subscribe("$later")

	const n = 50
	ids := makeIDs("later", 0, n)
	s.mustPublish("$later", ids, 0, 0)
	testenv.Eventually(t, 20*time.Second, func() error { // every envelope dead-lettered
		letters, err := s.letters()
		if err != nil {
			return err
		}
		left, err := s.streamMsgs()
		if err != nil {
			return err
		}
		if len(letters) < n || left > 0 {
			return fmt.Errorf("%d of %d dead-lettered, %d left in the stream", len(letters), n, left)
		}
		for _, id := range ids {
			ls := letters[id]
			if len(ls) != 1 || ls[0].Code != "unknown_channel" || ls[0].Deliveries != 1 || ls[0].Subject != "instant.dlq.unknown_channel" {
				t.Fatalf("dead letters of %s: %+v, want one unknown_channel after 1 delivery on instant.dlq.unknown_channel", id, ls)
			}
		}
		return nil
	})
	if got := r.Count(); got != 0 {
		t.Fatalf("$later received %d publications before it was in the channels file", got)
	}

	reloads := strings.Count(p.LogTail(64<<10), `"msg":"reloaded"`)
	s.writeChannels(channelsYAML + "  - name: $later\n    level: users\n")
	testenv.Eventually(t, 10*time.Second, func() error { // channels file reloaded
		if strings.Count(p.LogTail(64<<10), `"msg":"reloaded"`) <= reloads {
			return fmt.Errorf("no reload logged by the bridge yet")
		}
		return nil
	})
	if b, err := os.ReadFile(s.channelsFile); err != nil || !strings.Contains(string(b), "$later") {
		t.Fatalf("channels file: %v %s", err, b)
	}

	out, err := s.runCLI("dlq", "replay", "--code", "unknown_channel")
	if err != nil || strings.TrimSpace(out) != "replayed "+strconv.Itoa(n)+" dead letters" {
		t.Fatalf("bridge dlq replay: %v, output %q; want \"replayed %d dead letters\"", err, out, n)
	}
	a := s.settle(ids, 20*time.Second, r)
	t.Logf("after the replay: %v", a)
	a.requireNoLoss(t)
	for _, id := range ids {
		if got := a.received[id]; got != 1 {
			t.Errorf("%s received %d times after the replay, want once", id, got)
		}
	}
	if len(a.deadLettered) > 0 {
		t.Errorf("%d dead letters left after the replay, want none", len(a.deadLettered))
	}
}
