package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/pkg/envelope"
)

// The flood (issue 12, point 2): the largest valid envelope, to the most
// channels, with a message that escaping inflates six times.
const (
	floodChannels      = 100   // INSTANT_MAX_CHANNELS default
	floodEnvelopeBytes = 65536 // INSTANT_MAX_ENVELOPE_BYTES default
	floodChannelPrefix = "flood-"
)

// floodResult is one payload mode's flood.
type floodResult struct {
	Mode          string         `json:"payload_mode"`
	EnvelopeBytes int            `json:"envelope_bytes"`
	PayloadBytes  int            `json:"encoded_payload_bytes_per_envelope"`
	Seconds       float64        `json:"flood_seconds"`
	Sent          int64          `json:"sent"`
	OK            int64          `json:"ok"`
	Failed        map[string]int `json:"failed_by_code"`
	Unanswered    int            `json:"unanswered"`
	SlowConsumer  float64        `json:"slow_consumer_dropped"`
	PeakRSS       int64          `json:"bridge_peak_rss_bytes"`
	RSSAtEnd      int64          `json:"bridge_rss_at_end_bytes"`
	BridgeCPU     float64        `json:"bridge_cpu_seconds"`
	Requests      float64        `json:"centrifugo_requests"`
}

// floodEnvelope is an envelope of exactly floodEnvelopeBytes to every flood
// channel, its message made of '<', '>' and '&'.
func floodEnvelope() []byte {
	chans := make([]string, floodChannels)
	for i := range chans {
		chans[i] = fmt.Sprintf("%s%02d", floodChannelPrefix, i)
	}
	head, _ := json.Marshal(chans)
	env := append([]byte(`{"channels":`), head...)
	env = append(env, `,"message":"`...)
	for i := 0; len(env) < floodEnvelopeBytes-2; i++ {
		env = append(env, "<>&"[i%3])
	}
	return append(env, `"}`...)
}

// payloadBytes is what the bridge encodes for env in mode: one payload
// (object mode: a broadcast) or one per channel (django mode).
func payloadBytes(env []byte, mode string) (int, error) {
	e, err := envelope.Decode(env, envelope.DefaultLimits())
	if err != nil {
		return 0, fmt.Errorf("flood envelope: %w", err)
	}
	m, err := envelope.ParseMode(mode)
	if err != nil {
		return 0, err
	}
	meta := envelope.Meta{ID: "01KB3X6V0Q8W3ZC2K7B2J4Y9M5", Site: "bench", ReceivedAt: time.Now()}
	if m == envelope.ModeObject {
		return len(envelope.AppendPayload(nil, m, &e, "", meta)), nil
	}
	n := 0
	for _, ch := range e.Targets() {
		n += len(envelope.AppendPayload(nil, m, &e, ch, meta))
	}
	return n, nil
}

// flood is the flood mode: NATS, Centrifugo without history, then for each
// payload mode a bridge with its defaults, flooded for -flood-duration.
func (b *bench) flood(ctx context.Context) error {
	if err := b.floodSetup(ctx); err != nil {
		return err
	}
	bin, err := b.bridgeBinary(ctx)
	if err != nil {
		return err
	}
	chFile := filepath.Join(b.dir, "channels.yaml")
	yaml := "channels:\n"
	for i := range floodChannels {
		yaml += fmt.Sprintf("  - name: %s%02d\n    level: public\n", floodChannelPrefix, i)
	}
	if err := os.WriteFile(chFile, []byte(yaml), 0o600); err != nil {
		return err
	}
	var results []floodResult
	for _, mode := range b.cfg.floodModes {
		r, err := b.floodMode(ctx, bin, chFile, mode)
		if err != nil {
			return fmt.Errorf("flood, %s mode: %w", mode, err)
		}
		results = append(results, r)
	}
	return b.reportFlood(results)
}

// floodSetup starts NATS and Centrifugo. Centrifugo keeps no history: 100
// channels × 100 publications of several hundred KiB would take gigabytes
// of its memory, and the flood is about the bridge's.
func (b *bench) floodSetup(ctx context.Context) error {
	var err error
	if b.dir, err = os.MkdirTemp("", "instant-bench-"); err != nil {
		return err
	}
	b.closers = append(b.closers, func() {
		if !b.cfg.keep {
			_ = os.RemoveAll(b.dir)
		}
	})
	if b.modRoot, err = stack.ModuleRoot(ctx); err != nil {
		return fmt.Errorf("%w (run instant-bench from the repository root)", err)
	}
	b.info = collectMachineInfo(ctx, b.modRoot)
	if err := b.startNATS(); err != nil {
		return err
	}
	return b.startCentrifugo(ctx)
}

// floodMode starts a bridge in payload mode, floods it with requests
// (receipts awaited, -flood-inflight per producer) and stops it.
func (b *bench) floodMode(ctx context.Context, bin, chFile, mode string) (floodResult, error) {
	env := floodEnvelope()
	r := floodResult{Mode: mode, EnvelopeBytes: len(env), Failed: map[string]int{}}
	var err error
	if r.PayloadBytes, err = payloadBytes(env, mode); err != nil {
		return r, err
	}
	b.logf("flood, %s mode: starting bridge", mode)
	br, err := b.startBridge(ctx, bin, chFile, "instant-bench-flood-"+mode, "bridge-flood-"+mode+".log", "INSTANT_PAYLOAD_MODE="+mode)
	if err != nil {
		return r, err
	}
	producers := make([]*natsProducer, b.cfg.publishers)
	for i := range producers {
		if producers[i], err = newNATSProducer(b.nats.URL(), fmt.Sprintf("instant-bench-flood-%d", i), b.cfg.floodFlight); err != nil {
			return r, err
		}
		defer producers[i].close()
	}
	m0, err := bridgeMetricsOf(br)
	if err != nil {
		return r, err
	}
	cpu0 := stack.ProcCPU(br.PID())
	b.logf("flood, %s mode: %d producers × %d requests in flight of %d bytes for %s", mode, len(producers), b.cfg.floodFlight, len(env), b.cfg.floodFor)
	start := time.Now()
	r.Sent = floodSend(ctx, producers, env, b.cfg.floodFor)
	for _, p := range producers {
		r.Unanswered += p.waitReceipts(ctx, b.cfg.drainTimeout)
	}
	r.Seconds = time.Since(start).Seconds()
	mem, err := stack.ReadProcMem(br.PID())
	if err != nil {
		return r, err
	}
	r.PeakRSS, r.RSSAtEnd, r.BridgeCPU = mem.HWM, mem.RSS, (stack.ProcCPU(br.PID()) - cpu0).Seconds()
	if m1, err := bridgeMetricsOf(br); err == nil {
		d := m1.sub(m0)
		r.SlowConsumer, r.Requests = d.dropped, d.requests
	}
	for _, p := range producers {
		r.OK += p.ok.Load()
		var errs errorCounts
		p.failed.take(&errs)
		for k, v := range errs.m {
			r.Failed[strings.TrimPrefix(k, "receipt ok:false, code ")] += v
		}
	}
	if br.Exited() {
		return r, fmt.Errorf("the bridge exited during the flood:\n%s", br.LogTail(4000))
	}
	return r, br.Stop(10 * time.Second)
}

// floodSend sends env from every producer until d has passed, and returns
// how many were sent.
func floodSend(ctx context.Context, producers []*natsProducer, env []byte, d time.Duration) int64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent int64
	)
	for _, p := range producers {
		wg.Go(func() {
			n := int64(0)
			for p.send(ctx, env) == nil {
				n++
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return sent
}
