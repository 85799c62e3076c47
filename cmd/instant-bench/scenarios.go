package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/internal/stack"
)

// errFailed marks a run that completed but failed its checks (exit 1).
var errFailed = errors.New("benchmark failed")

// Run tags carried in every message's data: warm-ups, then one per
// scenario of each round (kinds per round).
const (
	runWarmupDirect = iota + 1
	runWarmupBridge
	runWarmupJetStream
	runFirstRound
)

func runTag(round, i, kinds int) int { return runFirstRound + kinds*round + i }

// path is how a scenario's messages reach Centrifugo.
type path int

const (
	pathDirect    path = iota // HTTP API
	pathBridge                // NATS requests through the core-mode bridge
	pathJetStream             // JetStream async publish, through the jetstream-mode bridge
)

// scenario is the measurement of one scenario (or, merged, of one kind
// over all rounds).
type scenario struct {
	name      string
	viaBridge bool
	jetstream bool // via the jetstream-mode bridge
	paced     bool // latency scenario at a fixed rate

	sent       int
	delivered  int
	dups       int
	errors     int // failed publishes or failed receipts
	errDetail  string
	unanswered int // requests without a receipt after the drain timeout

	slowestRequest time.Duration // longest direct HTTP request

	elapsed  time.Duration   // first send to last delivery
	sendTime time.Duration   // first to last send
	lat      []time.Duration // sorted

	cpuBench, cpuCF, cpuBridge time.Duration
	bridge                     bridgeMetrics // deltas over the scenario, bridge scenarios
	bridgeHWM                  int64         // bridge VmHWM after the scenario

	reordered int       // deliveries older than one already delivered from the same producer
	conn      connStats // the bridge's NATS connection, as the server counts it (deltas)
	writes    int64     // the bridge's write system calls (delta)
	js        jsCounts  // jetstream scenarios: acks and API requests seen on NATS (deltas)
}

func (s *scenario) lost() int { return s.sent - s.delivered }

// rate is messages delivered per second, first send to last delivery.
func (s *scenario) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.delivered) / s.elapsed.Seconds()
}

func (s *scenario) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(float64(len(s.lat))*p+0.5) - 1 // nearest rank
	return s.lat[min(max(i, 0), len(s.lat)-1)]
}

// merge sums scenarios of one kind over the rounds; latencies are pooled.
func merge(name string, parts []*scenario) *scenario {
	m := &scenario{name: name}
	var details []string
	for _, s := range parts {
		m.viaBridge, m.paced, m.jetstream = s.viaBridge, s.paced, s.jetstream
		m.reordered += s.reordered
		m.conn = m.conn.add(s.conn)
		m.writes += s.writes
		m.js = m.js.add(s.js)
		m.sent += s.sent
		m.delivered += s.delivered
		m.dups += s.dups
		m.errors += s.errors
		m.unanswered += s.unanswered
		if s.errDetail != "" {
			details = append(details, s.errDetail)
		}
		m.elapsed += s.elapsed
		m.sendTime += s.sendTime
		m.lat = append(m.lat, s.lat...)
		m.cpuBench += s.cpuBench
		m.cpuCF += s.cpuCF
		m.cpuBridge += s.cpuBridge
		m.bridge = m.bridge.add(s.bridge)
		m.bridgeHWM = max(m.bridgeHWM, s.bridgeHWM)
		m.slowestRequest = max(m.slowestRequest, s.slowestRequest)
	}
	m.errDetail = strings.Join(details, "; ")
	slices.Sort(m.lat)
	return m
}

// results are all measurements of a run.
type results struct {
	warmup               []*scenario
	directTP, bridgeTP   []*scenario // one per round
	directLat, bridgeLat []*scenario // one per round
	jsTP, jsLat          []*scenario // one per round, with -jetstream
	bridgeMem            stack.ProcMem
	jsMem                stack.ProcMem // the jetstream bridge's
	jsState              jsState       // stream and consumer after the run
	strays, lateDups     int
	disconnects          []string
	bridgeExited         bool
	wall                 time.Duration
}

func (r *results) all() []*scenario {
	all := slices.Clone(r.warmup)
	for _, l := range [][]*scenario{r.directTP, r.bridgeTP, r.jsTP, r.directLat, r.bridgeLat, r.jsLat} {
		all = append(all, l...)
	}
	return all
}

// ratios are bridge/direct delivered rates, one per round.
func (r *results) ratios() []float64 {
	out := make([]float64, len(r.directTP))
	for i := range r.directTP {
		if d := r.directTP[i].rate(); d > 0 {
			out[i] = r.bridgeTP[i].rate() / d
		}
	}
	return out
}

