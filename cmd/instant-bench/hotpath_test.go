package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

const hotPathSample = `goos: linux
goarch: amd64
pkg: github.com/instant-go/instant/internal/bridge
BenchmarkHotPath/object/typical-2         	  500000	      1963 ns/op	  51.95 MB/s	     341 B/op	       6 allocs/op
BenchmarkHotPath/django/3-channels-2      	  500000	      3395 ns/op	  41.59 MB/s	     952 B/op	      10 allocs/op
BenchmarkHotPath/object/typical-2         	  500000	      2101.5 ns/op	  51.95 MB/s	     341 B/op	       6 allocs/op
BenchmarkHotPath/django/3-channels-2      	  500000	      3000 ns/op	  41.59 MB/s	     952 B/op	      11 allocs/op
BenchmarkHotPath/object/typical-2         	  500000	      2000 ns/op	  51.95 MB/s	     341 B/op	       6 allocs/op
BenchmarkHotPath/django/3-channels-2      	  500000	      3100 ns/op	  41.59 MB/s	     952 B/op	      10 allocs/op
PASS
`

func TestParseHotPath(t *testing.T) {
	got, err := parseHotPath([]byte(hotPathSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []hotPathResult{
		{Name: "django/3-channels", NsPerOp: 3100, Runs: []float64{3395, 3000, 3100}, Allocs: 11},
		{Name: "object/typical", NsPerOp: 2000, Runs: []float64{1963, 2101.5, 2000}, Allocs: 6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	tg := hotPathTarget(&hotPathReport{Results: got})
	if tg.Met == nil || !*tg.Met || tg.Value != 3.1 || !strings.Contains(tg.Measured, "2.0–3.1 µs, ≤ 11 allocs (slowest: django/3-channels; medians of 3 runs)") {
		t.Errorf("target %+v: want met at 3.1 µs", tg)
	}
	slow := hotPathTarget(&hotPathReport{Results: []hotPathResult{{Name: "x", NsPerOp: 3500, Runs: []float64{3500}, Allocs: 6}}})
	if *slow.Met {
		t.Errorf("3.5 µs met the target %q", slow.Want)
	}
	for _, bad := range []string{"PASS\n", "BenchmarkHotPath/object/typical-2  100  2000 ns/op\n"} {
		if _, err := parseHotPath([]byte(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// TestRunHotPath runs the real benchmark briefly, as compare mode does.
func TestRunHotPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs internal/bridge's benchmarks")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := stack.ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hp, err := runHotPath(ctx, root, 1, "10x")
	if err != nil {
		t.Fatal(err)
	}
	if len(hp.Results) != 6 {
		t.Errorf("got %d sub-benchmarks, want 6 (2 modes × 3 bodies): %+v", len(hp.Results), hp.Results)
	}
	for _, r := range hp.Results {
		if r.NsPerOp <= 0 || r.Allocs <= 0 || len(r.Runs) != 1 {
			t.Errorf("%+v: want a time and allocations of one run", r)
		}
	}
	if want := "go test -run '^$' -bench HotPath -benchmem -count 1 -benchtime 10x ./internal/bridge/"; hp.Command != want {
		t.Errorf("command %q, want %q", hp.Command, want)
	}
}
