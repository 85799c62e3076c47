package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// reportFlood prints the flood's Markdown report, writes -json, and fails
// the run when an envelope went unanswered or the bridge passed 128 MiB.
func (b *bench) reportFlood(results []floodResult) error {
	info := b.info
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format+"\n", args...) }
	p("## instant-bench: flood of the largest envelopes")
	p("")
	p("- Command: `%s`", b.command())
	p("- Date: %s; machine: %d CPUs, %s, load average at start %s; %s, %s, bridge from commit %s",
		info.start.Format(time.RFC3339), info.cpus, info.cpuModel, info.loadavg, info.goVersion, info.centrifugo, info.commit)
	p("- The bridge with its default settings%s (INSTANT_MAX_PENDING_BYTES 16 MiB, INSTANT_MAX_REQUEST_BYTES 4 MiB, NATS pending 16 MiB), one process per payload mode; %d producers, %d requests with receipts in flight each; Centrifugo without history, no subscriber.",
		envNote(b.cfg.bridgeEnv), b.cfg.publishers, b.cfg.floodFlight)
	p("- Every envelope: %d bytes, `channels` with %d channels, a message of `<`, `>` and `&` (six bytes each once escaped).", floodEnvelopeBytes, floodChannels)
	p("")
	p("| Payload mode | Encoded payload per envelope | Flood (s) | Sent | ok | Rejected (code: count) | Unanswered | Slow-consumer drops | Centrifugo requests | Bridge CPU (s) | **Bridge peak RSS (VmHWM)** | RSS at end |")
	p("|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|")
	var problems []string
	for _, r := range results {
		var codes []string
		for k, v := range r.Failed {
			codes = append(codes, fmt.Sprintf("%s: %d", k, v))
		}
		sort.Strings(codes)
		p("| %s | %s | %.1f | %d | %d | %s | %d | %.0f | %.0f | %.2f | **%s** | %s |", r.Mode, mib(int64(r.PayloadBytes)), r.Seconds, r.Sent, r.OK,
			strings.Join(codes, ", "), r.Unanswered, r.SlowConsumer, r.Requests, r.BridgeCPU, mib(r.PeakRSS), mib(r.RSSAtEnd))
		answered := r.OK
		for _, v := range r.Failed {
			answered += int64(v)
		}
		if r.Unanswered > 0 || answered != r.Sent {
			problems = append(problems, fmt.Sprintf("%s mode: %d sent, %d answered, %d unanswered", r.Mode, r.Sent, answered, r.Unanswered))
		}
		if r.PeakRSS >= 128<<20 {
			problems = append(problems, fmt.Sprintf("%s mode: bridge peak RSS %s ≥ 128 MiB", r.Mode, mib(r.PeakRSS)))
		}
	}
	p("")
	if b.cfg.jsonPath != "" {
		data, err := json.MarshalIndent(map[string]any{"command": b.command(), "date": info.start.Format(time.RFC3339),
			"machine": map[string]any{"cpus": info.cpus, "cpu_model": info.cpuModel, "load_average_at_start": info.loadavg, "commit": info.commit},
			"flood":   results, "problems": problems}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(b.cfg.jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write -json: %w", err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errFailed, strings.Join(problems, "; "))
	}
	return nil
}
