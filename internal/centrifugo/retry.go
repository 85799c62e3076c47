package centrifugo

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// send delivers one batch, retrying the whole request while Centrifugo is
// unavailable, calls sent once the request is over, then every item's Done.
func (f *Forwarder) send(batch []*Item, sent func()) {
	ncmd := 0
	for _, it := range batch {
		ncmd += len(it.Commands)
	}
	cmds := make([]Command, 0, ncmd)
	for _, it := range batch {
		cmds = append(cmds, it.Commands...)
	}
	replies, err := f.sendRetrying(cmds)
	sent()
	if err == nil && len(replies) != ncmd {
		err = &RequestError{HTTPStatus: 200, Err: fmt.Errorf("centrifugo answered %d replies to %d commands", len(replies), ncmd)}
	}
	if err != nil {
		f.fail(batch, ncmd, err)
		return
	}
	i := 0
	for _, it := range batch {
		it.Done(outcome(it, replies[i:i+len(it.Commands)]))
		i += len(it.Commands)
	}
}

// sendRetrying sends cmds until Centrifugo answers, refuses, the attempts
// are spent or Close times out.
func (f *Forwarder) sendRetrying(cmds []Command) ([]Reply, error) {
	if len(cmds) == 0 {
		return nil, nil // items without commands: nothing to send
	}
	wait := f.cfg.Backoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		replies, err := f.sender.Send(f.abortCtx, cmds)
		f.obs.Request(len(cmds), time.Since(start), err)
		if err == nil || !unavailable(err) || attempt >= f.cfg.Attempts {
			return replies, err
		}
		f.log.Warn("centrifugo request failed, retrying",
			zap.Int("attempt", attempt), zap.Int("commands", len(cmds)), zap.Duration("backoff", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-f.closed:
			t.Stop()
			return nil, err
		}
		wait = min(2*wait, f.cfg.MaxBackoff)
	}
}

// fail gives every item of a batch the request's error.
func (f *Forwarder) fail(batch []*Item, ncmd int, err error) {
	code, msg := CodeUpstreamUnavailable, err.Error()
	if !unavailable(err) {
		code = CodeUpstreamRejected
	}
	aborted := f.abortCtx.Err() != nil
	switch {
	case aborted:
		msg = "shutdown timeout reached before Centrifugo answered (it may have applied the message): " + err.Error()
	case code == CodeUpstreamUnavailable:
		msg = fmt.Sprintf("centrifugo unreachable after %d attempts: %v", f.cfg.Attempts, err)
	}
	f.log.Error("centrifugo request failed", zap.String("reason", code), zap.Int("commands", ncmd), zap.Error(err))
	for _, it := range batch {
		it.Done(Outcome{Err: &Error{code: code, msg: msg, shutdown: aborted}})
	}
}

// unavailable reports whether a failed request may succeed if sent again:
// what the Sender says in a *RequestError, and true for any other error.
func unavailable(err error) bool {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Unavailable
	}
	return true
}
