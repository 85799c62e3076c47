package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

// Names the bridge uses by default (INSTANT_JETSTREAM_STREAM, INSTANT_DLQ,
// INSTANT_JETSTREAM_CONSUMER, INSTANT_SUBJECT); the tests rely on the defaults.
const (
	envelopeStream = "INSTANT"
	deadLetters    = "INSTANT_DLQ"
	consumerName   = "instant-bridge"
	publishSubject = "instant.publish"
)

const channelsYAML = `channels:
  - name: $users
    level: users
`

// bridgeBinary is ./cmd/bridge, built once per test run.
var bridgeBinary = &stack.Binary{Package: stack.BridgePackage}

func TestMain(m *testing.M) {
	code := m.Run()
	_ = bridgeBinary.Close()
	os.Exit(code)
}

// harness is an embedded NATS, a real Centrifugo and a channels file;
// bridge processes are started on it with startBridge.
type harness struct {
	t            *testing.T
	nats         *testenv.NATS
	cf           *testenv.Centrifugo
	channelsFile string
	signer       *tokens.Signer
	nc           *nats.Conn
	js           jetstream.JetStream
}

func newStack(t *testing.T, channels string) *harness {
	t.Helper()
	testenv.BuildBinary(t, bridgeBinary) // build before starting anything, so its time is not counted against the servers
	s := &harness{t: t, nats: testenv.StartNATS(t), cf: testenv.StartCentrifugo(t)}
	s.channelsFile = filepath.Join(t.TempDir(), "channels.yaml")
	s.writeChannels(channels)
	var err error
	if s.signer, err = tokens.NewHMAC([]byte(s.cf.HMACSecret)); err != nil {
		t.Fatal(err)
	}
	s.nc = s.nats.Connect(t, nats.Name("faulttest"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	return s
}

// writeChannels replaces the channels file atomically (write, then rename),
// as an operator's deploy would.
func (s *harness) writeChannels(body string) {
	s.t.Helper()
	tmp := s.channelsFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.channelsFile); err != nil {
		s.t.Fatal(err)
	}
}

// jetstreamEnv is the bridge configuration of the jetstream tests: short ack
// wait and backoff so that redeliveries happen within a test.
var jetstreamEnv = []string{
	"INSTANT_DELIVERY=jetstream",
	"INSTANT_JETSTREAM_ACK_WAIT=2s",
	"INSTANT_JETSTREAM_BACKOFF=100ms,200ms,500ms",
	"INSTANT_RETRY_ATTEMPTS=2",
	"INSTANT_RETRY_BACKOFF=20ms",
	"INSTANT_RETRY_MAX_BACKOFF=50ms",
}

// startBridge starts a bridge process with the stack's settings, then env
// (KEY=VALUE, later ones win), and waits until its /readyz answers 200. It
// is stopped at cleanup, its output logged when the test failed.
func (s *harness) startBridge(name string, env ...string) *stack.Bridge {
	s.t.Helper()
	vars := []string{
		"INSTANT_NATS_URL=" + s.nats.URL(),
		"INSTANT_NATS_NAME=" + name,
		"INSTANT_CENTRIFUGO_API_URL=" + s.cf.APIURL(),
		"INSTANT_CENTRIFUGO_API_KEY=" + s.cf.APIKey,
		"INSTANT_CENTRIFUGO_TIMEOUT=2s",
		"INSTANT_CHANNELS_FILE=" + s.channelsFile,
		"INSTANT_LOG_LEVEL=warn",
		"INSTANT_SHUTDOWN_TIMEOUT=10s",
	}
	return testenv.StartBridge(s.t, stack.BridgeOptions{
		Binary: testenv.BuildBinary(s.t, bridgeBinary),
		Name:   name,
		Env:    append(vars, env...),
	})
}

// signal sends sig to a bridge process, failing the test if it cannot.
func signal(t *testing.T, p *stack.Bridge, sig syscall.Signal) {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits up to d for a bridge's /readyz to answer 200.
func waitReady(t *testing.T, p *stack.Bridge, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// runCLI runs the bridge binary with args (e.g. dlq replay ...) against the
// stack's NATS and returns its output.
func (s *harness) runCLI(args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.BuildBinary(s.t, bridgeBinary), args...)
	cmd.Env = stack.ChildEnv("INSTANT_NATS_URL=" + s.nats.URL())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// envelope is a publish envelope with a known id.
func envelope(channel, id string) []byte {
	return fmt.Appendf(nil, `{"channel":%q,"message":"m","id":%q}`, channel, id)
}

// makeIDs returns n distinct envelope ids prefix-0 ... prefix-(n-1).
func makeIDs(prefix string, from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + "-" + strconv.Itoa(from+i)
	}
	return ids
}

// publish stores the envelopes through JetStream, chunk at a time with
// pause between chunks (0: as fast as acks come back), and returns an error
// unless every one was stored. The id is also the Nats-Msg-Id. It may run in
// a goroutine of its own (one at a time).
func (s *harness) publish(channel string, ids []string, chunk int, pause time.Duration) error {
	if chunk <= 0 {
		chunk = len(ids)
	}
	for start := 0; start < len(ids); start += chunk {
		end := min(start+chunk, len(ids))
		futures := make([]jetstream.PubAckFuture, 0, end-start)
		for _, id := range ids[start:end] {
			m := &nats.Msg{Subject: publishSubject, Data: envelope(channel, id), Header: nats.Header{}}
			m.Header.Set(nats.MsgIdHdr, id)
			f, err := s.js.PublishMsgAsync(m)
			if err != nil {
				return fmt.Errorf("publish %s: %w", id, err)
			}
			futures = append(futures, f)
		}
		select {
		case <-s.js.PublishAsyncComplete():
		case <-time.After(20 * time.Second):
			return fmt.Errorf("publish: JetStream did not ack %d envelopes within 20s", s.js.PublishAsyncPending())
		}
		for _, f := range futures {
			select {
			case err := <-f.Err():
				return fmt.Errorf("publish %s: %w", f.Msg().Header.Get(nats.MsgIdHdr), err)
			case <-f.Ok():
			}
		}
		if pause > 0 && end < len(ids) {
			time.Sleep(pause) // pacing the producer, not waiting for anything
		}
	}
	return nil
}

// mustPublish is publish that fails the test; call it from the test's goroutine.
func (s *harness) mustPublish(channel string, ids []string, chunk int, pause time.Duration) {
	s.t.Helper()
	if err := s.publish(channel, ids, chunk, pause); err != nil {
		s.t.Fatal(err)
	}
}

// publishRetrying stores one envelope, retrying (with the same Nats-Msg-Id,
// so JetStream deduplicates) until it is stored or d passes; it returns the
// number of failed attempts.
func (s *harness) publishRetrying(channel, id string, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	failed := 0
	for {
		m := &nats.Msg{Subject: publishSubject, Data: envelope(channel, id), Header: nats.Header{}}
		m.Header.Set(nats.MsgIdHdr, id)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			return failed, nil
		}
		failed++
		if time.Now().After(deadline) {
			return failed, fmt.Errorf("publish %s: still failing after %v: %w", id, d, err)
		}
		time.Sleep(50 * time.Millisecond) // retry backoff
	}
}

// logLeftovers logs the consumer's state and the envelopes still in the
// stream, to tell a lost ack from a retention inconsistency of the server.
func (s *harness) logLeftovers() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := s.js.Consumer(ctx, envelopeStream, consumerName); err == nil {
		if ci, err := c.Info(ctx); err == nil {
			s.t.Logf("consumer: pending %d, ack pending %d, redelivered %d, delivered stream seq %d, ack floor stream seq %d",
				ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.Delivered.Stream, ci.AckFloor.Stream)
		}
	}
	st, err := s.js.Stream(ctx, envelopeStream)
	if err != nil {
		return
	}
	info, err := st.Info(ctx)
	if err != nil {
		return
	}
	s.t.Logf("stream: %d messages, first seq %d, last seq %d", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	for seq, n := info.State.FirstSeq, 0; seq <= info.State.LastSeq && n < 5; seq++ {
		if m, err := st.GetMsg(ctx, seq); err == nil {
			s.t.Logf("left in the stream: seq %d: %s", seq, m.Data)
			n++
		}
	}
}

// streamMsgs is the number of envelopes left in the envelope stream (a
// work queue: acked and terminated ones are removed).
func (s *harness) streamMsgs() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, envelopeStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// ackPending is the number of envelopes the bridges' consumer was handed
// and has not acked yet.
func (s *harness) ackPending() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.js.Consumer(ctx, envelopeStream, consumerName)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumAckPending, nil
}

