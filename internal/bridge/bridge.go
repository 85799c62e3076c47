// Package bridge is the bridge program: it receives publish envelopes on
// NATS, checks them against the channel ACL and forwards them to Centrifugo,
// answering every envelope with a receipt or a rejection.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/hotfile"
	"github.com/instant-go/instant/internal/ids"
	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/pkg/envelope"
)

// Bridge is a running bridge. Create it with New, start it with Start, stop
// it with Shutdown (or use Run for all three).
type Bridge struct {
	cfg Config
	log *zap.Logger
	envelopeRules

	api centrifugo.Sender
	fwd *centrifugo.Forwarder
	m   *metrics

	nc     *nats.Conn
	src    source        // where envelopes come from: the delivery mode
	canary *canary       // the end-to-end canary, nil when off
	closed chan struct{} // closed when the NATS connection is closed

	httpLn  net.Listener
	httpSrv *http.Server
	ready   readiness

	ctx    context.Context // lives until Shutdown finishes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
	// shutdownCtx holds the context of Shutdown once it began, so that work
	// finishing in-flight envelopes (dead letters) is bounded by it.
	shutdownCtx atomic.Pointer[context.Context]

	rejectLog  rate.Sometimes
	receiptLog rate.Sometimes // receipts refused: apart, so a flood of them hides no rejection
	dropLog    rate.Sometimes
}

// newEnvelopeRules loads the channels file and reads the rules' settings
// from cfg.
func newEnvelopeRules(cfg Config, log *zap.Logger) (envelopeRules, error) {
	mode, err := envelope.ParseMode(cfg.PayloadMode)
	if err != nil {
		return envelopeRules{}, err
	}
	channels, err := hotfile.Load(cfg.ChannelsFile, channelsfile.Parse, log.With(zap.String(logging.FieldComponent, "channels")))
	if err != nil {
		return envelopeRules{}, fmt.Errorf("INSTANT_CHANNELS_FILE: %w", err)
	}
	return envelopeRules{subject: cfg.Subject, site: cfg.SiteName, mode: mode, limits: cfg.Limits(), channels: channels, ids: ids.New(),
		maxRequestBytes: cfg.MaxRequestBytes}, nil
}

// New builds a bridge from a validated configuration: it loads the channels
// file and connects to NATS (in the background if NATS is not up yet).
func New(cfg Config, log *zap.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rules, err := newEnvelopeRules(cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		cfg:           cfg,
		log:           log.With(zap.String(logging.FieldComponent, "bridge")),
		envelopeRules: rules,
		m:             newMetrics(),
		closed:        make(chan struct{}),
		ctx:           ctx,
		cancel:        cancel,
		rejectLog:     rate.Sometimes{First: 10, Interval: 10 * time.Second},
		receiptLog:    rate.Sometimes{First: 1, Interval: 10 * time.Second},
		dropLog:       rate.Sometimes{First: 1, Interval: 10 * time.Second},
	}
	b.api = newSender(cfg, log)
	b.fwd = centrifugo.New(centrifugo.Config{
		MaxBatch:    cfg.BatchMax,
		Concurrency: cfg.Concurrency,
		QueueSize:   cfg.QueueSize,
		Attempts:    cfg.RetryAttempts,
		Backoff:     cfg.RetryBackoff,
		MaxBackoff:  cfg.RetryMaxBackoff,

		MaxPendingBytes: cfg.MaxPendingBytes,
		MaxRequestBytes: cfg.MaxRequestBytes,
	}, b.api, log.With(zap.String(logging.FieldComponent, "forwarder")), b.m)
	b.ready.api = b.api

	natsCfg := cfg.NATS()
	opts, err := natsCfg.Options(log.With(zap.String(logging.FieldComponent, "nats")), b.asyncError, func() { close(b.closed) })
	if err != nil {
		cancel()
		_ = b.fwd.Close(context.Background())
		closeSender(b.api)
		return nil, err
	}
	b.nc, err = nats.Connect(natsCfg.URL, opts...)
	if err != nil {
		cancel()
		_ = b.fwd.Close(context.Background())
		closeSender(b.api)
		return nil, fmt.Errorf("connect nats %s: %w", natsCfg.URL, err)
	}
	b.ready.nc = b.nc
	b.src = newSource(b.cfg, b.nc, b.m, b.log.With(zap.String("delivery", cfg.Delivery)), b.stopCtx)
	b.ready.src = b.src
	if cfg.CanaryInterval > 0 {
		if b.canary, err = newCanary(cfg, b.nc, b.m.reg, log.With(zap.String(logging.FieldComponent, "canary"))); err != nil {
			cancel()
			b.nc.Close()
			_ = b.fwd.Close(context.Background())
			return nil, err
		}
		b.ready.canary = b.canary
	}
	return b, nil
}

