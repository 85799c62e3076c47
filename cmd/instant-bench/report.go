package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

// machineInfo describes where the run happened.
type machineInfo struct {
	start      time.Time
	cpus       int
	cpuModel   string
	kernel     string
	goVersion  string
	loadavg    string
	commit     string
	centrifugo string
}

func collectMachineInfo(ctx context.Context, modRoot string) machineInfo {
	m := machineInfo{start: time.Now().UTC(), cpus: runtime.NumCPU(), goVersion: runtime.Version(), cpuModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = modRoot
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if c := git("rev-parse", "--short", "HEAD"); c != "" {
		m.commit = c
		if git("status", "--porcelain", "--untracked-files=no") != "" {
			m.commit += " (working tree has uncommitted changes)"
		}
	}
	return m
}

// centrifugoVersion is the module version the binary was built from (a
// plain go install leaves "centrifugo version" at v0.0.0).
func centrifugoVersion(ctx context.Context, bin string) string {
	if bin == "" {
		var err error
		if bin, err = stack.FindCentrifugo(); err != nil {
			return "Centrifugo (version unknown)"
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" && strings.HasPrefix(f[1], "github.com/centrifugal/centrifugo") {
				return "Centrifugo " + f[2]
			}
		}
	}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return "Centrifugo (version unknown)"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func cpuShare(cpu, wall time.Duration) string {
	if wall <= 0 {
		return fmt.Sprintf("%.2f s", cpu.Seconds())
	}
	return fmt.Sprintf("%.2f s (%.0f%%)", cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds())
}

// slowest is the longest HTTP request of a scenario, in ms.
func slowest(s *scenario) string {
	if !s.viaBridge {
		return ms(s.slowestRequest)
	}
	if le := s.bridge.slowestRequest(); le > 0 && !math.IsInf(le, 1) {
		return fmt.Sprintf("≤ %.1f", le*1000)
	}
	return "> 8192"
}

// report prints the Markdown report.
func (b *bench) report(r *results) {
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format+"\n", args...) }
	b.reportHeader(p, r)
	b.reportThroughput(p, r)
	b.reportLatency(p, r)
	b.reportTargets(p, r)
	b.reportCPU(p, r)
	if len(r.jsTP) > 0 {
		b.reportJetStream(p, r)
	}
	reportProblems(p, r)
}

// reportHeader prints the title and where and how the run happened.
func (b *bench) reportHeader(p func(string, ...any), r *results) {
	c := b.cfg
	info := b.info
	cmd := "go run ./cmd/instant-bench"
	if len(b.args) > 0 {
		cmd += " " + strings.Join(b.args, " ")
	}
	p("## instant-bench results")
	p("")
	p("- Command: `%s`", cmd)
	p("- Date: %s, run time %s", info.start.Format(time.RFC3339), r.wall.Round(time.Second))
	p("- Machine: %d CPUs (nproc), %s, %s, load average at start %s", info.cpus, info.cpuModel, info.kernel, info.loadavg)
	p("- Software: %s, %s, bridge built from commit %s", info.goVersion, info.centrifugo, info.commit)
	chans := fmt.Sprintf("channel `%s`", c.channel)
	if c.channels > 1 {
		chans = fmt.Sprintf("%d channels `%s`..`%s` (messages round-robin)", c.channels, c.channel, c.channelNames()[c.channels-1])
	}
	p("- Everything on this machine: embedded nats-server, Centrifugo, the bridge process, producers and one websocket subscriber (%s protocol) on %s.", c.protocol, chans)
	if c.clientQueue > 0 {
		p("- Centrifugo as the integration tests run it (memory engine, history 100/300s), with client.queue_max_size %s.", mib(int64(c.clientQueue)))
	}
	p("")
}

