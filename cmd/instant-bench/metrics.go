package main

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/instant-go/instant/internal/stack"
)

// bridgeMetricsOf scrapes a bridge's /metrics and keeps the series the report uses.
func bridgeMetricsOf(p *stack.Bridge) (bridgeMetrics, error) {
	var m bridgeMetrics
	all, err := p.Metrics()
	if err != nil {
		return m, err
	}
	for name, v := range all {
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
	slices.SortFunc(m.requestBuckets, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	return m, nil
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
