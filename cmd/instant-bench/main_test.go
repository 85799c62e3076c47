package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole comparison with a few seconds of load (no
// target assertions) against the real Centrifugo, NATS and bridge: every
// row must be in the report, with its events delivered exactly once.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS, Centrifugo and two bridges")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var out, log bytes.Buffer
	err := run(ctx, []string{"-smoke", "-json", jsonPath}, &out, &log)
	if err != nil {
		t.Fatalf("run: %v\nreport:\n%s\nprogress:\n%s", err, out.String(), log.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep compareReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	want := []string{"direct-single-1", "direct-single-16", "direct-batch", "direct-ordered",
		"bridge-core-1ch", "bridge-core-8ch", "bridge-jetstream", "centrifugo-consumer"}
	if len(rep.Rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %s", len(rep.Rows), len(want), data)
	}
	for i, r := range rep.Rows {
		if r.Name != want[i] {
			t.Errorf("row %d is %q, want %q", i, r.Name, want[i])
		}
		if r.Sent == 0 || r.Delivered != r.Sent || r.Lost != 0 || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Failed != 0 {
			t.Errorf("%s: sent %d, delivered %d, lost %d, duplicates %d, out of order %d, failed %d; want all delivered once, in order",
				r.Name, r.Sent, r.Delivered, r.Lost, r.Duplicates, r.OutOfOrder, r.Failed)
		}
		if r.Rate <= 0 {
			t.Errorf("%s: delivered/s %v, want > 0", r.Name, r.Rate)
		}
		if !strings.Contains(out.String(), "| "+r.Label+" |") {
			t.Errorf("Markdown report has no row %q", r.Label)
		}
	}
	if len(rep.Problems) > 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	if len(rep.Targets) < 9 {
		t.Errorf("got %d targets, want every figure of issue 13 (9)", len(rep.Targets))
	}
}

func TestHotPathCountFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 3}, {[]string{"-smoke"}, 0}, {[]string{"-smoke", "-hot-path-count", "1"}, 1}} {
		c, err := parseFlags(tc.args, &bytes.Buffer{})
		if err != nil || c.hotPathCount != tc.want {
			t.Errorf("%q: hot-path count %d, error %v; want %d", tc.args, c.hotPathCount, err, tc.want)
		}
	}
}

func TestModeFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		mode string
		err  bool
	}{
		{"default is the comparison", nil, modeCompare, false},
		{"-jetstream keeps its old meaning", []string{"-jetstream"}, modeRounds, false},
		{"-flood", []string{"-flood"}, modeFlood, false},
		{"-smoke is a comparison", []string{"-smoke", "-mode", "rounds"}, modeCompare, false},
		{"-jetstream with compare", []string{"-jetstream", "-mode", "compare"}, "", true},
		{"unknown mode", []string{"-mode", "fast"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, &bytes.Buffer{})
			if (err != nil) != tc.err {
				t.Fatalf("got error %v, want error: %v", err, tc.err)
			}
			if err == nil && c.mode != tc.mode {
				t.Errorf("got mode %q, want %q", c.mode, tc.mode)
			}
		})
	}
}
