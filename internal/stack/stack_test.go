package stack_test

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

func TestEventually(t *testing.T) {
	calls := 0
	err := stack.Eventually(time.Second, func() error {
		if calls++; calls < 3 {
			return stack.ErrNotYet
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("got %v after %d calls, want nil after 3", err, calls)
	}

	last := errors.New("still wrong")
	start := time.Now()
	err = stack.Eventually(100*time.Millisecond, func() error { return last })
	if !errors.Is(err, last) {
		t.Errorf("got %v, want an error wrapping the condition's last error", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("gave up after %v, want at least 100ms", waited)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := stack.ParseMetrics(strings.NewReader(`# HELP x_total things
# TYPE x_total counter
x_total{kind="ack",site="a"} 3
x_total{kind="nak",site="a"} 2
x_total{kind="ack",site="b"} 4
x_total_other 100
y 1.5e+06
h_bucket{le="+Inf"} 7
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, metric, labels string
		want                 float64
	}{
		{"every label set", "x_total", "", 9},
		{"one label", "x_total", `kind="ack"`, 7},
		{"two labels", "x_total", `kind="nak",site="a"`, 2},
		{"no such labels", "x_total", `kind="term"`, 0},
		{"without labels", "y", "", 1.5e6},
		{"a longer name is another metric", "x_total_other", "", 100},
		{"infinity bound", "h_bucket", `le="+Inf"`, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.Sum(tc.metric, tc.labels); got != tc.want {
				t.Errorf("Sum(%q, %q) = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
	if _, err := stack.ParseMetrics(strings.NewReader("x_total{a=\"b\"} not-a-number\n")); err == nil {
		t.Error("a sample without a number: want an error")
	}
}

func TestChildEnv(t *testing.T) {
	t.Setenv("INSTANT_NATS_URL", "nats://developer:4222")
	t.Setenv("STACK_TEST_KEPT", "yes")
	env := stack.ChildEnv("INSTANT_LOG_LEVEL=warn", "STACK_TEST_KEPT=no", "INSTANT_LOG_LEVEL=error")
	if slices.Contains(env, "INSTANT_NATS_URL=nats://developer:4222") {
		t.Error("the caller's INSTANT_NATS_URL was passed on")
	}
	for _, want := range []string{"INSTANT_LOG_LEVEL=error", "STACK_TEST_KEPT=no"} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s (later values win)", want)
		}
	}
	if n := countPrefix(env, "INSTANT_LOG_LEVEL="); n != 1 {
		t.Errorf("INSTANT_LOG_LEVEL set %d times, want once", n)
	}
}

func countPrefix(env []string, prefix string) int {
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, prefix) {
			n++
		}
	}
	return n
}

func TestResetPeakRSS(t *testing.T) {
	pid := os.Getpid()
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1 // touch every page
	}
	before, err := stack.ReadProcMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(big)
	big = nil
	runtime.GC()
	debug.FreeOSMemory()
	if err := stack.ResetPeakRSS(pid); err != nil {
		t.Fatal(err)
	}
	after, err := stack.ReadProcMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.HWM > before.HWM-32<<20 {
		t.Errorf("VmHWM after reset %d, want at least 32 MiB below the peak %d", after.HWM, before.HWM)
	}
}
