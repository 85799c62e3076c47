package tokensvc

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/logging"
)

// Disconnect code and reason of a users-file user removed or whose password
// changed: in Centrifugo's range of terminal codes for applications
// (4500-4999), so clients do not reconnect.
const (
	revokedCode   = 4501
	revokedReason = "access revoked: user removed or password changed"
)

// revokeBatch is the most commands sent in one request; revokeTimeout bounds
// each request to one node (the HTTP client's timeout, so that with several
// nodes the next one still gets its own); revokeAttempts are the tries of a
// request no node answered.
const (
	revokeBatch    = 1000
	revokeTimeout  = 5 * time.Second
	revokeAttempts = 3
)

// A run whose requests failed (Centrifugo not reached, a presence lookup
// unanswered) is run again after revokeRetryFirst, doubling up to
// revokeRetryMax, and at every reload meanwhile, until it succeeds or until
// the tokens handed out before it have expired: the longer token lifetime
// and revokeExpiryGrace, how long Centrifugo keeps an expired connection or
// subscription (client.expired_close_delay and expired_sub_close_delay,
// 25s by default). By then every client has had to ask for new tokens.
const (
	revokeRetryFirst  = time.Second
	revokeRetryMax    = 30 * time.Second
	revokeExpiryGrace = 30 * time.Second
)

// revoker takes access away live: after each reload of the channels or users
// file it compares what the service hands out now with what it handed out
// before and has Centrifugo unsubscribe and disconnect accordingly (see
// revocationPlan), within moments of the reload. The state it compares
// against moves only when Centrifugo took every command, so that a failed
// run is planned again, and sent again, by the retries and the next reload.
type revoker struct {
	api     *centrifugo.ServerAPI
	log     *zap.Logger
	current func() accessState
	kick    chan struct{}
	// retryWindow: how long a failed run is retried (see revokeRetryFirst).
	retryWindow time.Duration

	base        accessState // the state every revocation was applied for
	failedSince time.Time   // start of the first failed run since then; zero if none

	commands    *prometheus.CounterVec // kind: unsubscribe, disconnect
	errors      prometheus.Counter
	noPresence  prometheus.Counter
	runDuration prometheus.Histogram
}

func newRevoker(cfg Config, log *zap.Logger, reg prometheus.Registerer, current func() accessState) *revoker {
	r := &revoker{
		api:     centrifugo.NewServerAPI(cfg.CentrifugoAPIURLs(), cfg.CentrifugoAPIKey, &http.Client{Timeout: revokeTimeout}),
		log:     log.With(zap.String(logging.FieldComponent, "revocation")),
		current: current,
		base:    current(),
		kick:    make(chan struct{}, 1),

		retryWindow: max(cfg.TokenTTL, cfg.SubscriptionTokenTTL) + revokeExpiryGrace,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "instant_tokensvc_revocations_total", Help: "Unsubscribe and disconnect commands Centrifugo applied after a reload, by kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "instant_tokensvc_revocation_errors_total", Help: "Revocation commands or presence lookups that failed (logged; a failed request counts again at each retry).",
		}),
		noPresence: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "instant_tokensvc_revocation_presence_unavailable_total", Help: "Changed channels whose namespace has no presence: users outside the users file were not checked there.",
		}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "instant_tokensvc_revocation_duration_seconds", Help: "Time from a reload to Centrifugo having applied its revocations.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	reg.MustRegister(r.commands, r.errors, r.noPresence, r.runDuration)
	return r
}

// reloaded is the files' reload hook: it wakes the revoker and returns.
func (r *revoker) reloaded() {
	select {
	case r.kick <- struct{}{}:
	default: // a run is due already; it reads the newest state
	}
}

// run revokes after each reload, and again after a run that failed, until
// ctx ends.
func (r *revoker) run(ctx context.Context) {
	var retry <-chan time.Time // nil: nothing to retry
	delay := revokeRetryFirst
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-retry:
		}
		if r.revoke(ctx) {
			retry, delay = nil, revokeRetryFirst
			continue
		}
		retry = time.After(delay)
		delay = min(2*delay, revokeRetryMax)
	}
}

// revokeStats are the numbers of one run, logged once. retry counts the
// failures that running again may fix (requests, not Centrifugo's refusal
// of a command).
type revokeStats struct {
	disconnected, unsubscribed, presenceChecked, presenceUnavailable, errors, retry int
}