// ratio is the median of the rounds' ratios: each round runs direct and
// bridge back to back, so both see about the same background load.
func (r *results) ratio() float64 {
	v := slices.Sorted(slices.Values(r.ratios()))
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r *results) latency() (direct, bridge *scenario) {
	return merge("3a. direct latency", r.directLat), merge("3b. bridge latency", r.bridgeLat)
}

func (r *results) p99Delta() time.Duration {
	d, b := r.latency()
	return b.pct(0.99) - d.pct(0.99)
}

const (
	targetRatio    = 0.6
	targetP99Delta = 2 * time.Millisecond
	targetRSS      = 64 << 20
)

// verdict fails the run on lost messages, errors, dropped subscriber
// connections or a bridge that exited; with strict, on a missed target too.
func (r *results) verdict(strict bool) error {
	var problems []string
	for _, s := range r.all() {
		if s.lost() > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d of %d lost", s.name, s.lost(), s.sent))
		}
		if s.errors > 0 || s.unanswered > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d errors, %d unanswered requests", s.name, s.errors, s.unanswered))
		}
		if s.viaBridge && s.reordered > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d deliveries out of order", s.name, s.reordered))
		}
	}
	if st := r.jsState; st.err != "" || st.streamMsgs > 0 || st.dlqMsgs > 0 || st.ackPending > 0 {
		if len(r.jsTP) > 0 {
			problems = append(problems, fmt.Sprintf("jetstream state after the run: %d envelopes left in the stream, %d dead letters, %d unacked %s",
				st.streamMsgs, st.dlqMsgs, st.ackPending, st.err))
		}
	}
	if len(r.disconnects) > 0 {
		problems = append(problems, fmt.Sprintf("subscriber disconnected %d times", len(r.disconnects)))
	}
	if r.bridgeExited {
		problems = append(problems, "the bridge process exited during the run")
	}
	if strict {
		if r.ratio() < targetRatio {
			problems = append(problems, fmt.Sprintf("throughput ratio %.2f < %.1f", r.ratio(), targetRatio))
		}
		if r.p99Delta() > targetP99Delta {
			problems = append(problems, fmt.Sprintf("bridge adds %v to p99 > %v", r.p99Delta(), targetP99Delta))
		}
		if r.bridgeMem.HWM >= targetRSS {
			problems = append(problems, fmt.Sprintf("bridge peak RSS %s >= 64 MiB", mib(r.bridgeMem.HWM)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %v", errFailed, problems)
	}
	return nil
}

func (b *bench) runScenarios(ctx context.Context) (*results, error) {
	res := &results{}
	start := time.Now()
	direct := directPayload{ids: ids.New(), channels: b.cfg.channelNames()}

	producers := make([]*natsProducer, b.cfg.publishers)
	for i := range producers {
		p, err := newNATSProducer(b.nats.URL(), fmt.Sprintf("instant-bench-producer-%d", i), b.cfg.inflight)
		if err != nil {
			return nil, err
		}
		defer p.close()
		producers[i] = p
	}
	step := func(name string, f func() (*scenario, error)) (*scenario, error) {
		return b.step(ctx, res, name, f)
	}
	warmups := []path{pathDirect, pathBridge}
	if b.js != nil {
		warmups = append(warmups, pathJetStream)
	}
	for i, pa := range warmups {
		name := []string{"warm-up direct", "warm-up bridge", "warm-up jetstream"}[i]
		s, err := step(name, func() (*scenario, error) {
			return b.throughput(ctx, name, runWarmupDirect+i, b.cfg.warmup, pa, direct, producers)
		})
		if err != nil {
			return nil, err
		}
		res.warmup = append(res.warmup, s)
	}
	kinds := b.scenarioKinds(ctx, res, direct, producers)
	for round := range b.cfg.rounds {
		for i, k := range kinds {
			name := fmt.Sprintf("%s (round %d)", k.name, round+1)
			s, err := step(name, func() (*scenario, error) { return k.run(name, runTag(round, i, len(kinds))) })
			if err != nil {
				return nil, err
			}
			*k.dst = append(*k.dst, s)
		}
	}
	if err := b.readFinalState(ctx, res); err != nil {
		return nil, err
	}
	res.wall = time.Since(start)
	return res, nil
}

// step runs one scenario f, unless a bridge has exited, and logs its outcome.
func (b *bench) step(ctx context.Context, res *results, name string, f func() (*scenario, error)) (*scenario, error) {
	if b.bridge.Exited() {
		res.bridgeExited = true
		return nil, fmt.Errorf("bridge exited before %s:\n%s", name, b.bridge.LogTail(4000))
	}
	if b.jsBridge != nil && b.jsBridge.Exited() {
		res.bridgeExited = true
		return nil, fmt.Errorf("jetstream bridge exited before %s:\n%s", name, b.jsBridge.LogTail(4000))
	}
	b.logf("%s", name)
	_, _, before := b.sub.problems()
	s, err := f()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b.logf("  %d sent, %d delivered, %.0f msg/s, p50 %v p99 %v", s.sent, s.delivered, s.rate(), s.pct(0.5).Round(10*time.Microsecond), s.pct(0.99).Round(10*time.Microsecond))
	if _, _, after := b.sub.problems(); len(after) > len(before) {
		b.logf("  subscriber disconnected: %v", after[len(before):])
	}
	// Let the last scenario's garbage and sockets settle.
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s, nil
}

// kind is one kind of scenario of a round; run runs it once.
type kind struct {
	name string
	dst  *[]*scenario
	run  func(name string, tag int) (*scenario, error)
}

// scenarioKinds are the scenarios of every round, in order.
func (b *bench) scenarioKinds(ctx context.Context, res *results, direct directPayload, producers []*natsProducer) []kind {
	perRound := time.Duration(int64(b.cfg.duration) / int64(b.cfg.rounds))
	tp := func(name string, dst *[]*scenario, pa path) kind {
		return kind{name, dst, func(name string, tag int) (*scenario, error) {
			return b.throughput(ctx, name, tag, b.cfg.messages, pa, direct, producers)
		}}
	}
	kinds := []kind{tp("1. direct throughput", &res.directTP, pathDirect), tp("2. bridge throughput", &res.bridgeTP, pathBridge)}
	if b.js != nil {
		kinds = append(kinds, tp("2b. jetstream throughput", &res.jsTP, pathJetStream))
	}
	kinds = append(kinds,
		kind{"3a. direct latency", &res.directLat, func(name string, tag int) (*scenario, error) {
			return b.directLatency(ctx, name, tag, perRound, direct, latencyWorkers)
		}},
		kind{"3b. bridge latency", &res.bridgeLat, func(name string, tag int) (*scenario, error) {
			return b.bridgeLatency(ctx, name, tag, perRound, producers[0], direct)
		}})
	if b.js != nil {
		kinds = append(kinds, kind{"3c. jetstream latency", &res.jsLat, func(name string, tag int) (*scenario, error) {
			return b.jetstreamLatency(ctx, name, tag, perRound, direct)
		}})
	}
	return kinds
}

// readFinalState reads, after the last scenario, the bridges' peak memory,
// whether they still run, the jetstream state and the subscriber's problems.
func (b *bench) readFinalState(ctx context.Context, res *results) error {
	var err error
	if res.bridgeMem, err = stack.ReadProcMem(b.bridge.PID()); err != nil {
		return fmt.Errorf("bridge memory: %w", err)
	}
	res.bridgeExited = b.bridge.Exited()
	if b.jsBridge != nil {
		if res.jsMem, err = stack.ReadProcMem(b.jsBridge.PID()); err != nil {
			return fmt.Errorf("jetstream bridge memory: %w", err)
		}
		res.bridgeExited = res.bridgeExited || b.jsBridge.Exited()
		res.jsState = b.js.state(ctx)
	}
	// Each bridge scenario resets its bridge's VmHWM: the run's peak is
	// the largest of theirs.
	for _, s := range res.all() {
		switch {
		case s.jetstream:
			res.jsMem.HWM = max(res.jsMem.HWM, s.bridgeHWM)
		case s.viaBridge:
			res.bridgeMem.HWM = max(res.bridgeMem.HWM, s.bridgeHWM)
		}
	}
	res.strays, res.lateDups, res.disconnects = b.sub.problems()
	return nil
}

// measure wraps a scenario: CPU and counters of the bridge bp (nil for a
// scenario without a bridge: the core bridge's are read, and stay at zero)
// before and after, its peak RSS over the scenario, the wait for
// deliveries, and the tally. With producers > 0 the subscriber checks their
// order on each of channels (see tally).
func (b *bench) measure(ctx context.Context, s *scenario, bp *stack.Bridge, run, total, producers, channels int, send func() (firstSend time.Time, err error)) error {
	if bp == nil {
		bp = b.bridge
	}
	if s.viaBridge {
		if err := stack.ResetPeakRSS(bp.PID()); err != nil {
			return err
		}
	}
	t := b.sub.expect(run, total, producers, channels)
	m0, err := bridgeMetricsOf(bp)
	if err != nil {
		return fmt.Errorf("bridge metrics: %w", err)
	}
	var w0 jsCounts
	if s.jetstream && b.js.watch != nil {
		w0 = b.js.watch.snapshot()
	}
	c0, _ := connStatsOf(b.nats.Server(), bp.Name())
	wr0 := stack.ProcWrites(bp.PID())
	cpu0 := [3]time.Duration{stack.ProcCPU(0), stack.ProcCPU(b.cfPID), stack.ProcCPU(bp.PID())}
	first, err := send()
	if err != nil {
		return err
	}
	got, err := b.sub.wait(ctx, t, b.cfg.drainTimeout)
	if err != nil {
		return err
	}
	if s.jetstream {
		b.settleAcks(ctx, m0, w0, got.distinct, 5*time.Second)
	}
	s.cpuBench, s.cpuCF, s.cpuBridge = stack.ProcCPU(0)-cpu0[0], stack.ProcCPU(b.cfPID)-cpu0[1], stack.ProcCPU(bp.PID())-cpu0[2]
	m1, err := bridgeMetricsOf(bp)
	if err != nil {
		return fmt.Errorf("bridge metrics: %w", err)
	}
	s.bridge = m1.sub(m0)
	if s.jetstream && b.js.watch != nil {
		s.js = b.js.watch.snapshot().sub(w0)
	}
	if c1, err := connStatsOf(b.nats.Server(), bp.Name()); err == nil {
		s.conn = c1.sub(c0)
	}
	s.writes = stack.ProcWrites(bp.PID()) - wr0
	if mem, err := stack.ReadProcMem(bp.PID()); err == nil {
		s.bridgeHWM = mem.HWM
	}
	s.sent = total
	s.delivered, s.dups, s.reordered = got.distinct, got.dups, got.reordered
	if !got.last.IsZero() {
		s.elapsed = got.last.Sub(first)
	}
	s.lat = got.lat
	slices.Sort(s.lat)
	return nil
}

// throughput sends total messages as fast as possible with
// b.cfg.publishers senders: direct (gocent Pipe), through the bridge (NATS
// requests with receipts) or through the jetstream bridge (JetStream async
// publish, publish acks awaited).
func (b *bench) throughput(ctx context.Context, name string, run, total int, pa path, direct directPayload, producers []*natsProducer) (*scenario, error) {
	s := &scenario{name: name, viaBridge: pa != pathDirect, jetstream: pa == pathJetStream}
	var (
		errs    errorCounts
		slowest maxDuration
		bp      *stack.Bridge
	)
	if pa == pathJetStream {
		bp = b.jsBridge
	}
	n := b.cfg.publishers
	err := b.measure(ctx, s, bp, run, total, n, len(direct.channels), func() (time.Time, error) {
		first := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			lo, hi := total*i/n, total*(i+1)/n
			wg.Go(func() {
				switch pa {
				case pathDirect:
					directPipe(ctx, b.api, direct, run, lo, hi, b.cfg.pipe, &errs, &slowest)
				case pathBridge:
					p := producers[i]
					buf := make([]byte, 0, 128)
					for seq := lo; seq < hi; seq++ {
						if p.send(ctx, envelopeBytes(buf[:0], direct.channel(seq), run, seq)) != nil {
							return
						}
					}
				case pathJetStream:
					p := b.js.producers[i]
					for seq := lo; seq < hi && ctx.Err() == nil; seq++ {
						if p.send(envelopeBytes(nil, direct.channel(seq), run, seq)) != nil {
							return
						}
					}
				}
			})
		}
		wg.Wait()
		switch pa {
		case pathBridge:
			for _, p := range producers {
				s.unanswered += p.waitReceipts(ctx, b.cfg.drainTimeout)
			}
		case pathJetStream:
			for _, p := range b.js.producers {
				s.unanswered += p.waitAcks(ctx, b.cfg.drainTimeout)
			}
		}
		s.sendTime = time.Since(first)
		return first, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	switch pa {
	case pathBridge:
		for _, p := range producers {
			p.failed.take(&errs)
		}
	case pathJetStream:
		for _, p := range b.js.producers {
			p.failed.take(&errs)
		}
	}
	s.errors, s.errDetail = errs.total(), errs.String()
	s.slowestRequest = slowest.get()
	return s, nil
}

// latencyWorkers bounds the concurrent HTTP requests of the paced direct
// scenario; at 1,000/s and about a millisecond per request few are busy.
const latencyWorkers = 32

// directLatency publishes at b.cfg.rate with one HTTP request per event,
// at most workers at a time.
func (b *bench) directLatency(ctx context.Context, name string, run int, d time.Duration, direct directPayload, workers int) (*scenario, error) {
	s := &scenario{name: name, paced: true}
	total := int(float64(b.cfg.rate) * d.Seconds())
	var (
		errs    errorCounts
		slowest maxDuration
	)
	// Concurrent workers: no order to check.
	err := b.measure(ctx, s, nil, run, total, 0, 0, func() (time.Time, error) {
		type job struct {
			seq  int
			data []byte
		}
		jobs := make(chan job, total)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for j := range jobs {
					start := time.Now()
					_, err := b.api.Publish(ctx, direct.channel(j.seq), j.data)
					slowest.observe(time.Since(start))
					if err != nil {
						errs.add("direct publish: " + err.Error())
					}
				}
			})
		}
		first := time.Now()
		// Stamped when offered: with few workers, the wait for a free one
		// is part of the latency, as for an application publishing inline.
		s.sendTime = pace(ctx, total, b.cfg.rate, func(i int) { jobs <- job{i, direct.build(nil, run, i)} })
		close(jobs)
		wg.Wait()
		return first, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	s.errors, s.errDetail = errs.total(), errs.String()
	s.slowestRequest = slowest.get()
	return s, nil
}

// bridgeLatency sends NATS requests at b.cfg.rate from one producer.
func (b *bench) bridgeLatency(ctx context.Context, name string, run int, d time.Duration, p *natsProducer, direct directPayload) (*scenario, error) {
	s := &scenario{name: name, viaBridge: true, paced: true}
	total := int(float64(b.cfg.rate) * d.Seconds())
	okBefore := p.ok.Load()
	err := b.measure(ctx, s, nil, run, total, 1, len(direct.channels), func() (time.Time, error) {
		buf := make([]byte, 0, 128)
		first := time.Now()
		s.sendTime = pace(ctx, total, b.cfg.rate, func(i int) {
			// nats.go's flusher writes the envelope out at once; no Flush
			// (a PING round trip) is needed per message.
			_ = p.send(ctx, envelopeBytes(buf[:0], direct.channel(i), run, i))
		})
		s.unanswered = p.waitReceipts(ctx, b.cfg.drainTimeout)
		return first, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	var errs errorCounts
	p.failed.take(&errs)
	s.errors, s.errDetail = errs.total(), errs.String()
	if n := p.ok.Load() - okBefore; int(n)+s.errors+s.unanswered != total {
		s.errDetail += fmt.Sprintf(" (%d ok receipts for %d requests)", n, total)
	}
	return s, nil
}

// jetstreamLatency publishes envelopes for the jetstream bridge at
// b.cfg.rate from one JetStream producer.
func (b *bench) jetstreamLatency(ctx context.Context, name string, run int, d time.Duration, direct directPayload) (*scenario, error) {
	s := &scenario{name: name, viaBridge: true, jetstream: true, paced: true}
	return b.storedLatency(ctx, s, b.jsBridge, run, d, len(direct.channels), func(i int) *nats.Msg {
		return &nats.Msg{Subject: jsSubject, Data: envelopeBytes(nil, direct.channel(i), run, i)}
	})
}

// storedLatency publishes msg(i) at b.cfg.rate from one JetStream producer
// (async publish, publish acks awaited asynchronously); bp is the bridge
// that drains them, nil when Centrifugo's own consumer does.
func (b *bench) storedLatency(ctx context.Context, s *scenario, bp *stack.Bridge, run int, d time.Duration, channels int, msg func(i int) *nats.Msg) (*scenario, error) {
	total := int(float64(b.cfg.rate) * d.Seconds())
	p := b.js.producers[0]
	okBefore := p.ok.Load()
	err := b.measure(ctx, s, bp, run, total, 1, channels, func() (time.Time, error) {
		first := time.Now()
		s.sendTime = pace(ctx, total, b.cfg.rate, func(i int) { _ = p.sendMsg(msg(i)) })
		s.unanswered = p.waitAcks(ctx, b.cfg.drainTimeout)
		return first, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	var errs errorCounts
	p.failed.take(&errs)
	s.errors, s.errDetail = errs.total(), errs.String()
	if n := p.ok.Load() - okBefore; int(n)+s.errors+s.unanswered != total {
		s.errDetail += fmt.Sprintf(" (%d publish acks for %d publishes)", n, total)
	}
	return s, nil
}
