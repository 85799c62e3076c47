package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/stack"
)

// The jetstream bridge's subject (stream INSTANT, its default name, holds
// jsSubject and jsSubject.>), separate from the core bridge's so that both
// bridges run side by side and each envelope reaches exactly one of them.
const (
	jsSubject    = "instant.js"
	jsStream     = "INSTANT"
	jsConsumer   = "instant-bridge"
	jsBridgeName = "instant-bench-jetstream-bridge"
)

// jsSide is what -jetstream (and the compare mode) adds: the producers
// using JetStream async publish and, with -jetstream, an observer of the
// bridge's JetStream traffic.
type jsSide struct {
	producers []*jsProducer
	watch     *jsWatch   // -mode rounds only
	nc        *nats.Conn // the benchmark's own JetStream calls, after the scenarios
}

// startJetStreamSide connects the JetStream producers and the observer.
func (b *bench) startJetStreamSide(_ context.Context) error {
	side := &jsSide{}
	b.js = side
	for i := range b.cfg.publishers {
		p, err := newJSProducer(b.nats.URL(), fmt.Sprintf("instant-bench-js-producer-%d", i), b.cfg.inflight, b.cfg.drainTimeout)
		if err != nil {
			return err
		}
		b.closers = append(b.closers, p.close)
		side.producers = append(side.producers, p)
	}
	if b.cfg.mode == modeRounds { // compare mode spares NATS the extra deliveries
		w, err := newJSWatch(b.nats.URL())
		if err != nil {
			return err
		}
		b.closers = append(b.closers, w.close)
		side.watch = w
	}
	nc, err := nats.Connect(b.nats.URL(), nats.Name("instant-bench-js-admin"))
	if err != nil {
		return err
	}
	b.closers = append(b.closers, nc.Close)
	side.nc = nc
	return nil
}

// jsProducer publishes envelopes with JetStream async publish: each
// publish carries a reply inbox and JetStream answers with a PubAck once the
// envelope is stored; at most maxPending are unanswered.
type jsProducer struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	stall time.Duration

	ok     atomic.Int64
	failed errorCounts
}

func newJSProducer(url, name string, maxPending int, timeout time.Duration) (*jsProducer, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.ReconnectBufSize(64<<20))
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	p := &jsProducer{nc: nc, stall: timeout}
	p.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(timeout),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { p.ok.Add(1) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.failed.add("jetstream publish ack: " + err.Error())
		}))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

// send publishes data (kept by the client until acked: not reused by the
// caller), waiting while maxPending publish acks are outstanding.
func (p *jsProducer) send(data []byte) error {
	return p.sendMsg(&nats.Msg{Subject: jsSubject, Data: data})
}

// sendMsg publishes m like send, to its own subject and with its headers.
func (p *jsProducer) sendMsg(m *nats.Msg) error {
	_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(p.stall))
	if err != nil {
		p.failed.add("jetstream publish: " + err.Error())
	}
	return err
}

// waitAcks waits until every publish was acked (or failed), or d passed;
// it returns how many are still unanswered.
func (p *jsProducer) waitAcks(ctx context.Context, d time.Duration) int {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(d):
	case <-ctx.Done():
	}
	return p.js.PublishAsyncPending()
}

func (p *jsProducer) close() { p.nc.Close() }

// jsWatch sees, through its own subscriptions, every message published on
// $JS.ACK.> (acks, naks and terms: in this setup only the jetstream bridge
// sends them) and on $JS.API.> (JetStream API requests: pull requests and
// consumer info from the bridge; the benchmark makes none during a scenario).
type jsWatch struct {
	nc *nats.Conn

	acks, acksWithReply      atomic.Int64
	pulls, infos, otherAPI   atomic.Int64
	apiWithReply, apiNoReply atomic.Int64
	firstAckSubject          atomic.Value // string, for the report
}

