package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The hot path (decode, ACL, id, payload encode) is measured by the Go
// benchmark BenchmarkHotPath in internal/bridge, run as a subprocess from
// the module root before the comparison starts its processes, so that the
// machine is idle.

// Issue 13's figures for the hot path before it: "unchanged or better".
const (
	hotPathPrevMaxNs     = 3400 // 2.0–3.4 µs per envelope
	hotPathPrevMaxAllocs = 17
)

// hotPathResult is one sub-benchmark of BenchmarkHotPath over its runs.
type hotPathResult struct {
	Name    string    `json:"name"`           // e.g. object/typical
	NsPerOp float64   `json:"ns_per_op"`      // median of the runs
	Runs    []float64 `json:"ns_per_op_runs"` // one per -count
	Allocs  int64     `json:"allocs_per_op"`  // the most of the runs
}

// hotPathReport is the hot-path benchmark of a compare run.
type hotPathReport struct {
	Command string          `json:"command"`
	Results []hotPathResult `json:"results"`
}

// hotPathArgs are the go test arguments of the hot-path benchmark; an
// empty benchtime keeps go test's default (1s).
func hotPathArgs(count int, benchtime string) []string {
	args := []string{"test", "-run", "^$", "-bench", "HotPath", "-benchmem", "-count", strconv.Itoa(count)}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	return append(args, "./internal/bridge/")
}

// runHotPath runs the hot-path benchmark in modRoot and parses its output.
func runHotPath(ctx context.Context, modRoot string, count int, benchtime string) (*hotPathReport, error) {
	args := hotPathArgs(count, benchtime)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = modRoot
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s%s", strings.Join(args, " "), err, out.Bytes(), errOut.Bytes())
	}
	res, err := parseHotPath(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return &hotPathReport{Command: "go " + quoteArgs(args), Results: res}, nil
}

// quoteArgs joins args as a shell would need them ('^$' quoted).
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if strings.ContainsAny(a, "^$*? ") {
			q[i] = "'" + a + "'"
		}
	}
	return strings.Join(q, " ")
}

// procSuffix is the -GOMAXPROCS suffix go test adds to benchmark names.
var procSuffix = regexp.MustCompile(`-\d+$`)

// parseHotPath reads go test -benchmem lines such as
//
//	BenchmarkHotPath/object/typical-2   500000   2345 ns/op   53.29 MB/s   341 B/op   6 allocs/op
//
// into one result per sub-benchmark, sorted by name.
func parseHotPath(out []byte) ([]hotPathResult, error) {
	byName := map[string]*hotPathResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkHotPath/") {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "BenchmarkHotPath/"), "")
		ns, allocs := -1.0, int64(-1)
		for i := 2; i+1 < len(f); i += 2 {
			switch f[i+1] {
			case "ns/op":
				ns, _ = strconv.ParseFloat(f[i], 64)
			case "allocs/op":
				allocs, _ = strconv.ParseInt(f[i], 10, 64)
			}
		}
		if ns <= 0 || allocs < 0 {
			return nil, fmt.Errorf("no ns/op and allocs/op in %q (want -benchmem output)", sc.Text())
		}
		r := byName[name]
		if r == nil {
			r = &hotPathResult{Name: name}
			byName[name] = r
		}
		r.Runs = append(r.Runs, ns)
		r.Allocs = max(r.Allocs, allocs)
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("no BenchmarkHotPath results")
	}
	var res []hotPathResult
	for _, r := range byName {
		r.NsPerOp = median(r.Runs)
		res = append(res, *r)
	}
	slices.SortFunc(res, func(a, b hotPathResult) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

// hotPathTarget is issue 13's hot-path figure: the slowest sub-benchmark's
// median and the most allocations, against the figures before it.
func hotPathTarget(hp *hotPathReport) target {
	lo, hi, slowest := hp.Results[0].NsPerOp, 0.0, ""
	var most int64
	for _, r := range hp.Results {
		lo = min(lo, r.NsPerOp)
		if r.NsPerOp > hi {
			hi, slowest = r.NsPerOp, r.Name
		}
		most = max(most, r.Allocs)
	}
	ok := hi <= hotPathPrevMaxNs && most <= hotPathPrevMaxAllocs
	return target{"hot path (decode, ACL, encode), `go test -bench HotPath ./internal/bridge/`",
		fmt.Sprintf("unchanged or better (was %.1f–%.1f µs, ≤ %d allocs)", 2.0, hotPathPrevMaxNs/1000.0, hotPathPrevMaxAllocs),
		hi / 1000, fmt.Sprintf("%.1f–%.1f µs, ≤ %d allocs (slowest: %s; medians of %d runs)", lo/1000, hi/1000, most, slowest, len(hp.Results[0].Runs)), &ok}
}

// hotPath runs the hot-path benchmark, unless -hot-path-count is 0.
func (b *bench) hotPath(ctx context.Context, modRoot string) (*hotPathReport, error) {
	if b.cfg.hotPathCount == 0 {
		return nil, nil
	}
	b.logf("hot path: go %s", quoteArgs(hotPathArgs(b.cfg.hotPathCount, "")))
	start := time.Now()
	hp, err := runHotPath(ctx, modRoot, b.cfg.hotPathCount, "")
	if err != nil {
		return nil, err
	}
	b.logf("  %d sub-benchmarks in %s", len(hp.Results), time.Since(start).Round(time.Second))
	return hp, nil
}

// reportHotPath prints the hot-path sub-benchmarks.
func reportHotPath(p func(string, ...any), hp *hotPathReport) {
	if hp == nil {
		return
	}
	p("Hot path (`%s`, before the comparison started its processes):", hp.Command)
	p("")
	p("| Sub-benchmark | ns/op (median) | ns/op by run | allocs/op |")
	p("|---|--:|---|--:|")
	for _, r := range hp.Results {
		var runs []string
		for _, x := range r.Runs {
			runs = append(runs, strconv.FormatFloat(x, 'f', 0, 64))
		}
		p("| %s | %.0f | %s | %d |", r.Name, r.NsPerOp, strings.Join(runs, " / "), r.Allocs)
	}
	p("")
}
