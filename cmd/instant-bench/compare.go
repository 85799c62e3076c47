package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/internal/stack"
)

// rowKind is how a row's events reach Centrifugo.
type rowKind int

const (
	kindDirectSingle    rowKind = iota // one gocent Publish (HTTP request) per event
	kindDirectPipe                     // gocent Pipe, perRequest publishes per request
	kindDirectOrdered                  // gocent Pipe, one request in flight, the next one encoded meanwhile
	kindBridgeCore                     // NATS requests with receipts, through the core bridge
	kindBridgeJetStream                // JetStream async publishes, drained by the jetstream bridge
	kindConsumer                       // ready payloads on a stream, drained by Centrifugo's consumer
)

// row is one line of the comparison: a throughput scenario and, for some,
// a latency scenario at -rate, in every round.
type row struct {
	name       string // stable id, also in the JSON file
	label      string // in the table
	kind       rowKind
	publishers int
	perRequest int // kindDirectPipe, kindDirectOrdered: publishes per request
	channels   []string
	messages   int // per throughput scenario
	latency    bool
	latWorkers int  // kindDirectSingle: concurrent requests of the latency scenario
	warmUp     bool // its path is warmed up before the rounds (one row per path)

	tp, lat []*scenario // one per round
}

func (r *row) viaBridge() bool { return r.kind == kindBridgeCore || r.kind == kindBridgeJetStream }

// Row names the targets and ratios refer to.
const (
	rowSingle1      = "direct-single-1"
	rowDirectBatch  = "direct-batch"
	rowOrdered      = "direct-ordered"
	rowCore1        = "bridge-core-1ch"
	rowJetStream    = "bridge-jetstream"
	rowConsumer     = "centrifugo-consumer"
	rowSingleManyFm = "direct-single-%d"
	rowCoreSpreadFm = "bridge-core-%dch"
)

// compareRows are the rows of the comparison, in the order they run
// (those of -rows, when given).
func (b *bench) compareRows() []*row {
	all := b.allRows()
	if len(b.cfg.rows) == 0 {
		return all
	}
	var out []*row
	for _, r := range all {
		if slices.Contains(b.cfg.rows, r.name) {
			out = append(out, r)
		}
	}
	return out
}

func (b *bench) allRows() []*row {
	c := b.cfg
	one, spread := []string{c.channel}, channelNames(c.channel, c.spread)
	return []*row{
		{name: rowSingle1, label: "direct-single, 1 publisher", kind: kindDirectSingle, publishers: 1, channels: one, messages: c.single, latency: true, latWorkers: 1},
		{name: fmt.Sprintf(rowSingleManyFm, c.singlePubs), label: fmt.Sprintf("direct-single, %d publishers", c.singlePubs), kind: kindDirectSingle,
			publishers: c.singlePubs, channels: one, messages: c.single, latency: true, latWorkers: c.singlePubs},
		{name: rowDirectBatch, label: fmt.Sprintf("direct-batch, %d publishers × %d per request", c.publishers, c.pipe), kind: kindDirectPipe,
			publishers: c.publishers, perRequest: c.pipe, channels: one, messages: c.messages, warmUp: true},
		{name: rowOrdered, label: fmt.Sprintf("direct-ordered, 1 publisher × %d per request", c.orderedPipe), kind: kindDirectOrdered,
			publishers: 1, perRequest: c.orderedPipe, channels: one, messages: c.messages},
		{name: rowCore1, label: fmt.Sprintf("bridge-core, %d producers, 1 channel", c.publishers), kind: kindBridgeCore,
			publishers: c.publishers, channels: one, messages: c.messages, latency: true, warmUp: true},
		{name: fmt.Sprintf(rowCoreSpreadFm, c.spread), label: fmt.Sprintf("bridge-core, %d producers, %d channels", c.publishers, c.spread), kind: kindBridgeCore,
			publishers: c.publishers, channels: spread, messages: c.messages, latency: true},
		{name: rowJetStream, label: fmt.Sprintf("bridge-jetstream, %d producers, 1 channel", c.publishers), kind: kindBridgeJetStream,
			publishers: c.publishers, channels: one, messages: c.messages, latency: true, warmUp: true},
		{name: rowConsumer, label: fmt.Sprintf("centrifugo-consumer, %d producers, 1 channel", c.publishers), kind: kindConsumer,
			publishers: c.publishers, channels: one, messages: c.messages, latency: true, warmUp: true},
	}
}

// compareResults are the measurements of a compare run.
type compareResults struct {
	rows        []*row
	hotPath     *hotPathReport // nil when skipped
	warmup      []*scenario
	bridgeHWM   int64 // core bridge, largest of its scenarios' peaks
	jsHWM       int64 // jetstream bridge
	jsState     jsState
	cfState     jsState // Centrifugo's consumer and its stream
	strays      int
	lateDups    int // duplicates that arrived after their scenario was counted
	disconnects []string
	exited      bool
	wall        time.Duration
}