func newJSWatch(url string) (*jsWatch, error) {
	nc, err := nats.Connect(url, nats.Name("instant-bench-js-watch"))
	if err != nil {
		return nil, err
	}
	w := &jsWatch{nc: nc}
	pull := "$JS.API.CONSUMER.MSG.NEXT." + jsStream + "." + jsConsumer
	info := "$JS.API.CONSUMER.INFO." + jsStream + "." + jsConsumer
	subs := []struct {
		subject string
		cb      nats.MsgHandler
	}{
		{"$JS.ACK.>", func(m *nats.Msg) {
			w.acks.Add(1)
			if m.Reply != "" {
				w.acksWithReply.Add(1)
			}
			w.firstAckSubject.CompareAndSwap(nil, m.Subject+" "+string(m.Data))
		}},
		{"$JS.API.>", func(m *nats.Msg) {
			switch m.Subject {
			case pull:
				w.pulls.Add(1)
			case info:
				w.infos.Add(1)
			default:
				w.otherAPI.Add(1)
			}
			if m.Reply != "" {
				w.apiWithReply.Add(1)
			} else {
				w.apiNoReply.Add(1)
			}
		}},
	}
	for _, s := range subs {
		sub, err := nc.Subscribe(s.subject, s.cb)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return w, nil
}

func (w *jsWatch) close() { w.nc.Close() }

// jsCounts is a snapshot of jsWatch.
type jsCounts struct {
	acks, acksWithReply, pulls, infos, otherAPI, apiWithReply, apiNoReply int64
}

func (w *jsWatch) snapshot() jsCounts {
	return jsCounts{w.acks.Load(), w.acksWithReply.Load(), w.pulls.Load(), w.infos.Load(), w.otherAPI.Load(), w.apiWithReply.Load(), w.apiNoReply.Load()}
}

func (c jsCounts) sub(o jsCounts) jsCounts {
	return jsCounts{c.acks - o.acks, c.acksWithReply - o.acksWithReply, c.pulls - o.pulls, c.infos - o.infos,
		c.otherAPI - o.otherAPI, c.apiWithReply - o.apiWithReply, c.apiNoReply - o.apiNoReply}
}

func (c jsCounts) add(o jsCounts) jsCounts {
	return jsCounts{c.acks + o.acks, c.acksWithReply + o.acksWithReply, c.pulls + o.pulls, c.infos + o.infos,
		c.otherAPI + o.otherAPI, c.apiWithReply + o.apiWithReply, c.apiNoReply + o.apiNoReply}
}

// connStats are the server's counters of one client connection: in is what
// the client published, out what the server delivered to it.
type connStats struct {
	inMsgs, outMsgs, inBytes, outBytes int64
}

func (c connStats) sub(o connStats) connStats {
	return connStats{c.inMsgs - o.inMsgs, c.outMsgs - o.outMsgs, c.inBytes - o.inBytes, c.outBytes - o.outBytes}
}

func (c connStats) add(o connStats) connStats {
	return connStats{c.inMsgs + o.inMsgs, c.outMsgs + o.outMsgs, c.inBytes + o.inBytes, c.outBytes + o.outBytes}
}

// connStatsOf reads the counters of the connection named name from the
// embedded server (the same numbers as /connz of the monitoring endpoint).
func connStatsOf(ns *server.Server, name string) (connStats, error) {
	cz, err := ns.Connz(&server.ConnzOptions{Limit: 1 << 16})
	if err != nil {
		return connStats{}, err
	}
	for _, c := range cz.Conns {
		if c.Name == name {
			return connStats{c.InMsgs, c.OutMsgs, c.InBytes, c.OutBytes}, nil
		}
	}
	return connStats{}, fmt.Errorf("no NATS connection named %q", name)
}

// settleAcks waits, after the subscriber got every envelope of a jetstream
// scenario, until the bridge has sent an ack, nak or term for each of want
// envelopes (Centrifugo answers the bridge after it delivered to the
// subscriber) and the watch, if any, has seen as many, or d passed.
func (b *bench) settleAcks(ctx context.Context, m0 bridgeMetrics, w0 jsCounts, want int, d time.Duration) {
	_ = stack.Eventually(d, func() error { // not settled in d: the report shows it
		if ctx.Err() != nil {
			return nil // stop waiting
		}
		m, err := bridgeMetricsOf(b.jsBridge)
		if err != nil {
			return err
		}
		done := m.sub(m0)
		sent := done.acks + done.naks + done.terms
		if sent < float64(want) || (b.js.watch != nil && float64(b.js.watch.snapshot().sub(w0).acks) < sent) {
			return stack.ErrNotYet
		}
		return nil
	})
}

// jsState is the stream and consumer after the scenarios.
type jsState struct {
	streamMsgs, dlqMsgs                 uint64
	ackPending, pending, redeliveredNow int
	err                                 string
}

// state reads the bridge's stream, the dead-letter stream and the
// consumer. Called after the last scenario: its API requests are not
// counted in any.
func (s *jsSide) state(ctx context.Context) jsState {
	return s.streamState(ctx, jsStream, jsConsumer, "INSTANT_DLQ")
}

// streamState reads stream, its consumer and, when named, a dead-letter stream.
func (s *jsSide) streamState(ctx context.Context, stream, consumer, dlqStream string) jsState {
	var st jsState
	js, err := jetstream.New(s.nc)
	if err != nil {
		st.err = err.Error()
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []string
	if str, err := js.Stream(ctx, stream); err == nil {
		st.streamMsgs = str.CachedInfo().State.Msgs
	} else {
		errs = append(errs, "stream: "+err.Error())
	}
	if dlqStream != "" {
		if str, err := js.Stream(ctx, dlqStream); err == nil {
			st.dlqMsgs = str.CachedInfo().State.Msgs
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, "dead-letter stream: "+err.Error())
		}
	}
	if c, err := js.Consumer(ctx, stream, consumer); err == nil {
		info := c.CachedInfo()
		st.ackPending, st.pending, st.redeliveredNow = info.NumAckPending, int(info.NumPending), info.NumRedelivered
	} else {
		errs = append(errs, "consumer: "+err.Error())
	}
	st.err = strings.Join(errs, "; ")
	return st
}
