package bridge

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/instant-go/instant/internal/centrifugo"
)

func (b *Bridge) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st, ok := b.ready.check(r.Context())
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, st)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// readiness answers /readyz: NATS connected and Centrifugo reachable. The
// Centrifugo probe is cached for a second so probes cannot load it.
type readiness struct {
	nc     *nats.Conn
	api    centrifugo.Sender
	src    source
	canary *canary // nil when off

	mu      sync.Mutex
	checked time.Time
	cfErr   error
}

type readyStatus struct {
	Ready      bool   `json:"ready"`
	NATS       string `json:"nats"`
	Centrifugo string `json:"centrifugo"`
	Consumer   string `json:"consumer,omitempty"`
	// The canary's state, when it is on: starting, ok, missing or
	// canary_failed, the latency of its last probe and why it misses.
	Canary          string   `json:"canary,omitempty"`
	CanaryLatencyMS *float64 `json:"canary_latency_ms,omitempty"`
	CanaryMisses    int      `json:"canary_misses,omitempty"`
	CanaryError     string   `json:"canary_error,omitempty"`
}

func (r *readiness) check(ctx context.Context) (readyStatus, bool) {
	st := readyStatus{NATS: "ok", Centrifugo: "ok"}
	natsOK := r.nc != nil && r.nc.IsConnected()
	if !natsOK {
		st.NATS = "not connected"
		if r.nc != nil {
			st.NATS = "not connected: " + r.nc.Status().String()
		}
	}
	r.mu.Lock()
	if time.Since(r.checked) > time.Second {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r.cfErr = r.api.Ready(cctx)
		cancel()
		r.checked = time.Now()
	}
	cfErr := r.cfErr
	r.mu.Unlock()
	if cfErr != nil {
		st.Centrifugo = "unreachable: " + cfErr.Error()
	}
	consumer, consumerOK := r.src.status()
	st.Consumer = consumer
	canaryOK := true
	if r.canary != nil {
		var cs canaryStatus
		cs, canaryOK = r.canary.status()
		st.Canary, st.CanaryLatencyMS, st.CanaryMisses, st.CanaryError = cs.State, cs.LatencyMS, cs.Misses, cs.Err
	}
	st.Ready = natsOK && cfErr == nil && consumerOK && canaryOK
	return st, st.Ready
}
