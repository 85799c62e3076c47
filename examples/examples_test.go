// The producers of examples/ run against a real Instant (embedded NATS, a
// real Centrifugo, the bridge) and must print an ok receipt.
package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/fullstack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

// receipt is the bridge's answer to an envelope.
type receipt struct {
	OK     bool   `json:"ok"`
	ID     string `json:"id"`
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
	Error  *struct {
		Code, Message string
	} `json:"error"`
}

// run runs a producer and returns the JSON lines it printed.
func run(t *testing.T, natsURL, dir, name string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NATS_URL="+natsURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.Split(strings.TrimSpace(stdout.String()), "\n")
}

func decode[T any](t *testing.T, line string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("output %q is not the JSON expected: %v", line, err)
	}
	return v
}

// checkReceipt: an ok receipt with an id and, the channel keeping history,
// Centrifugo's position.
func checkReceipt(t *testing.T, line string) {
	t.Helper()
	r := decode[receipt](t, line)
	if !r.OK || r.ID == "" || r.Offset == 0 || r.Epoch == "" {
		t.Errorf("receipt %s: want ok with an id, an offset and an epoch", line)
	}
}

// goBuild builds the Go examples into a temporary directory.
func goBuild(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./go/producer", "./go/jetstream-producer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the examples: %v\n%s", err, out)
	}
	return dir
}

func TestProducers(t *testing.T) {
	bin := goBuild(t)
	in := fullstack.StartInstant(t, fullstack.InstantOptions{})
	url := in.NATS.URL()
	sub := subscribe(t, in, "public")

	t.Run("go", func(t *testing.T) {
		out := run(t, url, ".", filepath.Join(bin, "producer"), "public", "hello from Go")
		checkReceipt(t, out[len(out)-1])
		expect(t, sub, "hello from Go")
	})
	t.Run("node", func(t *testing.T) {
		if _, err := exec.LookPath("node"); err != nil {
			t.Fatal("the Node.js example needs node (Node.js 20): apt-get install -y nodejs npm")
		}
		if _, err := os.Stat("node/node_modules/nats"); err != nil {
			t.Fatal("the Node.js example needs its dependencies: cd examples/node && npm ci")
		}
		out := run(t, url, "node", "node", "producer.mjs", "public", "hello from Node.js")
		checkReceipt(t, out[len(out)-1])
		expect(t, sub, "hello from Node.js")
	})
	t.Run("python", func(t *testing.T) {
		if out, err := exec.Command("python3", "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])", "python/producer.py").CombinedOutput(); err != nil {
			t.Fatalf("python/producer.py does not compile: %v\n%s", err, out)
		}
		if err := exec.Command("python3", "-c", "import nats").Run(); err != nil {
			// PyPI cannot be reached from CI here and Debian packages no
			// nats-py: this producer is not run (a skip, not a pass).
			t.Skip("nats-py is not installed (pip install -r examples/python/requirements.txt); the Python producer is not run")
		}
		out := run(t, url, "python", "python3", "producer.py", "public", "hello from Python")
		checkReceipt(t, out[len(out)-1])
		expect(t, sub, "hello from Python")
	})
}

// TestJetStreamProducer: JetStream's ack (stored), then the bridge's
// receipt (forwarded).
func TestJetStreamProducer(t *testing.T) {
	bin := goBuild(t)
	in := fullstack.StartInstant(t, fullstack.InstantOptions{Bridge: func(c *bridge.Config) { c.Delivery = "jetstream" }})
	out := run(t, in.NATS.URL(), ".", filepath.Join(bin, "jetstream-producer"), "$users", "stored first")
	if len(out) != 2 {
		t.Fatalf("output %q: want the ack and the receipt", out)
	}
	ack := decode[struct {
		Stream string `json:"stream"`
		Seq    uint64 `json:"seq"`
	}](t, out[0])
	if ack.Stream != in.BridgeConfig.JetStreamStream || ack.Seq == 0 {
		t.Errorf("ack %s: want stream %s and a sequence", out[0], in.BridgeConfig.JetStreamStream)
	}
	checkReceipt(t, out[1])
}

// subscribe connects a websocket subscriber to channel, with tokens signed
// by Centrifugo's key.
func subscribe(t *testing.T, in *fullstack.Instant, channel string) *testenv.Subscriber {
	t.Helper()
	signer, err := tokens.NewHMAC([]byte(in.Centrifugo.HMACSecret))
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := signer.Connection("examples-test", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err := signer.Subscription("examples-test", channel, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.Connect(t, in.Centrifugo.WebsocketURL(), conn)
	s.MustSubscribe(channel, sub)
	return s
}

// expect: the subscriber receives a message with this text.
func expect(t *testing.T, s *testenv.Subscriber, message string) {
	t.Helper()
	p := s.Next(5 * time.Second)
	var got struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(p.Data, &got); err != nil || got.Message != message {
		t.Errorf("subscriber received %s, want the message %q", p.Data, message)
	}
}