// letters lists every dead letter, by envelope id.
func (s *harness) letters() (map[string][]dlq.Letter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := dlq.Open(ctx, s.nc, deadLetters)
	if err != nil {
		return nil, err
	}
	all, err := st.List(ctx, dlq.Filter{}, 0)
	if err != nil {
		return nil, err
	}
	out := map[string][]dlq.Letter{}
	for _, l := range all {
		id := l.EnvelopeID
		if id == "" {
			var env struct{ ID string }
			_ = json.Unmarshal(l.Data, &env)
			id = env.ID
		}
		out[id] = append(out[id], l)
	}
	return out, nil
}

// receiver counts the envelope ids a websocket subscriber receives.
type receiver = testenv.IDCounter

// subscribe connects a websocket client as user "u", subscribes it to
// channels, and counts what it receives until the test ends.
func (s *harness) subscribe(channels ...string) *receiver {
	s.t.Helper()
	conn, _, err := s.signer.Connection("u", nil, 5*time.Minute)
	if err != nil {
		s.t.Fatal(err)
	}
	sub := testenv.Connect(s.t, s.cf.WebsocketURL(), conn)
	for _, ch := range channels {
		tok, _, err := s.signer.Subscription("u", ch, 5*time.Minute)
		if err != nil {
			s.t.Fatal(err)
		}
		sub.MustSubscribe(ch, tok)
	}
	return testenv.CountIDs(s.t, sub)
}