func (r *compareResults) all() []*scenario {
	all := append([]*scenario(nil), r.warmup...)
	for _, x := range r.rows {
		all = append(append(all, x.tp...), x.lat...)
	}
	return all
}

func (r *compareResults) row(name string) *row {
	for _, x := range r.rows {
		if x.name == name {
			return x
		}
	}
	return nil
}

// runCompare warms every path up, then runs the rounds: each row's
// throughput scenario, then each latency scenario.
func (b *bench) runCompare(ctx context.Context) (*compareResults, error) {
	res := &compareResults{rows: b.compareRows()}
	start := time.Now()
	gen := ids.New()
	producers, err := b.coreProducers()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range producers {
			p.close()
		}
	}()
	tag := 100
	next := func() int { tag++; return tag }
	for _, r := range res.rows {
		if !r.warmUp {
			continue
		}
		name := "warm-up " + r.name
		s, err := b.stepCompare(ctx, name, func() (*scenario, error) {
			return b.rowThroughput(ctx, r, name, next(), b.cfg.warmup, gen, producers)
		})
		if err != nil {
			return nil, err
		}
		res.warmup = append(res.warmup, s)
	}
	perRound := time.Duration(int64(b.cfg.duration) / int64(b.cfg.rounds))
	for round := range b.cfg.rounds {
		order := runOrder(res.rows, round)
		for _, r := range order {
			name := fmt.Sprintf("%s throughput (round %d)", r.name, round+1)
			s, err := b.stepCompare(ctx, name, func() (*scenario, error) {
				return b.rowThroughput(ctx, r, name, next(), r.messages, gen, producers)
			})
			if err != nil {
				return nil, err
			}
			r.tp = append(r.tp, s)
		}
		for _, r := range order {
			if !r.latency {
				continue
			}
			name := fmt.Sprintf("%s latency (round %d)", r.name, round+1)
			s, err := b.stepCompare(ctx, name, func() (*scenario, error) {
				return b.rowLatency(ctx, r, name, next(), perRound, gen, producers[0])
			})
			if err != nil {
				return nil, err
			}
			r.lat = append(r.lat, s)
		}
	}
	b.compareFinalState(ctx, res)
	res.wall = time.Since(start)
	return res, nil
}

