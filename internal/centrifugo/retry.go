package centrifugo

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// send delivers one batch, calls sent once Centrifugo is done with it,
// then every item's Done.
func (f *Forwarder) send(batch []*Item, sent func()) {
	outcomes := f.deliver(batch)
	sent()
	for i, it := range batch {
		it.Done(outcomes[i])
	}
}

// deliver sends batch in one request, retrying it while Centrifugo is
// unavailable, and returns each item's outcome. A request Centrifugo finds
// too large (413) is split in two, sent one half after the other (so a
// channel's order holds), until the item too large on its own is found: it
// alone fails with too_large.
func (f *Forwarder) deliver(batch []*Item) []Outcome {
	ncmd := 0
	for _, it := range batch {
		ncmd += len(it.Commands)
	}
	cmds := make([]Command, 0, ncmd)
	for _, it := range batch {
		cmds = append(cmds, it.Commands...)
	}
	replies, err := f.sendRetrying(cmds)

	switch {
	case err != nil && status(err) == http.StatusRequestEntityTooLarge && len(batch) > 1:
		h := len(batch) / 2
		return append(f.deliver(batch[:h]), f.deliver(batch[h:])...)
	case err != nil && status(err) == http.StatusRequestEntityTooLarge:
		f.log.Warn("centrifugo refused a request of one envelope as too large (413)", zap.Int("commands", ncmd), zap.Int("bytes", batch[0].size))
		return []Outcome{{Err: &Error{code: codeTooLarge, msg: fmt.Sprintf("Centrifugo refused its request of %d bytes as too large (HTTP 413)", batch[0].size)}}}
	case err != nil:
		return f.fail(batch, ncmd, err)
	}
	outcomes := make([]Outcome, len(batch))
	i := 0
	for k, it := range batch {
		outcomes[k] = outcome(it, replies[i:i+len(it.Commands)])
		i += len(it.Commands)
	}
	return outcomes
}

// sendOnce sends cmds once and checks that the replies answer them: too
// few or too many, or of the wrong kind, say nothing of what Centrifugo
// did, and count as a failed request to send again (safe, since every
// command carries its idempotency key).
func (f *Forwarder) sendOnce(cmds []Command) ([]Reply, error) {
	replies, err := f.sender.Send(f.abortCtx, cmds)
	if err != nil {
		return nil, err
	}
	if len(replies) != len(cmds) {
		return nil, &RequestError{Unavailable: true, HTTPStatus: 200, Err: fmt.Errorf("centrifugo answered %d replies to %d commands", len(replies), len(cmds))}
	}
	if err := checkReplies(cmds, replies); err != nil {
		return nil, &RequestError{Unavailable: true, HTTPStatus: 200, Err: fmt.Errorf("centrifugo: %w", err)}
	}
	return replies, nil
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
		replies, err := f.sendOnce(cmds)
		f.obs.Request(len(cmds), time.Since(start), err)
		if err == nil || !unavailable(err) || attempt >= f.cfg.Attempts {
			return replies, err
		}
		if refusedKey(err) {
			f.log.Error("Centrifugo refuses the bridge's API key: check INSTANT_CENTRIFUGO_API_KEY against Centrifugo's http_api.key; retrying",
				zap.Int("status", status(err)), zap.Int("attempt", attempt))
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
func (f *Forwarder) fail(batch []*Item, ncmd int, err error) []Outcome {
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
	outcomes := make([]Outcome, len(batch))
	for i := range outcomes {
		outcomes[i] = Outcome{Err: &Error{code: code, msg: msg, shutdown: aborted}}
	}
	return outcomes
}

// unavailable reports whether a failed request may succeed if sent again:
// what the Sender says in a *RequestError, and true for any other error. A
// refused API key (401, 403) is an operator's problem, not the envelopes':
// it is retried like an outage (while a key rotation completes), so that
// stored envelopes are not dead-lettered for it.
func unavailable(err error) bool {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Unavailable || refusedKey(err)
	}
	return true
}

// refusedKey reports whether Centrifugo refused the request's credentials.
func refusedKey(err error) bool {
	s := status(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// status is the HTTP status of a failed request, 0 when there was none.
func status(err error) int {
	var re *RequestError
	if errors.As(err, &re) {
		return re.HTTPStatus
	}
	return 0
}
