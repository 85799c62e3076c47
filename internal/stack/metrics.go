package stack

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics are the samples of a Prometheus text exposition, by series: the
// metric name with its labels as exposed, e.g.
// `instant_bridge_jetstream_acks_total{kind="nak"}`.
type Metrics map[string]float64

// Sum adds the samples of metric name whose labels contain the fragment
// labels (e.g. `kind="nak"`; "" matches every label set).
func (m Metrics) Sum(name, labels string) float64 {
	var sum float64
	for series, v := range m {
		rest, ok := strings.CutPrefix(series, name)
		if !ok || (rest != "" && rest[0] != '{') || !strings.Contains(rest, labels) {
			continue
		}
		sum += v
	}
	return sum
}

// ParseMetrics reads a Prometheus text exposition.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.LastIndexByte(line, '}') + 1 // after the labels, if any
		if end == 0 {
			end = strings.IndexByte(line, ' ')
		}
		if end <= 0 {
			return nil, fmt.Errorf("metric line %q: no value", line)
		}
		f := strings.Fields(line[end:])
		if len(f) == 0 {
			return nil, fmt.Errorf("metric line %q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		m[line[:end]] = v
	}
	return m, sc.Err()
}

// Metrics scrapes the process's /metrics.
func (b *Bridge) Metrics() (Metrics, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(b.httpBase() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bridge %s /metrics: status %d", b.name, resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// Metric scrapes /metrics and sums one metric (see Metrics.Sum).
func (b *Bridge) Metric(name, labels string) (float64, error) {
	m, err := b.Metrics()
	if err != nil {
		return 0, err
	}
	return m.Sum(name, labels), nil
}
