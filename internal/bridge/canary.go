package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/tokens"
	"github.com/instant-go/instant/pkg/acl"
)

// canary proves that the whole path works, end to end: every interval it
// publishes a probe envelope on NATS, on a subject of its own, which the
// bridge receives and hands to the one handle path (decode, ACL, commands,
// forwarder) like any envelope, to Centrifugo, and waits for it on its own
// websocket subscription. A probe not back before the next one is sent is
// a miss; INSTANT_CANARY_MAX_MISSES misses in a row fail /readyz.
//
// Nobody else can publish a canary or reach its channel: the channel's name
// (acl.CanaryPrefix and a random nonce) is refused in the channels file, so
// no producer may publish to it and no user gets a token for it; probes are
// checked against a registry holding only that channel; and each probe
// carries a random token that the canary alone knows, so only its own
// probes coming back count. Probes are settled apart from user envelopes:
// they have no receipt, no rejection notice, and are not counted in
// instant_bridge_envelopes_total.
type canary struct {
	interval  time.Duration
	maxMisses int
	log       *zap.Logger
	nc        *nats.Conn
	subject   string // CanarySubjectPrefix + nonce
	channel   string // acl.CanaryPrefix + nonce
	user      string // the websocket connection's user
	reg       *acl.Registry
	wsURL     string
	signer    *tokens.Signer
	latency   prometheus.Histogram
	failures  prometheus.Counter

	sub    *nats.Subscription
	client *centrifuge.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[string]time.Time // probe token → when it was sent
	awaited string               // token of the last probe, "" once it came back
	misses  int                  // probes missed in a row
	last    time.Duration        // latency of the last probe back in time
	seen    bool                 // a probe came back in time at least once
	lastErr string               // the last failure seen on the way
}

// canaryProducer is the producer the canary's probes are checked as.
const canaryProducer = "instant-canary"

// canaryTokenTTL is the lifetime of the canary's own websocket tokens; the
// client asks for new ones before they expire.
const canaryTokenTTL = time.Hour

var probeToken = regexp.MustCompile(`canary-([0-9a-f]{32})`)

func newCanary(cfg Config, nc *nats.Conn, reg *prometheus.Registry, log *zap.Logger) (*canary, error) {
	nonce := randomHex(8)
	c := &canary{
		interval: cfg.CanaryInterval, maxMisses: cfg.CanaryMaxMisses, log: log, nc: nc,
		subject: CanarySubjectPrefix + nonce, channel: acl.CanaryPrefix + nonce, user: "instant-bridge-canary-" + nonce,
		pending: map[string]time.Time{},
	}
	var err error
	if c.reg, err = acl.NewRegistry([]acl.Channel{{Name: c.channel, Level: acl.LevelSuperuser, Active: true, Publishers: []string{canaryProducer}}}); err != nil {
		return nil, err
	}
	if c.signer, err = tokens.NewHMAC([]byte(cfg.CentrifugoHMACKey)); err != nil {
		return nil, fmt.Errorf("INSTANT_CENTRIFUGO_HMAC_KEY: %w", err)
	}
	if c.wsURL, err = cfg.canaryWSURL(); err != nil {
		return nil, err
	}
	c.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "instant_bridge_canary_latency_seconds",
		Help:    "Time from publishing a canary probe on NATS to receiving it on the canary's websocket subscription.",
		Buckets: []float64{.001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	c.failures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instant_bridge_canary_failures_total",
		Help: "Canary probes not received on the websocket before the next one was sent.",
	})
	reg.MustRegister(c.latency, c.failures)
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// start subscribes to the canary's subject (handing probes to handle) and
// to its Centrifugo channel, then probes every interval until stop.
func (c *canary) start(handle func(delivery)) error {
	sub, err := c.nc.Subscribe(c.subject, func(m *nats.Msg) { handle(&canaryDelivery{msg: m, c: c}) })
	if err != nil {
		return fmt.Errorf("canary: subscribe %s: %w", c.subject, err)
	}
	c.sub = sub
	if c.client, err = c.websocket(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.probe()
			}
		}
	}()
	c.log.Info("canary started", zap.String("subject", c.subject), zap.String("channel", c.channel),
		zap.String("websocket", c.wsURL), zap.Duration("interval", c.interval), zap.Int("max_misses", c.maxMisses))
	return nil
}

// stop ends the probes and closes the subscriptions.
func (c *canary) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
	if err := c.sub.Unsubscribe(); err != nil && err != nats.ErrConnectionClosed {
		c.log.Debug("canary unsubscribe", zap.Error(err))
	}
	c.client.Close()
}

// websocket connects the canary's own Centrifugo client, subscribed to its
// channel with tokens it signs itself; it reconnects by itself.
func (c *canary) websocket() (*centrifuge.Client, error) {
	client := centrifuge.NewJsonClient(c.wsURL, centrifuge.Config{
		Name: "instant-bridge-canary",
		GetToken: func(centrifuge.ConnectionTokenEvent) (string, error) {
			tok, _, err := c.signer.Connection(c.user, nil, canaryTokenTTL)
			return tok, err
		},
		MinReconnectDelay: 100 * time.Millisecond,
		MaxReconnectDelay: min(max(c.interval, 500*time.Millisecond), 5*time.Second),
	})
	sub, err := client.NewSubscription(c.channel, centrifuge.SubscriptionConfig{
		GetToken: func(centrifuge.SubscriptionTokenEvent) (string, error) {
			tok, _, err := c.signer.Subscription(c.user, c.channel, canaryTokenTTL)
			return tok, err
		},
		MinResubscribeDelay: 100 * time.Millisecond,
		MaxResubscribeDelay: min(max(c.interval, 500*time.Millisecond), 5*time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	sub.OnPublication(func(e centrifuge.PublicationEvent) { c.received(e.Data, time.Now()) })
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) { c.failed("websocket subscription: " + e.Error.Error()) })
	client.OnError(func(e centrifuge.ErrorEvent) { c.failed("websocket: " + e.Error.Error()) })
	client.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		c.failed(fmt.Sprintf("websocket disconnected: %d %s", e.Code, e.Reason))
	})
	if err := sub.Subscribe(); err != nil {
		return nil, fmt.Errorf("canary: subscribe %s: %w", c.channel, err)
	}
	if err := client.Connect(); err != nil {
		return nil, fmt.Errorf("canary: connect %s: %w", c.wsURL, err)
	}
	return client, nil
}