// runOrder is the order in which the rows run in a round: every row next
// to the one its target compares it with (direct-ordered and bridge-core
// on 1 channel, direct-batch and bridge-core spread, centrifugo-consumer
// and bridge-jetstream; for latency, direct-single and bridge-core), so a
// pair sees the same background load, and reversed every other round, so
// neither side of a pair always goes first.
func runOrder(rows []*row, round int) []*row {
	rank := func(r *row) int {
		switch {
		case r.kind == kindDirectSingle:
			return 0
		case r.name == rowOrdered:
			return 1
		case r.name == rowCore1:
			return 2
		case r.name == rowDirectBatch:
			return 3
		case r.kind == kindBridgeCore:
			return 4
		case r.kind == kindConsumer:
			return 5
		}
		return 6
	}
	order := slices.Clone(rows)
	slices.SortStableFunc(order, func(a, b *row) int { return rank(a) - rank(b) })
	if round%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// coreProducers connect the producers of the core bridge rows.
func (b *bench) coreProducers() ([]*natsProducer, error) {
	var out []*natsProducer
	for i := range b.cfg.publishers {
		p, err := newNATSProducer(b.nats.URL(), fmt.Sprintf("instant-bench-producer-%d", i), b.cfg.inflight)
		if err != nil {
			for _, q := range out {
				q.close()
			}
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// stepCompare runs one scenario through step (which stops when a bridge
// has exited), with results it does not need.
func (b *bench) stepCompare(ctx context.Context, name string, f func() (*scenario, error)) (*scenario, error) {
	return b.step(ctx, &results{}, name, f)
}

// compareFinalState reads, after the last scenario, the bridges' peaks,
// whether they still run, the streams and the subscriber's problems.
func (b *bench) compareFinalState(ctx context.Context, res *compareResults) {
	for _, s := range res.all() {
		switch {
		case s.jetstream:
			res.jsHWM = max(res.jsHWM, s.bridgeHWM)
		case s.viaBridge:
			res.bridgeHWM = max(res.bridgeHWM, s.bridgeHWM)
		}
	}
	res.exited = b.bridge.Exited() || b.jsBridge.Exited()
	res.jsState = b.js.state(ctx)
	res.cfState = b.js.streamState(ctx, cfStream, cfConsumer, "")
	res.strays, res.lateDups, res.disconnects = b.sub.problems()
}

// rowBridge is the bridge process a row goes through, nil for none.
func (b *bench) rowBridge(r *row) *stack.Bridge {
	switch r.kind {
	case kindBridgeCore:
		return b.bridge
	case kindBridgeJetStream:
		return b.jsBridge
	}
	return nil
}

// rowThroughput sends total events of row r as fast as its publishers can,
// split into equal ranges, one per publisher, each sent in order.
func (b *bench) rowThroughput(ctx context.Context, r *row, name string, run, total int, gen *ids.Generator, producers []*natsProducer) (*scenario, error) {
	s := &scenario{name: name, viaBridge: r.viaBridge(), jetstream: r.kind == kindBridgeJetStream}
	pl := directPayload{ids: gen, channels: r.channels}
	var (
		errs    errorCounts
		slowest maxDuration
	)
	n := r.publishers
	err := b.measure(ctx, s, b.rowBridge(r), run, total, n, len(r.channels), func() (time.Time, error) {
		first := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			lo, hi := total*i/n, total*(i+1)/n
			wg.Go(func() { b.sendRange(ctx, r, i, pl, run, lo, hi, producers, &errs, &slowest) })
		}
		wg.Wait()
		s.unanswered = b.awaitAnswers(ctx, r, producers)
		s.sendTime = time.Since(first)
		return first, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	switch r.kind {
	case kindBridgeCore:
		for _, p := range producers {
			p.failed.take(&errs)
		}
	case kindBridgeJetStream, kindConsumer:
		for _, p := range b.js.producers {
			p.failed.take(&errs)
		}
	}
	s.errors, s.errDetail = errs.total(), errs.String()
	s.slowestRequest = slowest.get()
	return s, nil
}

// sendRange sends events [lo, hi) of run as publisher i of row r.
func (b *bench) sendRange(ctx context.Context, r *row, i int, pl directPayload, run, lo, hi int, producers []*natsProducer, errs *errorCounts, slowest *maxDuration) {
	switch r.kind {
	case kindDirectSingle:
		for seq := lo; seq < hi && ctx.Err() == nil; seq++ {
			start := time.Now()
			_, err := b.api.Publish(ctx, pl.channel(seq), pl.build(nil, run, seq))
			slowest.observe(time.Since(start))
			if err != nil {
				errs.add("direct publish: " + err.Error())
			}
		}
	case kindDirectPipe:
		directPipe(ctx, b.api, pl, run, lo, hi, r.perRequest, errs, slowest)
	case kindDirectOrdered:
		orderedPipe(ctx, b.orderedAPI, pl, run, lo, hi, r.perRequest, errs, slowest)
	case kindBridgeCore:
		buf := make([]byte, 0, 128)
		for seq := lo; seq < hi; seq++ {
			if producers[i].send(ctx, envelopeBytes(buf[:0], pl.channel(seq), run, seq)) != nil {
				return
			}
		}
	case kindBridgeJetStream:
		for seq := lo; seq < hi && ctx.Err() == nil; seq++ {
			if b.js.producers[i].send(envelopeBytes(nil, pl.channel(seq), run, seq)) != nil {
				return
			}
		}
	case kindConsumer:
		for seq := lo; seq < hi && ctx.Err() == nil; seq++ {
			if b.js.producers[i].sendMsg(consumerMsg(pl, run, seq)) != nil {
				return
			}
		}
	}
}

// awaitAnswers waits for the receipts or publish acks of a row's
// producers and returns how many never came.
func (b *bench) awaitAnswers(ctx context.Context, r *row, producers []*natsProducer) int {
	n := 0
	switch r.kind {
	case kindBridgeCore:
		for _, p := range producers {
			n += p.waitReceipts(ctx, b.cfg.drainTimeout)
		}
	case kindBridgeJetStream, kindConsumer:
		for _, p := range b.js.producers {
			n += p.waitAcks(ctx, b.cfg.drainTimeout)
		}
	}
	return n
}

// rowLatency sends row r's events at -rate for d, from one producer (or,
// direct-single, r.latWorkers concurrent requests).
func (b *bench) rowLatency(ctx context.Context, r *row, name string, run int, d time.Duration, gen *ids.Generator, p *natsProducer) (*scenario, error) {
	pl := directPayload{ids: gen, channels: r.channels}
	switch r.kind {
	case kindDirectSingle:
		return b.directLatency(ctx, name, run, d, pl, r.latWorkers)
	case kindBridgeCore:
		return b.bridgeLatency(ctx, name, run, d, p, pl)
	case kindBridgeJetStream:
		return b.jetstreamLatency(ctx, name, run, d, pl)
	case kindConsumer:
		s := &scenario{name: name, paced: true}
		return b.storedLatency(ctx, s, nil, run, d, len(r.channels), func(i int) *nats.Msg { return consumerMsg(pl, run, i) })
	}
	return nil, fmt.Errorf("row %s has no latency scenario", r.name)
}

// compare is the compare mode: the hot-path benchmark on the idle
// machine, then set up, run, report.
func (b *bench) compare(ctx context.Context) error {
	root, err := stack.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	hp, err := b.hotPath(ctx, root)
	if err != nil {
		return err
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	res, err := b.runCompare(ctx)
	if err != nil {
		return err
	}
	res.hotPath = hp
	rep, err := b.reportCompare(res)
	if err != nil {
		return err
	}
	return compareVerdict(rep, b.cfg.strict)
}
