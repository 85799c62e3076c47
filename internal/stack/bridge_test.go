package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

// The bridge tests run this test binary as a fake bridge: it answers
// /readyz and /metrics on INSTANT_BRIDGE_HTTP_ADDR and exits on SIGTERM
// unless FAKE_BRIDGE_IGNORE_TERM is set.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_BRIDGE") == "1" {
		fakeBridge()
		return
	}
	os.Exit(m.Run())
}

func fakeBridge() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	http.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "fake_total{kind=%q} 2\nfake_total{kind=\"b\"} 3\n", os.Getenv("FAKE_KIND"))
	})
	go func() { _ = http.ListenAndServe(os.Getenv("INSTANT_BRIDGE_HTTP_ADDR"), nil) }()
	fmt.Println("fake bridge up")
	for range term {
		if os.Getenv("FAKE_BRIDGE_IGNORE_TERM") == "" {
			fmt.Println("fake bridge stopping")
			os.Exit(0)
		}
	}
}

func startFake(t *testing.T, env ...string) *stack.Bridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := stack.StartBridge(ctx, stack.BridgeOptions{
		Binary:  os.Args[0],
		Name:    "fake",
		Env:     append([]string{"FAKE_BRIDGE=1"}, env...),
		LogPath: filepath.Join(t.TempDir(), "fake.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Kill() })
	return b
}

// TestBridgeProcess starts a (fake) bridge, reads its metrics and output,
// and stops it with SIGTERM.
func TestBridgeProcess(t *testing.T) {
	b := startFake(t, "FAKE_KIND=a")
	if v, err := b.Metric("fake_total", `kind="a"`); err != nil || v != 2 {
		t.Errorf("metric fake_total{kind=\"a\"} = %v, %v; want 2 (set through Env)", v, err)
	}
	if err := b.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := b.State(); st == nil || !st.Success() {
		t.Errorf("ended with %v, want exit 0 after SIGTERM", st)
	}
	if out := b.LogTail(1 << 10); !strings.Contains(out, "fake bridge up") || !strings.Contains(out, "fake bridge stopping") {
		t.Errorf("output %q: want its start and stop lines", out)
	}
}

// TestBridgeStopKills: a process that ignores SIGTERM is killed after the
// grace period, and Stop says so.
func TestBridgeStopKills(t *testing.T) {
	b := startFake(t, "FAKE_BRIDGE_IGNORE_TERM=1")
	if err := b.Stop(200 * time.Millisecond); err == nil {
		t.Error("Stop of a process ignoring SIGTERM: want an error saying it was killed")
	}
	st := b.State()
	if st == nil {
		t.Fatal("still running after Stop")
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("ended with %s, want killed", st)
	}
}

// TestBridgeExitsDuringStart: StartBridge reports a process that exits
// before it is ready, with its output.
func TestBridgeExitsDuringStart(t *testing.T) {
	_, err := stack.StartBridge(context.Background(), stack.BridgeOptions{
		Binary:  "/bin/sh",
		Name:    "broken",
		LogPath: filepath.Join(t.TempDir(), "broken.log"),
	})
	if err == nil || !strings.Contains(err.Error(), "exited during start") {
		t.Errorf("got %v, want an error saying it exited during start", err)
	}
}
