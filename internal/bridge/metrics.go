package bridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the bridge's Prometheus metrics. No label carries a channel
// name: cardinality stays bounded by the reason codes.
type metrics struct {
	reg *prometheus.Registry

	envelopes      *prometheus.CounterVec
	forwarded      prometheus.Counter
	forwardLatency prometheus.Histogram
	batchSize      prometheus.Histogram
	requests       *prometheus.CounterVec
	requestLatency prometheus.Histogram
	inflight       prometheus.Gauge
	waiting        prometheus.Gauge
	requestsActive prometheus.Gauge
	slowDropped    prometheus.Counter
	receiptErrors  prometheus.Counter
	// receiptsRefused counts receipts not sent because the reply subject
	// was outside INSTANT_RECEIPT_PREFIX.
	receiptsRefused prometheus.Counter

	// jetstream mode
	jsAcks         *prometheus.CounterVec
	jsAckErrors    prometheus.Counter
	jsRedeliveries prometheus.Counter
	jsPending      prometheus.Gauge
	jsAckPending   prometheus.Gauge
	deadLettered   *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.envelopes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instant_bridge_envelopes_total",
		Help: "Envelopes received, by outcome (forwarded or rejected) and reason code (empty when forwarded).",
	}, []string{"outcome", "reason"})
	m.forwarded = m.envelopes.WithLabelValues("forwarded", "")
	m.forwardLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "instant_bridge_forward_duration_seconds",
		Help:    "Time from receiving an envelope to Centrifugo accepting it.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "instant_bridge_batch_size",
		Help:    "Commands per Centrifugo API request.",
		Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500},
	})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instant_bridge_centrifugo_requests_total",
		Help: "Centrifugo API requests by result (ok or error; retries count as requests).",
	}, []string{"result"})
	m.requestLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "instant_bridge_centrifugo_request_duration_seconds",
		Help:    "Duration of Centrifugo API requests.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
	})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "instant_bridge_inflight_envelopes",
		Help: "Envelopes received and not yet forwarded or rejected.",
	})
	m.waiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "instant_bridge_waiting_envelopes",
		Help: "Envelopes waiting for a Centrifugo request slot.",
	})
	m.requestsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "instant_bridge_centrifugo_requests_inflight",
		Help: "Centrifugo API requests in flight.",
	})
	m.slowDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instant_bridge_slow_consumer_dropped_total",
		Help: "Envelopes NATS dropped because the bridge's pending buffer was full (slow consumer); their producers get no receipt.",
	})
	m.receiptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instant_bridge_receipt_errors_total",
		Help: "Receipts or rejection notices that could not be published to NATS.",
	})
	m.receiptsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instant_bridge_receipts_refused_total",
		Help: "Receipts not sent because the envelope's reply subject is not under INSTANT_RECEIPT_PREFIX (the envelope itself is still handled).",
	})
	m.jsAcks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instant_bridge_jetstream_acks_total",
		Help: "jetstream mode: acknowledgements sent, by kind (ack: forwarded, nak: redeliver later, term: dead-lettered).",
	}, []string{"kind"})
	m.jsAckErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instant_bridge_jetstream_ack_errors_total",
		Help: "jetstream mode: acknowledgements that could not be sent (the envelope is redelivered after the ack wait).",
	})
	m.jsRedeliveries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instant_bridge_jetstream_redeliveries_total",
		Help: "jetstream mode: envelopes received again after a nak, an ack timeout or a crash.",
	})
	m.jsPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "instant_bridge_jetstream_pending",
		Help: "jetstream mode: envelopes stored and not yet delivered to a bridge (consumer lag).",
	})
	m.jsAckPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "instant_bridge_jetstream_ack_pending",
		Help: "jetstream mode: envelopes delivered to bridges and not yet acknowledged.",
	})
	m.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instant_bridge_dead_lettered_total",
		Help: "jetstream mode: envelopes stored in the dead-letter stream, by reason code.",
	}, []string{"reason"})
	m.reg.MustRegister(m.jsAcks, m.jsAckErrors, m.jsRedeliveries, m.jsPending, m.jsAckPending, m.deadLettered)
	m.reg.MustRegister(m.envelopes, m.forwardLatency, m.batchSize, m.requests, m.requestLatency,
		m.inflight, m.waiting, m.requestsActive, m.slowDropped, m.receiptErrors, m.receiptsRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Request implements centrifugo.Observer.
func (m *metrics) Request(commands int, d time.Duration, err error) {
	m.batchSize.Observe(float64(commands))
	m.requestLatency.Observe(d.Seconds())
	if err != nil {
		m.requests.WithLabelValues("error").Inc()
		return
	}
	m.requests.WithLabelValues("ok").Inc()
}

// Queue implements centrifugo.Observer.
func (m *metrics) Queue(waiting, inflight int) {
	m.waiting.Set(float64(waiting))
	m.requestsActive.Set(float64(inflight))
}