// account is where every published id ended up.
type account struct {
	published    int
	received     map[string]int          // id -> copies received
	deadLettered map[string][]dlq.Letter // id -> dead letters
	missing      []string                // neither received nor dead-lettered
	unexpected   []string                // received but never published by the test
	duplicates   int                     // extra copies received
	dupIDs       int                     // ids received more than once
	both         int                     // ids received and dead-lettered
	streamLeft   uint64
}

func (a *account) String() string {
	return fmt.Sprintf("%d published: %d delivered (%d duplicate copies of %d ids), %d dead-lettered, %d both delivered and dead-lettered, %d lost, %d unknown ids received, %d left in the stream",
		a.published, len(a.received)-len(a.unexpected), a.duplicates, a.dupIDs, len(a.deadLettered), a.both, len(a.missing), len(a.unexpected), a.streamLeft)
}

// settle waits (up to d) until every id was received by one of the
// receivers or dead-lettered and the envelope stream is empty, then waits
// briefly for late duplicates and returns the account. It does not fail the
// test: the caller checks what it expects.
func (s *harness) settle(ids []string, d time.Duration, rs ...*receiver) *account {
	s.t.Helper()
	a := &account{published: len(ids)}
	collect := func() error {
		a.received = map[string]int{}
		for _, r := range rs {
			for id, n := range r.Snapshot() {
				a.received[id] += n
			}
		}
		var err error
		if a.deadLettered, err = s.letters(); err != nil {
			return err
		}
		a.missing = a.missing[:0]
		for _, id := range ids {
			if a.received[id] == 0 && len(a.deadLettered[id]) == 0 {
				a.missing = append(a.missing, id)
			}
		}
		if a.streamLeft, err = s.streamMsgs(); err != nil {
			return err
		}
		if len(a.missing) > 0 || a.streamLeft > 0 {
			return fmt.Errorf("%d ids neither received nor dead-lettered, %d envelopes left in the stream", len(a.missing), a.streamLeft)
		}
		return nil
	}
	if err := stack.Eventually(d, collect); err != nil {
		s.t.Logf("not settled: %v", err)
		s.logLeftovers()
		return a.finish(ids)
	}
	// Late duplicates (a redelivery racing the ack) arrive within moments.
	time.Sleep(500 * time.Millisecond)
	if err := collect(); err != nil {
		s.t.Logf("after the grace period: %v", err)
	}
	return a.finish(ids)
}

func (a *account) finish(ids []string) *account {
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	a.unexpected, a.duplicates, a.dupIDs, a.both = nil, 0, 0, 0
	for id, n := range a.received {
		if !known[id] {
			a.unexpected = append(a.unexpected, id)
			continue
		}
		if n > 1 {
			a.duplicates += n - 1
			a.dupIDs++
		}
		if len(a.deadLettered[id]) > 0 {
			a.both++
		}
	}
	sort.Strings(a.unexpected)
	sort.Strings(a.missing)
	return a
}

// requireNoLoss fails the test if an id is lost, an unknown id arrived or
// envelopes are left in the stream.
func (a *account) requireNoLoss(t *testing.T) {
	t.Helper()
	if len(a.missing) > 0 {
		t.Errorf("%d envelopes lost (neither received nor dead-lettered), e.g. %v", len(a.missing), head(a.missing, 10))
	}
	if len(a.unexpected) > 0 {
		t.Errorf("received %d ids the test never published, e.g. %v", len(a.unexpected), head(a.unexpected, 10))
	}
	if a.streamLeft > 0 {
		t.Errorf("%d envelopes left in stream %s, want it empty", a.streamLeft, envelopeStream)
	}
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
