package tokensvc

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the token service's Prometheus metrics, on their own registry.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec // route, code
	tokens       *prometheus.CounterVec // kind: connection, subscription
	authFailures *prometheus.CounterVec // source, reason
	logins       *prometheus.CounterVec // result
	denied       prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "instant_tokensvc_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "instant_tokensvc_tokens_issued_total", Help: "Centrifugo tokens issued, by kind (connection, subscription).",
		}, []string{"kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "instant_tokensvc_auth_failures_total", Help: "Rejected credentials by identity source and reason.",
		}, []string{"source", "reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "instant_tokensvc_logins_total", Help: "Login attempts by result (ok, invalid, rate_limited).",
		}, []string{"result"}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "instant_tokensvc_subscribe_denied_total", Help: "Subscription token requests refused by the ACL.",
		}),
	}
	m.reg.MustRegister(m.requests, m.tokens, m.authFailures, m.logins, m.denied,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
