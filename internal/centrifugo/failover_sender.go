package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// FailoverSender is a Sender over several Centrifugo nodes, one Sender
// each (HTTPSenders to the nodes' API URLs), in order of preference. A
// request goes to the first node believed healthy; when that node is
// unavailable (what the Forwarder would retry: a *RequestError with
// Unavailable, a refused API key, any other error) the same request goes to
// the next node within the same Send, and the node is marked down. Every
// Recheck, the nodes marked down are probed with Ready and marked up again
// when they answer, so traffic returns to the preferred node. When every
// node is marked down, each is still tried, in order.
//
// Order: the Forwarder never sends a channel's next request before the
// previous one's outcome, and failover happens inside one Send, so
// per-channel order holds whichever node answers.
//
// Duplicates: a request that timed out on one node may have been applied
// there. It is sent to the next node with the same idempotency keys, which
// that node drops as repeats only if the nodes share their state
// (Centrifugo's Redis engine keeps idempotency results in Redis); with the
// memory engine each node has its own and the copy reaches subscribers.
type FailoverSender struct {
	nodes []FailoverNode
	cfg   FailoverConfig
	log   *zap.Logger

	mu     sync.Mutex
	down   []bool
	closed bool // no probe starts after Close

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ Sender = (*FailoverSender)(nil)

// FailoverNode is one Centrifugo node of a FailoverSender.
type FailoverNode struct {
	Name   string // names the node in logs and errors, e.g. its API URL
	Sender Sender
}

// FailoverConfig tunes a FailoverSender.
type FailoverConfig struct {
	// Recheck is how often the nodes marked down are probed; default 2s.
	Recheck time.Duration
	// ProbeTimeout bounds one probe; default 2s.
	ProbeTimeout time.Duration
}

// Errors of a FailoverSender that sends nothing.
var (
	errNoNodes      = errors.New("centrifugo: no API URL configured")
	errSenderClosed = errors.New("centrifugo: sender closed")
)

// NewFailoverSender returns a sender over nodes, the first preferred, and
// starts the re-check of the nodes marked down; Close stops it.
func NewFailoverSender(cfg FailoverConfig, log *zap.Logger, nodes ...FailoverNode) *FailoverSender {
	if cfg.Recheck <= 0 {
		cfg.Recheck = 2 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	s := &FailoverSender{nodes: nodes, cfg: cfg, log: log, down: make([]bool, len(nodes))}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.recheck()
	return s
}

// Send implements Sender: the request goes to the first healthy node, and
// on to the next ones while nodes are unavailable. A refusal (a request
// error that sending again would not fix, or any reply) is returned as is.
func (s *FailoverSender) Send(ctx context.Context, cmds []Command) ([]Reply, error) {
	if len(s.nodes) == 0 {
		return nil, &RequestError{Err: errNoNodes}
	}
	var errs []error
	for _, i := range s.order() {
		replies, err := s.nodes[i].Sender.Send(ctx, cmds)
		if err == nil {
			s.markUp(i)
			return replies, nil
		}
		if !unavailable(err) || ctx.Err() != nil {
			return nil, err
		}
		s.markDown(i, err)
		errs = append(errs, fmt.Errorf("%s: %w", s.nodes[i].Name, err))
	}
	return nil, allFailed(errs)
}

// allFailed is the error of a request no node took: unavailable, with the
// status of the last node's answer (a refused key stays visible as such).
func allFailed(errs []error) error {
	re := &RequestError{Unavailable: true, Err: errors.Join(errs...)}
	var last *RequestError
	if errors.As(errs[len(errs)-1], &last) {
		re.HTTPStatus = last.HTTPStatus
	}
	return re
}

// Ready implements Sender: nil as soon as one node answers. The nodes are
// probed at once, so a node that hangs does not hold up the answer; the
// probes still running when it returns end with ctx.
func (s *FailoverSender) Ready(ctx context.Context) error {
	if len(s.nodes) == 0 {
		return errNoNodes
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errSenderClosed
	}
	s.wg.Add(len(s.nodes)) // under mu: before Close's Wait, or not at all
	s.mu.Unlock()
	results := make(chan error, len(s.nodes))
	for i, n := range s.nodes {
		go func() {
			defer s.wg.Done()
			err := n.Sender.Ready(ctx)
			switch {
			case err == nil:
				s.markUp(i)
			case ctx.Err() == nil:
				s.markDown(i, err)
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", n.Name, err)
			}
			results <- err
		}()
	}
	var errs []error
	for range s.nodes {
		err := <-results
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no Centrifugo node answers: %w", errors.Join(errs...))
}

// Close stops the re-check and waits for the probes Ready started, which
// end with their context (idempotent). Send still works after Close; Ready
// answers an error.
func (s *FailoverSender) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// order lists the node indexes to try: those up, then those down, each in
// order of preference.
func (s *FailoverSender) order() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.nodes))
	for _, wantDown := range []bool{false, true} {
		for i, d := range s.down {
			if d == wantDown {
				out = append(out, i)
			}
		}
	}
	return out
}

func (s *FailoverSender) markDown(i int, err error) {
	s.mu.Lock()
	was := s.down[i]
	s.down[i] = true
	s.mu.Unlock()
	if !was && len(s.nodes) > 1 {
		s.log.Warn("centrifugo node unavailable, sending to the next one", zap.String("node", s.nodes[i].Name), zap.Error(err))
	}
}

func (s *FailoverSender) markUp(i int) {
	s.mu.Lock()
	was := s.down[i]
	s.down[i] = false
	s.mu.Unlock()
	if was {
		s.log.Info("centrifugo node available again", zap.String("node", s.nodes[i].Name))
	}
}

// Down lists the names of the nodes marked down.
func (s *FailoverSender) Down() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i, d := range s.down {
		if d {
			out = append(out, s.nodes[i].Name)
		}
	}
	return out
}

// recheck probes the nodes marked down every Recheck until Close.
func (s *FailoverSender) recheck() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Recheck)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		for i, n := range s.nodes {
			s.mu.Lock()
			down := s.down[i]
			s.mu.Unlock()
			if !down {
				continue
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ProbeTimeout)
			err := n.Sender.Ready(ctx)
			cancel()
			if err == nil {
				s.markUp(i)
			}
		}
	}
}
