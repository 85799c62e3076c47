package main

import (
	"fmt"
	"time"
)

// rowSummary is one row of the comparison, over all rounds: what the
// Markdown table shows and the JSON file holds.
type rowSummary struct {
	Name       string    `json:"name"`
	Label      string    `json:"label"`
	Publishers int       `json:"publishers"`
	Channels   int       `json:"channels"`
	PerRequest int       `json:"per_request,omitempty"`
	Messages   int       `json:"messages_per_round"`
	RoundRates []float64 `json:"delivered_per_second_by_round"`
	// Rate is the median of RoundRates.
	Rate float64 `json:"delivered_per_second"`
	// Ratio is, per baseline row, the median of the rounds' ratios (each
	// round runs every row back to back).
	Ratio   map[string]float64 `json:"ratio_to"`
	Latency *latencySummary    `json:"latency,omitempty"`

	Sent       int `json:"sent"`
	Delivered  int `json:"delivered"`
	Lost       int `json:"lost"`
	Duplicates int `json:"duplicates"`
	OutOfOrder int `json:"out_of_order"`
	Failed     int `json:"failed_or_unanswered"`

	BridgePeakRSS       int64   `json:"bridge_peak_rss_bytes,omitempty"`
	BridgeCPUPer100k    float64 `json:"bridge_cpu_seconds_per_100k,omitempty"`
	CentrifugoCPUPer100 float64 `json:"centrifugo_cpu_seconds_per_100k"`
	BenchCPUPer100k     float64 `json:"bench_process_cpu_seconds_per_100k"`
	CommandsPerRequest  float64 `json:"bridge_commands_per_request,omitempty"`
	MeanRequestMs       float64 `json:"bridge_mean_request_ms,omitempty"`
	ThroughputWall      float64 `json:"throughput_seconds"`

	viaBridge bool
}

