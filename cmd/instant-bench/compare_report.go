package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// compareReport is the JSON file of a compare run.
type compareReport struct {
	Command  string         `json:"command"`
	Date     string         `json:"date"`
	Seconds  float64        `json:"run_seconds"`
	Machine  map[string]any `json:"machine"`
	Settings map[string]any `json:"settings"`
	Rows     []rowSummary   `json:"rows"`
	HotPath  *hotPathReport `json:"hot_path,omitempty"`
	Targets  []target       `json:"targets"`
	Problems []string       `json:"problems"`
}

func (b *bench) command() string {
	cmd := "go run ./cmd/instant-bench"
	if len(b.args) > 0 {
		cmd += " " + strings.Join(b.args, " ")
	}
	return cmd
}

// reportCompare prints the Markdown report and writes the JSON file.
func (b *bench) reportCompare(res *compareResults) (compareReport, error) {
	c, info := b.cfg, b.info
	rows := res.summarize(c.rate)
	rep := compareReport{
		Command: b.command(), Date: info.start.Format(time.RFC3339), Seconds: res.wall.Seconds(),
		Machine: map[string]any{"cpus": info.cpus, "cpu_model": info.cpuModel, "kernel": info.kernel, "load_average_at_start": info.loadavg,
			"go": info.goVersion, "centrifugo": info.centrifugo, "commit": info.commit},
		Settings: map[string]any{"rounds": c.rounds, "messages": c.messages, "single_messages": c.single, "publishers": c.publishers,
			"inflight": c.inflight, "pipe": c.pipe, "ordered_pipe": c.orderedPipe, "spread": c.spread, "rate": c.rate,
			"latency_seconds_per_row": c.duration.Seconds(), "protocol": c.protocol, "bridge_env": c.bridgeEnv, "smoke": c.smoke, "hot_path_count": c.hotPathCount},
		Rows: rows, HotPath: res.hotPath, Targets: b.targets(rows, res), Problems: res.problems(),
	}
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format+"\n", args...) }
	p("## instant-bench: the comparison")
	p("")
	p("- Command: `%s`", rep.Command)
	p("- Date: %s, run time %s", rep.Date, res.wall.Round(time.Second))
	p("- Machine: %d CPUs (nproc), %s, %s, load average at start %s", info.cpus, info.cpuModel, info.kernel, info.loadavg)
	p("- Software: %s, %s, bridge built from commit %s, bridge settings: its defaults%s", info.goVersion, info.centrifugo, info.commit, envNote(c.bridgeEnv))
	p("- One Centrifugo (memory engine, history 100/300 s), one websocket subscriber (%s) on every channel; %d round(s), every row back to back in each; latency: %s per row at %s/s offered.",
		c.protocol, c.rounds, c.duration, thousands(float64(c.rate)))
	p("")
	reportRows(p, rows, c.rate)
	p("| Figure | Target | Measured | Met |")
	p("|---|---|---|---|")
	for _, t := range rep.Targets {
		p("| %s | %s | %s | %s |", t.Figure, t.Want, t.Measured, t.metText())
	}
	p("")
	reportHotPath(p, res.hotPath)
	reportRowCosts(p, rows)
	if len(rep.Problems) > 0 {
		p("### Problems")
		p("")
		for _, n := range rep.Problems {
			p("- %s", n)
		}
		p("")
	}
	return rep, b.writeJSON(rep)
}

func envNote(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return " except " + strings.Join(env, " ")
}

// reportRows prints the main table.
func reportRows(p func(string, ...any), rows []rowSummary, rate int) {
	p("| Row | Delivered/s (median) | × direct-batch | × direct-ordered | × centrifugo-consumer | Latency at %s/s p50 / p99 / max (ms) | Bridge peak RSS | Bridge CPU s / 100k | Lost | Dup | Out of order |", thousands(float64(rate)))
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		lat, rss, cpu := "-", "-", "-"
		if r.Latency != nil {
			lat = fmt.Sprintf("%.2f / %.2f / %.1f", r.Latency.P50, r.Latency.P99, r.Latency.Max)
		}
		if r.viaBridge {
			rss, cpu = mib(r.BridgePeakRSS), fmt.Sprintf("%.2f", r.BridgeCPUPer100k)
		}
		p("| %s | %s | %.2f | %.2f | %.2f | %s | %s | %s | %d | %d | %d |", r.Label, thousands(r.Rate),
			r.Ratio[rowDirectBatch], r.Ratio[rowOrdered], r.Ratio[rowConsumer], lat, rss, cpu, r.Lost, r.Duplicates, r.OutOfOrder)
	}
	p("")
	p("Delivered/s: distinct events at the subscriber / (first send to last delivery), median of the rounds; ratios: median of the rounds' ratios. Latency: send time written into the event, against the subscriber's clock. Bridge CPU: user+system from /proc over the throughput scenarios (receipts on). Lost, Dup, Out of order: throughput and latency scenarios (order per producer and channel).")
	p("")
}

