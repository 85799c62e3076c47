package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/logging"
)

// coreSource is the core delivery mode: a queue subscription on SUBJECT and
// SUBJECT.>. An envelope is answered once (receipt and, when it was not
// forwarded, a rejection notice on REJECTED_PREFIX.<code>) and never
// retried; NATS drops what the bridge cannot take (slow consumer), counted.
type coreSource struct {
	cfg  Config
	nc   *nats.Conn
	m    *metrics
	log  *zap.Logger
	subs []*nats.Subscription
	wg   sync.WaitGroup
	stop chan struct{}
}

var _ source = (*coreSource)(nil)

func newCoreSource(cfg Config, nc *nats.Conn, m *metrics, log *zap.Logger) *coreSource {
	return &coreSource{cfg: cfg, nc: nc, m: m, log: log, stop: make(chan struct{})}
}

func (s *coreSource) start(_ context.Context, handle func(delivery)) error {
	for _, subj := range []string{s.cfg.Subject, s.cfg.Subject + ".>"} {
		sub, err := s.nc.QueueSubscribe(subj, s.cfg.QueueGroup, func(msg *nats.Msg) {
			handle(&coreDelivery{msg: msg, src: s})
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		if err := sub.SetPendingLimits(s.cfg.NATSPendingMsgs, s.cfg.NATSPendingBytes); err != nil {
			return fmt.Errorf("pending limits: %w", err)
		}
		s.subs = append(s.subs, sub)
	}
	// Make sure the server has the subscriptions before reporting started,
	// when it is reachable; otherwise they are sent on connect.
	if s.nc.IsConnected() {
		if err := s.nc.FlushTimeout(5 * time.Second); err != nil {
			s.log.Warn("nats flush after subscribe", zap.Error(err))
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchDrops()
	}()
	return nil
}

// drain drains the subscriptions: every envelope NATS already delivered to
// the bridge is handed over before it returns.
func (s *coreSource) drain(ctx context.Context) error {
	var errs []error
	for _, sub := range s.subs {
		if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain %s: %w", sub.Subject, err))
		}
	}
	for _, sub := range s.subs {
		for sub.IsValid() && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if n, _, err := sub.Pending(); ctx.Err() != nil && err == nil && n > 0 {
			s.log.Error("shutdown timeout: envelopes received from NATS were not handled; their producers get no receipt",
				zap.String(logging.FieldSubject, sub.Subject), zap.Int("envelopes", n))
		}
	}
	close(s.stop)
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *coreSource) status() (string, bool) { return "", true }

// watchDrops adds the subscriptions' dropped counts to the metric.
func (s *coreSource) watchDrops() {
	last := make([]int, len(s.subs))
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for i, sub := range s.subs {
			n, err := sub.Dropped()
			if err != nil || n <= last[i] {
				continue
			}
			s.m.slowDropped.Add(float64(n - last[i]))
			s.log.Warn("envelopes dropped by NATS (slow consumer)", zap.String(logging.FieldSubject, sub.Subject), zap.Int("dropped", n-last[i]), zap.Int("dropped_total", n))
			last[i] = n
		}
	}
}

// coreDelivery is one envelope received on the subscription.
type coreDelivery struct {
	msg *nats.Msg
	src *coreSource
}

func (d *coreDelivery) subject() string        { return d.msg.Subject }
func (d *coreDelivery) data() []byte           { return d.msg.Data }
func (d *coreDelivery) replyTo() string        { return d.msg.Reply }
func (d *coreDelivery) begin() (string, error) { return "", nil }

// settle publishes a rejection notice for an envelope that was not
// forwarded; there is nothing to acknowledge.
func (d *coreDelivery) settle(fi failureInfo, err error) disposition {
	if err == nil {
		return forwarded
	}
	s, code := d.src, reasonCode(err)
	notice := dlq.FailureMsg(s.cfg.RejectedPrefix+"."+code, d.msg.Data, d.msg.Header, dlq.Failure{
		Code: code, Reason: err.Error(), OriginalSubject: d.msg.Subject, Producer: fi.producer, EnvelopeID: fi.id,
	})
	if perr := s.nc.PublishMsg(notice); perr != nil {
		s.m.receiptErrors.Inc()
		s.log.Error("publish rejection notice", zap.String(logging.FieldReason, code), zap.Error(perr))
	}
	return rejected
}