// latencySummary is a row's latency scenario, all rounds pooled.
type latencySummary struct {
	Offered float64 `json:"offered_per_second"`
	Sent    int     `json:"sent"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// baselines are the rows every row's rate is compared with.
var baselines = []string{rowDirectBatch, rowOrdered, rowConsumer}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize computes the summary of every row.
func (r *compareResults) summarize(rate int) []rowSummary {
	out := make([]rowSummary, 0, len(r.rows))
	for _, x := range r.rows {
		tp := merge(x.name, x.tp)
		acc := merge(x.name, append(append([]*scenario(nil), x.tp...), x.lat...))
		s := rowSummary{
			Name: x.name, Label: x.label, Publishers: x.publishers, Channels: len(x.channels), PerRequest: x.perRequest, Messages: x.messages,
			Ratio: map[string]float64{}, Sent: acc.sent, Delivered: acc.delivered, Lost: acc.lost(), Duplicates: acc.dups,
			OutOfOrder: acc.reordered, Failed: acc.errors + acc.unanswered, ThroughputWall: tp.elapsed.Seconds(), viaBridge: x.viaBridge(),
		}
		for _, t := range x.tp {
			s.RoundRates = append(s.RoundRates, t.rate())
		}
		if x.viaBridge() {
			for _, t := range append(append([]*scenario(nil), x.tp...), x.lat...) {
				s.BridgePeakRSS = max(s.BridgePeakRSS, t.bridgeHWM)
			}
		}
		s.Rate = median(s.RoundRates)
		for _, name := range baselines {
			if base := r.row(name); base != nil {
				s.Ratio[name] = roundRatio(x, base)
			}
		}
		if d := float64(tp.delivered); d > 0 {
			s.CentrifugoCPUPer100 = tp.cpuCF.Seconds() / d * 1e5
			s.BenchCPUPer100k = tp.cpuBench.Seconds() / d * 1e5
			if x.viaBridge() {
				s.BridgeCPUPer100k = tp.cpuBridge.Seconds() / d * 1e5
			}
		}
		if x.viaBridge() && tp.bridge.requests > 0 {
			s.CommandsPerRequest = tp.bridge.commands / tp.bridge.requests
			s.MeanRequestMs = 1000 * tp.bridge.requestSeconds / tp.bridge.requests
		}
		if len(x.lat) > 0 {
			l := merge(x.name, x.lat)
			s.Latency = &latencySummary{Offered: float64(rate), Sent: l.sent, P50: msf(l.pct(0.5)), P99: msf(l.pct(0.99)), Max: msf(l.pct(1))}
		}
		out = append(out, s)
	}
	return out
}

// roundRatio is the median over the rounds of x's rate / base's rate.
func roundRatio(x, base *row) float64 {
	var v []float64
	for i := range min(len(x.tp), len(base.tp)) {
		if d := base.tp[i].rate(); d > 0 {
			v = append(v, x.tp[i].rate()/d)
		}
	}
	return median(v)
}

// target is one figure of issue 13's table.
type target struct {
	Figure   string  `json:"figure"`
	Want     string  `json:"target"`
	Value    float64 `json:"value"`
	Measured string  `json:"measured"`
	Met      *bool   `json:"met,omitempty"` // nil: reported, no target
}

func (t target) metText() string {
	if t.Met == nil {
		return "(reported)"
	}
	return yes(*t.Met)
}

func find(rows []rowSummary, name string) rowSummary {
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	return rowSummary{Ratio: map[string]float64{}}
}

// targets evaluates issue 13's targets on the summaries.
func (b *bench) targets(rows []rowSummary, res *compareResults) []target {
	c := b.cfg
	core1, spread := find(rows, rowCore1), find(rows, fmt.Sprintf(rowCoreSpreadFm, c.spread))
	js, single1 := find(rows, rowJetStream), find(rows, rowSingle1)
	singleMany := find(rows, fmt.Sprintf(rowSingleManyFm, c.singlePubs))
	atLeast := func(fig string, v, want float64, how string) target {
		ok := v >= want
		return target{fig, fmt.Sprintf("≥ %.2f×", want), v, fmt.Sprintf("%.2f× (%s)", v, how), &ok}
	}
	rates := func(a, b rowSummary) string { return thousands(a.Rate) + " vs " + thousands(b.Rate) + "/s" }
	ts := []target{
		atLeast("bridge-core, 1 channel / direct-ordered", core1.Ratio[rowOrdered], 0.95, rates(core1, find(rows, rowOrdered))),
		{"bridge-core, 1 channel / direct-batch", "report it", core1.Ratio[rowDirectBatch], fmt.Sprintf("%.2f× (%s)", core1.Ratio[rowDirectBatch], rates(core1, find(rows, rowDirectBatch))), nil},
		atLeast(fmt.Sprintf("bridge-core, %d channels / direct-batch", c.spread), spread.Ratio[rowDirectBatch], 0.9, rates(spread, find(rows, rowDirectBatch))),
		atLeast("bridge-core, 1 channel / direct-single with 1 publisher", roundRatioNamed(res, rowCore1, rowSingle1), 10, rates(core1, single1)),
		atLeast("bridge-jetstream / centrifugo-consumer", js.Ratio[rowConsumer], 1.0, rates(js, find(rows, rowConsumer))),
	}
	if core1.Latency != nil && singleMany.Latency != nil {
		d := core1.Latency.P99 - singleMany.Latency.P99
		ok := d <= 1
		ts = append(ts, target{fmt.Sprintf("p99 added at %s/s over direct-single (%d publishers)", thousands(float64(c.rate)), c.singlePubs), "≤ +1 ms", d,
			fmt.Sprintf("%+.2f ms (p99 %.2f vs %.2f ms; vs 1 publisher: %.2f ms)", d, core1.Latency.P99, singleMany.Latency.P99, single1.Latency.P99), &ok})
	}
	cpu := core1.BridgeCPUPer100k * 10 // µs per envelope
	okCPU := cpu <= 5
	ts = append(ts, target{"bridge CPU per envelope (bridge-core, 1 channel, receipts on)", "≤ 5 µs", cpu,
		fmt.Sprintf("%.1f µs (%d channels: %.1f µs, jetstream: %.1f µs)", cpu, c.spread, spread.BridgeCPUPer100k*10, js.BridgeCPUPer100k*10), &okCPU})
	peak := max(res.bridgeHWM, res.jsHWM)
	okRSS := peak <= targetRSS
	ts = append(ts, target{"bridge peak RSS at saturation", "≤ 64 MiB", float64(peak) / (1 << 20),
		fmt.Sprintf("%s (core), %s (jetstream)", mib(res.bridgeHWM), mib(res.jsHWM)), &okRSS})
	lost, dups, order := 0, 0, 0
	for _, r := range rows {
		lost, dups = lost+r.Lost, dups+r.Duplicates
		if r.viaBridge {
			order += r.OutOfOrder
		}
	}
	dups += res.lateDups // not in any row: they came after their scenario was counted
	okOnce := lost == 0 && dups == 0 && order == 0
	ts = append(ts, target{"exactly once (every row)", "0 lost, 0 duplicates, 0 out of order on bridge paths", float64(lost + dups + order),
		fmt.Sprintf("%d lost, %d duplicates, %d out of order", lost, dups, order), &okOnce})
	if res.hotPath != nil {
		ts = append(ts, hotPathTarget(res.hotPath))
	}
	return ts
}

// roundRatioNamed is roundRatio of two rows given by name (0 when missing).
func roundRatioNamed(res *compareResults, x, base string) float64 {
	a, b := res.row(x), res.row(base)
	if a == nil || b == nil {
		return 0
	}
	return roundRatio(a, b)
}
