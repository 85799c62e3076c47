package bridge

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/instant-go/instant/pkg/acl"
)

// probe counts the previous probe as missed if it has not come back, then
// publishes the next one.
func (c *canary) probe() {
	now := time.Now()
	token := randomHex(16)
	c.mu.Lock()
	if c.awaited != "" {
		c.misses++
		c.failures.Inc()
		if c.misses == c.maxMisses {
			c.log.Error("canary failed: probes do not come back through NATS, the bridge and Centrifugo; /readyz answers 503 canary_failed",
				zap.Int("misses", c.misses), zap.String("last_error", c.lastErr))
		}
	}
	for t, sent := range c.pending {
		if now.Sub(sent) > time.Duration(c.maxMisses+1)*c.interval {
			delete(c.pending, t)
		}
	}
	c.awaited, c.pending[token] = token, now
	c.mu.Unlock()
	body := fmt.Appendf(nil, `{"channel":%q,"message":"canary-%s","id":"canary-%s"}`, c.channel, token, token)
	if err := c.nc.Publish(c.subject, body); err != nil {
		c.failed("nats publish: " + err.Error())
	}
}

// received takes a publication of the canary's channel: one of its probes,
// or nothing it knows.
func (c *canary) received(data []byte, now time.Time) {
	m := probeToken.FindSubmatch(data)
	if m == nil {
		return
	}
	token := string(m[1])
	c.mu.Lock()
	defer c.mu.Unlock()
	sent, ok := c.pending[token]
	if !ok {
		return
	}
	delete(c.pending, token)
	lat := now.Sub(sent)
	c.latency.Observe(lat.Seconds())
	if token != c.awaited {
		return // late: its miss is counted
	}
	if c.misses >= c.maxMisses {
		c.log.Info("canary recovered", zap.Int("misses", c.misses), zap.Duration("latency", lat))
	}
	c.awaited, c.misses, c.last, c.seen, c.lastErr = "", 0, lat, true, ""
}

// failed records what went wrong on the way, for /readyz.
func (c *canary) failed(why string) {
	c.mu.Lock()
	c.lastErr = why
	c.mu.Unlock()
}

// canaryStatus is the canary's part of /readyz.
type canaryStatus struct {
	State     string   // starting, ok, missing or canary_failed
	LatencyMS *float64 // of the last probe back in time
	Misses    int
	Err       string
}

// status says how the canary is doing; ok is false once maxMisses probes in
// a row were missed.
func (c *canary) status() (canaryStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := canaryStatus{Misses: c.misses}
	if c.seen {
		ms := float64(c.last.Microseconds()) / 1000
		st.LatencyMS = &ms
	}
	switch {
	case c.misses >= c.maxMisses:
		st.State = CanaryFailed
		st.Err = fmt.Sprintf("%d probes in a row not received within %s", c.misses, c.interval)
		if c.lastErr != "" {
			st.Err += "; last error: " + c.lastErr
		}
		return st, false
	case !c.seen:
		st.State = "starting"
	case c.misses > 0:
		st.State, st.Err = "missing", c.lastErr
	default:
		st.State = "ok"
	}
	return st, true
}

// CanaryFailed is /readyz's canary state once INSTANT_CANARY_MAX_MISSES
// probes in a row were missed (a readiness state, not an envelope's reason
// code).
const CanaryFailed = "canary_failed"

// canaryDelivery is one probe received on the canary's subject.
type canaryDelivery struct {
	msg *nats.Msg
	c   *canary
}

var (
	_ delivery = (*canaryDelivery)(nil)
	_ routed   = (*canaryDelivery)(nil)
)

func (d *canaryDelivery) subject() string        { return d.msg.Subject }
func (d *canaryDelivery) data() []byte           { return d.msg.Data }
func (d *canaryDelivery) replyTo() string        { return "" } // never a receipt
func (d *canaryDelivery) begin() (string, error) { return "", nil }

// route: the canary's producer and its own registry, never the channels file.
func (d *canaryDelivery) route() (string, *acl.Registry) { return canaryProducer, d.c.reg }

// settle notes a probe the bridge could not forward; it is the canary's, not
// a user envelope: no notice, not counted.
func (d *canaryDelivery) settle(_ failureInfo, err error) disposition {
	if err != nil {
		d.c.failed("bridge: " + err.Error())
	}
	return probed
}