// reportRowCosts prints the per-round rates and where the CPU went.
func reportRowCosts(p func(string, ...any), rows []rowSummary) {
	p("| Row | Delivered/s by round | Centrifugo CPU s / 100k | Benchmark process CPU s / 100k | Bridge requests: commands each, mean time (ms) |")
	p("|---|---|--:|--:|--:|")
	for _, r := range rows {
		var rs []string
		for _, x := range r.RoundRates {
			rs = append(rs, thousands(x))
		}
		req := "-"
		if r.CommandsPerRequest > 0 {
			req = fmt.Sprintf("%.0f, %.2f", r.CommandsPerRequest, r.MeanRequestMs)
		}
		p("| %s | %s | %.2f | %.2f | %s |", r.Name, strings.Join(rs, " / "), r.CentrifugoCPUPer100, r.BenchCPUPer100k, req)
	}
	p("")
	p("The benchmark process holds nats-server (with JetStream), the producers and the subscriber.")
	p("")
}

func (b *bench) writeJSON(rep compareReport) error {
	if b.cfg.jsonPath == "" {
		return nil
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(b.cfg.jsonPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write -json: %w", err)
	}
	b.logf("wrote %s", b.cfg.jsonPath)
	return nil
}

// problems lists what fails the run: losses, errors, reorderings on the
// bridge paths, streams not drained, a bridge that exited, a subscriber
// that lost its connection.
func (r *compareResults) problems() []string {
	var out []string
	for _, s := range r.all() {
		if s.lost() > 0 {
			out = append(out, fmt.Sprintf("%s: %d of %d lost", s.name, s.lost(), s.sent))
		}
		if s.errors > 0 || s.unanswered > 0 {
			out = append(out, fmt.Sprintf("%s: %d errors, %d unanswered (%s)", s.name, s.errors, s.unanswered, s.errDetail))
		}
		if s.viaBridge && s.reordered > 0 {
			out = append(out, fmt.Sprintf("%s: %d deliveries out of order", s.name, s.reordered))
		}
	}
	for name, st := range map[string]jsState{"bridge stream " + jsStream: r.jsState, "Centrifugo's stream " + cfStream: r.cfState} {
		if st.err != "" || st.streamMsgs > 0 || st.dlqMsgs > 0 || st.ackPending > 0 {
			out = append(out, fmt.Sprintf("%s after the run: %d left, %d dead letters, %d unacked %s", name, st.streamMsgs, st.dlqMsgs, st.ackPending, st.err))
		}
	}
	if len(r.disconnects) > 0 {
		out = append(out, fmt.Sprintf("subscriber lost its connection %d times: %s", len(r.disconnects), strings.Join(r.disconnects, "; ")))
	}
	if r.strays > 0 {
		out = append(out, fmt.Sprintf("%d publications arrived after their scenario's drain timeout or were unreadable", r.strays))
	}
	if r.lateDups > 0 {
		out = append(out, fmt.Sprintf("%d duplicates arrived after their scenario was counted (more than %s after its last event)", r.lateDups, lateCopyWait))
	}
	if r.exited {
		out = append(out, "a bridge process exited during the run")
	}
	return out
}

// compareVerdict fails the run on a problem; with strict, on a missed target too.
func compareVerdict(rep compareReport, strict bool) error {
	problems := rep.Problems
	if strict {
		for _, t := range rep.Targets {
			if t.Met != nil && !*t.Met {
				problems = append(problems, "missed: "+t.Figure+" "+t.Measured)
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errFailed, strings.Join(problems, "; "))
	}
	return nil
}