// newSender is the transport to Centrifugo: an HTTPSender to the API URL,
// or with several URLs a FailoverSender over one HTTPSender each.
func newSender(cfg Config, log *zap.Logger) centrifugo.Sender {
	client := &http.Client{
		Timeout: cfg.CentrifugoTimeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: cfg.Concurrency + 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	urls := cfg.CentrifugoAPIURLs()
	if len(urls) == 1 {
		return centrifugo.NewHTTPSender(urls[0], cfg.CentrifugoAPIKey, client)
	}
	nodes := make([]centrifugo.FailoverNode, len(urls))
	for i, u := range urls {
		nodes[i] = centrifugo.FailoverNode{Name: u, Sender: centrifugo.NewHTTPSender(u, cfg.CentrifugoAPIKey, client)}
	}
	return centrifugo.NewFailoverSender(centrifugo.FailoverConfig{}, log.With(zap.String(logging.FieldComponent, "centrifugo")), nodes...)
}

// closeSender stops what the sender runs in the background, if anything.
func closeSender(s centrifugo.Sender) {
	if c, ok := s.(io.Closer); ok {
		_ = c.Close()
	}
}

// Start subscribes and starts the HTTP listener and the channels file watch.
func (b *Bridge) Start() error {
	if b.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", b.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("INSTANT_BRIDGE_HTTP_ADDR=%s: %w", b.cfg.HTTPAddr, err)
		}
		b.httpLn = ln
		b.httpSrv = &http.Server{Handler: b.routes(), ReadHeaderTimeout: 5 * time.Second}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Error("http server stopped", zap.Error(err))
			}
		}()
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.channels.Watch(b.ctx); err != nil && !errors.Is(err, context.Canceled) {
			b.log.Error("channels file watch stopped", zap.Error(err))
		}
	}()
	if err := b.src.start(b.ctx, b.handle); err != nil {
		return err
	}
	if b.canary != nil {
		if err := b.canary.start(b.handle); err != nil {
			return err
		}
	}
	b.log.Info("bridge started",
		zap.String("delivery", b.cfg.Delivery),
		zap.String(logging.FieldSubject, b.cfg.Subject),
		zap.String("queue_group", b.cfg.QueueGroup),
		zap.String("centrifugo", b.cfg.CentrifugoAPIURL),
		zap.String("payload_mode", b.mode.String()),
		zap.Int("channels", b.channels.Current().Len()),
		zap.String("http", b.HTTPAddr()))
	return nil
}

// HTTPAddr is the address the metrics and health listener is bound to.
func (b *Bridge) HTTPAddr() string {
	if b.httpLn == nil {
		return ""
	}
	return b.httpLn.Addr().String()
}

// Run starts the bridge and shuts it down when ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	if err := b.Start(); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), b.cfg.ShutdownTimeout)
		defer cancel()
		_ = b.Shutdown(sctx)
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), b.cfg.ShutdownTimeout)
	defer cancel()
	return b.Shutdown(sctx)
}

// Shutdown stops in order: stop receiving (drain the subscriptions, so every
// envelope already delivered to the bridge is handled), forward or reject
// everything in flight, flush receipts and rejections (drain the
// connection), then stop the HTTP listener. Envelopes still waiting when ctx
// ends are rejected with upstream_unavailable, not dropped.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() { b.shutdownErr = b.shutdown(ctx) })
	return b.shutdownErr
}

func (b *Bridge) shutdown(ctx context.Context) error {
	b.log.Info("bridge shutting down")
	b.shutdownCtx.Store(&ctx)
	// When ctx ends, whatever still waits to be submitted (a source blocked
	// on the byte budget) gives up at once: stored envelopes are naked, the
	// others answered upstream_unavailable.
	defer context.AfterFunc(ctx, b.cancel)()
	if b.canary != nil {
		b.canary.stop() // first: its probes would fail from now on
	}
	var errs []error
	if err := b.src.drain(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := b.fwd.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("forward in-flight envelopes: %w", err))
	}
	closeSender(b.api)
	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		b.nc.Close()
	}
	select {
	case <-b.closed:
	case <-ctx.Done():
		b.nc.Close()
	}
	b.cancel()
	if b.httpSrv != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = b.httpSrv.Shutdown(hctx)
		cancel()
	}
	b.wg.Wait()
	b.log.Info("bridge stopped")
	return errors.Join(errs...)
}

// stopCtx is Shutdown's context once shutdown began, else a context that
// never ends.
func (b *Bridge) stopCtx() context.Context {
	if p := b.shutdownCtx.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// asyncError handles NATS's asynchronous errors; slow-consumer drops are
// counted by the core source.
func (b *Bridge) asyncError(sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		b.dropLog.Do(func() {
			b.log.Warn("slow consumer: NATS is dropping envelopes because the bridge cannot keep up; see instant_bridge_slow_consumer_dropped_total, use receipts or the jetstream delivery mode for guaranteed delivery")
		})
		return
	}
	b.log.Warn("nats async error", zap.Error(err))
	if b.canary != nil && strings.Contains(err.Error(), b.canary.subject) {
		b.canary.failed(err.Error()) // e.g. not allowed to subscribe to its subject
	}
}