// revoke compares the current state with the one of the last complete run
// and applies the difference, then logs the numbers once. It reports
// whether the run is complete: every request succeeded, or the run failed
// for longer than the retry window and is given up.
func (r *revoker) revoke(ctx context.Context) bool {
	start := time.Now()
	cur := r.current()
	plan := planRevocations(r.base, cur)
	var st revokeStats
	cmds := make([]centrifugo.AdminCommand, 0, len(plan.disconnect)+len(plan.unsubscribe))
	for _, id := range plan.disconnect {
		cmds = append(cmds, centrifugo.AdminCommand{Disconnect: &centrifugo.Disconnect{User: id, Code: revokedCode, Reason: revokedReason}})
	}
	for i := range plan.unsubscribe {
		cmds = append(cmds, centrifugo.AdminCommand{Unsubscribe: &plan.unsubscribe[i]})
	}
	cmds = append(cmds, r.presenceUnsubscribes(ctx, cur, plan, &st)...)
	r.send(ctx, cmds, &st)
	done := r.settle(start, cur, st)
	d := time.Since(start)
	r.runDuration.Observe(d.Seconds())
	r.log.Info("access revoked after reload",
		zap.Int("users_disconnected", st.disconnected), zap.Int("unsubscribed", st.unsubscribed),
		zap.Int("changed_channels", len(plan.stricter)), zap.Int("presence_checked", st.presenceChecked),
		zap.Int("presence_unavailable", st.presenceUnavailable), zap.Int("errors", st.errors),
		zap.Bool("retrying", !done), zap.Duration("duration", d))
	return done
}

// settle moves the base to cur when the run started at start is complete,
// or when runs have failed for longer than the retry window.
func (r *revoker) settle(start time.Time, cur accessState, st revokeStats) bool {
	if st.retry > 0 && r.failedSince.IsZero() {
		r.failedSince = start
	}
	if st.retry > 0 && time.Since(r.failedSince) <= r.retryWindow {
		return false
	}
	if st.retry > 0 {
		r.log.Error("revocation given up: Centrifugo did not take it for longer than the token lifetimes; every client has needed new tokens since, which the service refuses to those who lost access",
			zap.Duration("failing_for", time.Since(r.failedSince)), zap.Int("errors", st.errors))
	}
	r.base, r.failedSince = cur, time.Time{}
	return true
}

// presenceUnsubscribes asks presence who is subscribed to each changed
// channel and unsubscribes the connections of users outside the users file
// that the new ACL no longer admits (anonymous ones by client id).
func (r *revoker) presenceUnsubscribes(ctx context.Context, cur accessState, plan revocationPlan, st *revokeStats) []centrifugo.AdminCommand {
	var cmds []centrifugo.AdminCommand
	for _, ch := range plan.stricter {
		clients, err := r.api.Presence(ctx, ch)
		var re *centrifugo.ReplyError
		switch {
		case errors.As(err, &re) && re.Code == centrifugo.ErrCodeNotAvailable:
			st.presenceUnavailable++
			r.noPresence.Inc()
			continue
		case err != nil:
			st.errors++
			st.retry++
			r.errors.Inc()
			r.log.Error("presence lookup failed; retrying", zap.String(logging.FieldChannel, ch), zap.Error(err))
			continue
		}
		st.presenceChecked++
		for _, ci := range clients {
			if plan.fileUsers[ci.User] || cur.reg.CanSubscribe(presenceUser(ci), ch) {
				continue
			}
			u := &centrifugo.Unsubscribe{Channel: ch, User: ci.User}
			if ci.User == "" {
				u.Client = ci.Client
			}
			cmds = append(cmds, centrifugo.AdminCommand{Unsubscribe: u})
		}
	}
	return cmds
}

// send applies cmds in batches, trying a batch again while Centrifugo does
// not answer, and counts the outcome: a batch that no node took is to be
// retried; a command Centrifugo refused is not.
func (r *revoker) send(ctx context.Context, cmds []centrifugo.AdminCommand, st *revokeStats) {
	for len(cmds) > 0 {
		batch := cmds[:min(len(cmds), revokeBatch)]
		cmds = cmds[len(batch):]
		errs, err := r.sendBatch(ctx, batch)
		failed, firstErr := 0, err
		for i, c := range batch {
			if err == nil && errs[i] == nil {
				if c.Disconnect != nil {
					st.disconnected++
					r.commands.WithLabelValues("disconnect").Inc()
				} else {
					st.unsubscribed++
					r.commands.WithLabelValues("unsubscribe").Inc()
				}
				continue
			}
			failed++
			if firstErr == nil {
				firstErr = errs[i]
			}
		}
		switch {
		case err != nil:
			st.retry += failed
			r.log.Error("revocation request failed; retrying", zap.Int("batch", len(batch)), zap.Error(err))
		case failed > 0:
			r.log.Error("Centrifugo refused revocation commands; those users keep access until their tokens expire",
				zap.Int("failed", failed), zap.Int("batch", len(batch)), zap.Error(firstErr))
		}
		st.errors += failed
		r.errors.Add(float64(failed))
	}
}

func (r *revoker) sendBatch(ctx context.Context, batch []centrifugo.AdminCommand) ([]error, error) {
	var err error
	for attempt := range revokeAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var errs []error
		errs, err = r.api.Revoke(ctx, batch)
		var re *centrifugo.RequestError
		if err == nil || !errors.As(err, &re) || !re.Unavailable {
			return errs, err
		}
	}
	return nil, err
}