// reportThroughput prints the throughput scenarios, round by round.
func (b *bench) reportThroughput(p func(string, ...any), r *results) {
	c := b.cfg
	p("### Throughput: %s messages per scenario, %d publishers, %d rounds", thousands(float64(c.messages)), c.publishers, c.rounds)
	p("")
	p("| Scenario | Sent | Delivered | Lost | First send to last delivery | Delivered/s | Bridge/direct | Latency p50 (ms) | p99 (ms) | max (ms) | Slowest HTTP request (ms) |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	ratios := r.ratios()
	for i := range r.directTP {
		for _, s := range []*scenario{r.directTP[i], r.bridgeTP[i]} {
			ratio := ""
			if s.viaBridge {
				ratio = fmt.Sprintf("%.2f", ratios[i])
			}
			p("| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |", s.name, s.sent, s.delivered, s.lost(), s.elapsed.Round(time.Millisecond),
				thousands(s.rate()), ratio, ms(s.pct(0.5)), ms(s.pct(0.99)), ms(s.pct(1)), slowest(s))
		}
	}
	p("")
	p("Direct: gocent `Pipe`, %d publishes per HTTP request, one request in flight per publisher. Bridge: NATS requests to `%s` with receipts, %d in flight per producer, each producer on its own connection. Latency under saturation is queueing time, not the latency target. Slowest HTTP request: measured around `SendPipe` by the direct publishers; for the bridge, the upper bound of its request-duration histogram bucket (≤).", c.pipe, subject, c.inflight)
	p("")
}

// reportLatency prints the latency scenarios.
func (b *bench) reportLatency(p func(string, ...any), r *results) {
	c := b.cfg
	dl, bl := r.latency()
	p("### Latency at %s envelopes/s, %s per path (%d rounds of %s)", thousands(float64(c.rate)), c.duration, c.rounds, (c.duration / time.Duration(c.rounds)).Round(time.Millisecond))
	p("")
	p("| Path | Sent | Delivered | Lost | Achieved send rate | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	latRows := []*scenario{dl, bl}
	if len(r.jsLat) > 0 {
		latRows = append(latRows, merge("3c. jetstream latency", r.jsLat))
	}
	for _, s := range latRows {
		sendRate := 0.0
		if s.sendTime > 0 {
			sendRate = float64(s.sent) / s.sendTime.Seconds()
		}
		p("| %s | %d | %d | %d | %s/s | %s | %s | %s | %s |", s.name, s.sent, s.delivered, s.lost(), thousands(sendRate),
			ms(s.pct(0.5)), ms(s.pct(0.9)), ms(s.pct(0.99)), ms(s.pct(1)))
	}
	p("")
	var perRound []string
	for i := range r.directLat {
		perRound = append(perRound, fmt.Sprintf("round %d: %s / %s ms", i+1, ms(r.directLat[i].pct(0.99)), ms(r.bridgeLat[i].pct(0.99))))
	}
	p("p99 direct / bridge per round: %s.", strings.Join(perRound, ", "))
	p("")
	p("End to end: send time written into the message by the producer, compared with the clock when the subscriber's callback runs; percentiles over all rounds' samples. Direct: one gocent `Publish` HTTP request per event (up to %d concurrent). Bridge: one NATS request per event from one producer, receipts awaited asynchronously.", latencyWorkers)
	p("")
}

// reportTargets prints the targets and whether they were met.
func (b *bench) reportTargets(p func(string, ...any), r *results) {
	c := b.cfg
	ratios := r.ratios()
	dl, bl := r.latency()
	p("### Targets")
	p("")
	p("| Target | Measured | Met |")
	p("|---|---|---|")
	var rs []string
	for _, x := range ratios {
		rs = append(rs, fmt.Sprintf("%.2f", x))
	}
	p("| bridge delivered rate ≥ %.1f× direct | %.2f× (median of rounds: %s) | %s |", targetRatio, r.ratio(), strings.Join(rs, ", "), yes(r.ratio() >= targetRatio))
	p("| bridge adds ≤ %s ms to p99 at %s/s | %+.2f ms (p99 %s vs %s ms) | %s |", ms(targetP99Delta), thousands(float64(c.rate)), float64(r.p99Delta())/float64(time.Millisecond),
		ms(bl.pct(0.99)), ms(dl.pct(0.99)), yes(r.p99Delta() <= targetP99Delta))
	p("| bridge peak RSS < 64 MiB | %s VmHWM (VmRSS at end %s) | %s |", mib(r.bridgeMem.HWM), mib(r.bridgeMem.RSS), yes(r.bridgeMem.HWM < targetRSS))
	lost, dups, errs := 0, r.lateDups, 0
	for _, s := range r.all() {
		lost += s.lost()
		dups += s.dups
		errs += s.errors + s.unanswered
	}
	p("| nothing lost | %d lost, %d duplicates, %d failed or unanswered publishes, %d subscriber disconnects (warm-ups included) | %s |", lost, dups, errs, len(r.disconnects),
		yes(lost == 0 && errs == 0 && len(r.disconnects) == 0))
	p("")
}

// reportCPU prints where the CPU went in each kind of scenario.
func (b *bench) reportCPU(p func(string, ...any), r *results) {
	dl, bl := r.latency()
	p("### Where the CPU went")
	p("")
	p("CPU time used during each kind of scenario, summed over the rounds (user+system, from /proc; %% of one core over the scenario's wall time). The benchmark process holds nats-server, the producers and the subscriber.")
	p("")
	p("| Scenario | Wall | Benchmark process | Centrifugo | Bridge | Bridge requests | Commands per request | Mean request time (ms) | Bridge VmHWM after |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	cpuRows := []*scenario{merge("1. direct throughput", r.directTP), merge("2. bridge throughput", r.bridgeTP), dl, bl}
	if len(r.jsTP) > 0 {
		cpuRows = append(cpuRows, merge("2b. jetstream throughput", r.jsTP), merge("3c. jetstream latency", r.jsLat))
	}
	for _, s := range cpuRows {
		reqs, per, reqTime, hwm := "-", "-", "-", "-"
		if s.viaBridge {
			reqs = thousands(s.bridge.requests)
			if s.bridge.requests > 0 {
				per = fmt.Sprintf("%.1f", s.bridge.commands/s.bridge.requests)
				reqTime = fmt.Sprintf("%.2f", 1000*s.bridge.requestSeconds/s.bridge.requests)
			}
			hwm = mib(s.bridgeHWM)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", s.name, s.elapsed.Round(time.Millisecond), cpuShare(s.cpuBench, s.elapsed), cpuShare(s.cpuCF, s.elapsed),
			cpuShare(s.cpuBridge, s.elapsed), reqs, per, reqTime, hwm)
	}
	p("")
	p("Bridge request time is measured by the bridge around its Centrifugo sender's `Send` (its JSON encoding of the batch, the HTTP round trip and the decoding of the replies).")
	p("")
}

// reportProblems lists errors, reorderings, bridge trouble and subscriber
// disconnects, if any.
func reportProblems(p func(string, ...any), r *results) {
	var notes []string
	for _, s := range r.all() {
		if s.errDetail != "" {
			notes = append(notes, fmt.Sprintf("%s errors: %s", s.name, s.errDetail))
		}
		if s.reordered > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d deliveries arrived after a later message of the same producer", s.name, s.reordered))
		}
		if s.bridge.naks > 0 || s.bridge.terms > 0 || s.bridge.redeliveries > 0 {
			notes = append(notes, fmt.Sprintf("%s jetstream bridge: %.0f naks, %.0f terms (dead letters), %.0f redeliveries", s.name, s.bridge.naks, s.bridge.terms, s.bridge.redeliveries))
		}
		if s.bridge.rejected > 0 || s.bridge.dropped > 0 || s.bridge.requestErrors > 0 || s.bridge.receiptErrors > 0 {
			notes = append(notes, fmt.Sprintf("%s bridge metrics: %.0f rejected, %.0f slow-consumer drops, %.0f failed Centrifugo requests, %.0f receipt errors",
				s.name, s.bridge.rejected, s.bridge.dropped, s.bridge.requestErrors, s.bridge.receiptErrors))
		}
	}
	if r.strays > 0 {
		notes = append(notes, fmt.Sprintf("%d publications arrived after their scenario's drain timeout or were unreadable", r.strays))
	}
	if r.lateDups > 0 {
		notes = append(notes, fmt.Sprintf("%d duplicates arrived after their scenario was counted (more than %s after its last event)", r.lateDups, lateCopyWait))
	}
	counts := map[string]int{}
	var order []string
	for _, d := range r.disconnects {
		if counts[d] == 0 {
			order = append(order, d)
		}
		counts[d]++
	}
	for _, d := range order {
		notes = append(notes, fmt.Sprintf("subscriber connection lost %d× (%s): publications meanwhile are lost to it", counts[d], d))
	}
	if len(notes) > 0 {
		p("### Problems")
		p("")
		for _, n := range notes {
			p("- %s", n)
		}
		p("")
	}
}

// per is n/d with three decimals, "-" when d is 0.
func per(n, d float64) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", n/d)
}

// median of v (0 when empty).
func median(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	switch {
	case len(v) == 0:
		return 0
	case len(v)%2 == 1:
		return v[len(v)/2]
	default:
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
}

// reportJetStream prints the -jetstream section.
func (b *bench) reportJetStream(p func(string, ...any), r *results) {
	c := b.cfg
	p("### JetStream mode")
	p("")
	p("A second bridge process with `INSTANT_DELIVERY=jetstream` and `INSTANT_SUBJECT=%s` (otherwise the same settings), consuming the stream `%s` (file storage in the temporary directory, work queue) through the durable pull consumer `%s`. Producers: %d connections publishing with JetStream async publish (`jetstream.PublishAsync`), at most %d publish acks pending each, all awaited; the publish acks are the producers' round trips, not the bridge's. The core bridge runs alongside on `%s`, idle during these scenarios.", jsSubject, jsStream, jsConsumer, c.publishers, c.inflight, subject)
	p("")
	p("| Round | Direct msg/s | Core bridge msg/s | JetStream msg/s | JetStream/core | JetStream/direct | Stored/s (publish acks) | Lost | Duplicates | Out of order | Latency p50 (ms) | p99 (ms) | Publish errors |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	var vsCore, vsDirect []float64
	for i, s := range r.jsTP {
		d, cb := r.directTP[i].rate(), r.bridgeTP[i].rate()
		rc, rd := 0.0, 0.0
		if cb > 0 {
			rc = s.rate() / cb
		}
		if d > 0 {
			rd = s.rate() / d
		}
		vsCore, vsDirect = append(vsCore, rc), append(vsDirect, rd)
		stored := 0.0
		if s.sendTime > 0 {
			stored = float64(s.sent) / s.sendTime.Seconds()
		}
		p("| %d | %s | %s | %s | %.2f | %.2f | %s | %d | %d | %d | %s | %s | %d |", i+1, thousands(d), thousands(cb), thousands(s.rate()), rc, rd,
			thousands(stored), s.lost(), s.dups, s.reordered, ms(s.pct(0.5)), ms(s.pct(0.99)), s.errors+s.unanswered)
	}
	p("")
	p("Medians of the rounds: jetstream/core bridge %.2f, jetstream/direct %.2f. Delivered/s: first publish to last delivery, as for the other scenarios. Stored/s: envelopes / (first publish to the last publish ack).", median(vsCore), median(vsDirect))
	p("")
	_, bl := r.latency()
	jl := merge("3c. jetstream latency", r.jsLat)
	p("Latency at %s envelopes/s (table above): p50 %s ms, p99 %s ms through the jetstream bridge vs %s / %s ms through the core bridge. Peak RSS of the jetstream bridge: %s VmHWM (VmRSS at end %s).",
		thousands(float64(c.rate)), ms(jl.pct(0.5)), ms(jl.pct(0.99)), ms(bl.pct(0.5)), ms(bl.pct(0.99)), mib(r.jsMem.HWM), mib(r.jsMem.RSS))
	p("")

	tp := merge("2b. jetstream throughput", r.jsTP)
	p("#### Acks")
	p("")
	p("Summed over the rounds. Acks sent: the bridge's `instant_bridge_jetstream_acks_total{kind=\"ack\"}`; acks on NATS: messages on `$JS.ACK.>` seen by a subscription of the benchmark (only the bridge acks in this setup), and how many of them carried a reply subject (a reply subject is how a NATS message asks for an answer: an ack without one gets none).")
	p("")
	p("| Scenario | Envelopes delivered | Centrifugo requests | Commands per request | Acks sent | Naks / terms / redeliveries | Acks on NATS | … with a reply subject | Acks per Centrifugo request | Acks per envelope |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range []*scenario{tp, jl} {
		m := s.bridge
		p("| %s | %d | %s | %s | %s | %.0f / %.0f / %.0f | %s | %d | %s | %s |", s.name, s.delivered, thousands(m.requests), per(m.commands, m.requests),
			thousands(m.acks), m.naks, m.terms, m.redeliveries, thousands(float64(s.js.acks)), s.js.acksWithReply,
			per(m.acks, m.requests), per(m.acks, float64(s.delivered)))
	}
	p("")
	if v, ok := b.js.watch.firstAckSubject.Load().(string); ok {
		p("An ack as NATS saw it (subject, then body): `%s`.", v)
		p("")
	}

	p("#### Round trips and messages between the bridge and NATS")
	p("")
	p("Requests expecting a reply: JetStream API requests seen on `$JS.API.>` by the benchmark's subscription (pull requests `CONSUMER.MSG.NEXT.%s.%s`, each asking for up to a batch of envelopes; `CONSUMER.INFO`, the bridge's 2-second lag poll; any other). Messages published by / delivered to the bridge: the server's counters of the bridge's connection (`in_msgs` / `out_msgs` of its Connz, as `/connz` shows them). Write syscalls: `syscw` of `/proc/<pid>/io`, every `write` of the bridge process (NATS and Centrifugo sockets, logs). Core bridge rows for comparison: it answers every request with a receipt.", jsStream, jsConsumer)
	p("")
	p("| Scenario | Envelopes | Pull requests | Consumer info | Other API | Requests expecting a reply per envelope | Messages published by the bridge | per envelope | Messages delivered to the bridge | per envelope | Bridge write syscalls | per envelope |")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range []*scenario{merge("2. bridge throughput (core)", r.bridgeTP), tp, merge("3b. bridge latency (core)", r.bridgeLat), jl} {
		pulls, infos, other, rt := "-", "-", "-", "-"
		if s.jetstream {
			pulls, infos, other = thousands(float64(s.js.pulls)), thousands(float64(s.js.infos)), thousands(float64(s.js.otherAPI))
			rt = per(float64(s.js.apiWithReply), float64(s.delivered))
		}
		d := float64(s.delivered)
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", s.name, s.delivered, pulls, infos, other, rt,
			thousands(float64(s.conn.inMsgs)), per(float64(s.conn.inMsgs), d), thousands(float64(s.conn.outMsgs)), per(float64(s.conn.outMsgs), d),
			thousands(float64(s.writes)), per(float64(s.writes), d))
	}
	p("")
	st := r.jsState
	p("After the run: %d envelopes left in the stream, %d dead letters, %d delivered and not acked, %d pending, %d redelivered now (consumer info).%s",
		st.streamMsgs, st.dlqMsgs, st.ackPending, st.pending, st.redeliveredNow, map[bool]string{true: " Errors: " + st.err, false: ""}[st.err != ""])
	p("")
}
