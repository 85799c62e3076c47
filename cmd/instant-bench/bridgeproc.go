package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bridgeProc is the bridge running as a child process in its own process group.
type bridgeProc struct {
	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
	addr     string // metrics and health listener
	natsName string // its NATS connection name
	logFile  *os.File
}

func startBridge(bin string, env []string, logPath, addr string) (*bridgeProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(withoutInstantVars(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start bridge %s: %w", bin, err)
	}
	p := &bridgeProc{cmd: cmd, done: make(chan struct{}), logPath: logPath, addr: addr, logFile: f}
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// withoutInstantVars drops the caller's INSTANT_* variables so only the
// benchmark's configuration reaches the bridge.
func withoutInstantVars(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "INSTANT_") {
			out = append(out, kv)
		}
	}
	return out
}

func (p *bridgeProc) pid() int { return p.cmd.Process.Pid }

// waitReady polls /readyz until it answers 200.
func (p *bridgeProc) waitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: time.Second}
	var last string
	for {
		resp, err := client.Get("http://" + p.addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("bridge exited during start:\n%s", p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bridge not ready after %v (%s):\n%s", d, last, p.logTail())
		}
	}
}

func (p *bridgeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the bridge's process group and SIGKILL after d.
func (p *bridgeProc) stop(d time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("bridge did not stop within %v after SIGTERM; killed", d)
	}
}

func (p *bridgeProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// metrics scrapes the bridge's /metrics and keeps the series the report uses.
func (p *bridgeProc) metrics() (bridgeMetrics, error) {
	var m bridgeMetrics
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return m, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "instant_bridge_batch_size_sum":
			m.commands = v
		case name == "instant_bridge_batch_size_count":
			m.requests = v
		case name == "instant_bridge_centrifugo_request_duration_seconds_sum":
			m.requestSeconds = v
		case strings.HasPrefix(name, `instant_bridge_centrifugo_request_duration_seconds_bucket{le="`):
			le, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(name, `instant_bridge_centrifugo_request_duration_seconds_bucket{le="`), `"}`), 64)
			if err == nil {
				m.requestBuckets = append(m.requestBuckets, bucket{le: le, n: v})
			}
		case name == `instant_bridge_centrifugo_requests_total{result="error"}`:
			m.requestErrors = v
		case strings.HasPrefix(name, `instant_bridge_envelopes_total{outcome="forwarded"`):
			m.forwarded += v
		case strings.HasPrefix(name, `instant_bridge_envelopes_total{outcome="rejected"`):
			m.rejected += v
		case name == "instant_bridge_slow_consumer_dropped_total":
			m.dropped = v
		case name == "instant_bridge_receipt_errors_total":
			m.receiptErrors = v
		case name == `instant_bridge_centrifugo_requests_total{result="ok"}`:
			m.requestsOK = v
		case name == `instant_bridge_jetstream_acks_total{kind="ack"}`:
			m.acks = v
		case name == `instant_bridge_jetstream_acks_total{kind="nak"}`:
			m.naks = v
		case name == `instant_bridge_jetstream_acks_total{kind="term"}`:
			m.terms = v
		case name == "instant_bridge_jetstream_redeliveries_total":
			m.redeliveries = v
		}
	}
	return m, sc.Err()
}

// bridgeMetrics are counters from the bridge's /metrics.
type bridgeMetrics struct {
	requests, commands, requestErrors float64
	requestSeconds                    float64  // summed duration of Centrifugo requests
	requestBuckets                    []bucket // cumulative histogram of request durations, by le
	forwarded, rejected, dropped      float64
	receiptErrors                     float64
	requestsOK                        float64 // instant_bridge_centrifugo_requests_total{result="ok"}
	acks, naks, terms, redeliveries   float64 // jetstream mode
}

// bucket is one cumulative histogram bucket.
type bucket struct{ le, n float64 }

// slowestRequest is an upper bound of the longest Centrifugo request: the
// smallest bucket bound that holds every request (+Inf when beyond the last).
func (m bridgeMetrics) slowestRequest() float64 {
	for _, b := range m.requestBuckets {
		if b.n >= m.requests {
			return b.le
		}
	}
	return 0
}

func (m bridgeMetrics) add(o bridgeMetrics) bridgeMetrics { return m.combine(o, 1) }

func (m bridgeMetrics) sub(o bridgeMetrics) bridgeMetrics { return m.combine(o, -1) }

// combine returns m + sign*o, field by field.
func (m bridgeMetrics) combine(o bridgeMetrics, sign float64) bridgeMetrics {
	r := bridgeMetrics{
		requests: m.requests + sign*o.requests, commands: m.commands + sign*o.commands,
		requestErrors: m.requestErrors + sign*o.requestErrors, requestSeconds: m.requestSeconds + sign*o.requestSeconds,
		forwarded: m.forwarded + sign*o.forwarded, rejected: m.rejected + sign*o.rejected, dropped: m.dropped + sign*o.dropped,
		receiptErrors: m.receiptErrors + sign*o.receiptErrors, requestsOK: m.requestsOK + sign*o.requestsOK,
		acks: m.acks + sign*o.acks, naks: m.naks + sign*o.naks, terms: m.terms + sign*o.terms,
		redeliveries: m.redeliveries + sign*o.redeliveries,
	}
	n := max(len(m.requestBuckets), len(o.requestBuckets))
	for i := range n {
		var b bucket
		if i < len(m.requestBuckets) {
			b = m.requestBuckets[i]
		}
		if i < len(o.requestBuckets) {
			b.le = o.requestBuckets[i].le
			b.n += sign * o.requestBuckets[i].n
		}
		r.requestBuckets = append(r.requestBuckets, b)
	}
	return r
}

// procMem is a process's resident memory from /proc/<pid>/status.
type procMem struct {
	hwm, rss int64 // bytes: VmHWM (peak) and VmRSS (now)
}

func readProcMem(pid int) (procMem, error) {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmHWM":
			dst = &m.hwm
		case "VmRSS":
			dst = &m.rss
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, k, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, err
		}
		*dst = n << 10
	}
	if m.hwm == 0 {
		return m, errors.New("no VmHWM in /proc status")
	}
	return m, nil
}

// clockTick is USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 100

// procCPU is the user+system CPU time a process has used; pid 0 is this
// process, a negative pid an unknown one (0).
func procCPU(pid int) time.Duration {
	if pid < 0 {
		return 0
	}
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick
}

// procWrites is the number of write system calls a process has made
// (syscw in /proc/<pid>/io): every write to a socket, file or pipe.
func procWrites(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
