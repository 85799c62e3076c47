package bridge_test

// Tests of issue 12's hardening points, one per point, against a real NATS
// and the real Centrifugo.

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/testenv"
)

// TestHardening1EnvelopeThatCannotBeDeadLetteredWhole: a stored envelope
// within a few hundred bytes of max_payload fails (too_large); its dead
// letter, with the bridge's headers, would exceed max_payload. It is
// dead-lettered truncated, leaves the stream, and the next envelope flows.
func TestHardening1EnvelopeThatCannotBeDeadLetteredWhole(t *testing.T) {
	const maxPayload = 16 << 10
	n := testenv.StartNATS(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	s := newStackOn(t, n, jetstreamMode, func(c *bridge.Config) { c.MaxEnvelopeBytes = 4096 })
	s.startBridge()
	sub := s.subscriber("$users")
	big := `{"channel":"$users","message":"` + strings.Repeat("x", maxPayload-300) + `"}`
	s.jsPublish(big, "X-Trace", "t-1")
	s.jsPublish(`{"channel":"$users","message":"after","id":"after-1"}`)
	if got := collect(t, sub, 1, 10*time.Second); got["after-1"] != 1 {
		t.Errorf("received %v, want the envelope after the large one", got)
	}
	store := s.dlqStore()
	testenv.Eventually(t, 10*time.Second, func() error {
		ls, err := store.List(context.Background(), dlq.Filter{}, 0)
		if err != nil || len(ls) != 1 {
			return fmt.Errorf("%d dead letters (%v), want 1", len(ls), err)
		}
		l := ls[0]
		if l.Code != "too_large" || l.Truncated != len(big) || len(l.Data) >= len(big) || !strings.HasPrefix(big, string(l.Data)) {
			return fmt.Errorf("dead letter code %s, truncated %d, %d bytes kept: want too_large, truncated %d", l.Code, l.Truncated, len(l.Data), len(big))
		}
		if l.Deliveries != 1 {
			return fmt.Errorf("dead-lettered after %d deliveries, want 1", l.Deliveries)
		}
		return nil
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := s.streamMsgs(); n != 0 {
			return fmt.Errorf("%d envelopes left in the stream", n)
		}
		return nil
	})
}

// TestHardening3ReceiptsOnlyUnderThePrefix: in core mode, an envelope whose
// reply subject is outside INSTANT_RECEIPT_PREFIX is forwarded, and no
// receipt is published there; the refusal is counted.
func TestHardening3ReceiptsOnlyUnderThePrefix(t *testing.T) {
	s := startStack(t)
	sub := s.subscriber("$users")
	outside, err := s.nc.SubscribeSync("elsewhere.receipts")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.nc.PublishRequest("instant.publish", "elsewhere.receipts", []byte(`{"channel":"$users","message":"m","id":"r-1"}`)); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, sub, 1, 10*time.Second); got["r-1"] != 1 {
		t.Errorf("received %v, want r-1 forwarded", got)
	}
	if msg, err := outside.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("receipt published outside the prefix: %s", msg.Data)
	}
	if v := metricValue(t, "http://"+s.b.HTTPAddr()+"/metrics", "instant_bridge_receipts_refused_total"); v != 1 {
		t.Errorf("instant_bridge_receipts_refused_total %v, want 1", v)
	}
	if r := s.request("instant.publish", `{"channel":"$users","message":"m"}`); !r.OK {
		t.Errorf("receipt under _INBOX.: %+v", r)
	}
}

// TestHardening3CoreDocumentedPermissions runs the core-mode bridge as a
// NATS user with exactly the permissions the README lists: envelopes are
// forwarded, rejected with a notice, and answered, with no violation.
func TestHardening3CoreDocumentedPermissions(t *testing.T) {
	n := testenv.StartNATS(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "producer", Password: "producer-pw"},
			{Username: "bridge", Password: "bridge-pw", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"instant.rejected.>", "_INBOX.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"instant.publish", "instant.publish.>"}},
			}},
		}
		o.NoAuthUser = "producer"
	})
	producer := n.Connect(t, nats.UserInfo("producer", "producer-pw"))
	s := newStackOn(t, n, func(c *bridge.Config) { c.NATSUser, c.NATSPassword = "bridge", "bridge-pw" })
	s.nc = producer
	s.startBridge()
	sub := s.subscriber("$users")
	notices, err := producer.SubscribeSync("instant.rejected.>")
	if err != nil {
		t.Fatal(err)
	}
	if r := s.request("instant.publish", `{"channel":"$users","message":"ok","id":"p-1"}`); !r.OK {
		t.Errorf("receipt %+v, want ok", r)
	}
	if r := s.request("instant.publish.billing", `{"channel":"$nope","message":"bad"}`); r.OK || r.Error.Code != "unknown_channel" {
		t.Errorf("receipt %+v, want unknown_channel", r)
	}
	if m, err := notices.NextMsg(5 * time.Second); err != nil || m.Subject != "instant.rejected.unknown_channel" {
		t.Errorf("rejection notice: %v %v", m, err)
	}
	if got := collect(t, sub, 1, 10*time.Second); got["p-1"] != 1 {
		t.Errorf("received %v, want p-1", got)
	}
	if errs := s.logs.FilterMessage("nats async error"); errs.Len() > 0 {
		t.Errorf("NATS errors with the documented permissions: %v", errs.All())
	}
}

// TestHardening4ConsumerDeleted: with INSTANT_JETSTREAM_CREATE=true the
// bridge sets up a deleted consumer, or a deleted stream, again and goes on.
func TestHardening4ConsumerDeleted(t *testing.T) {
	s := startStack(t, jetstreamMode)
	sub := s.subscriber("$users")
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.jsPublish(`{"channel":"$users","message":"m","id":"before"}`)
	if got := collect(t, sub, 1, 10*time.Second); got["before"] != 1 {
		t.Fatalf("received %v, want before", got)
	}
	if err := js.DeleteConsumer(ctx, "INSTANT", "instant-bridge"); err != nil {
		t.Fatal(err)
	}
	s.jsPublish(`{"channel":"$users","message":"m","id":"after-consumer"}`)
	if got := collect(t, sub, 1, 15*time.Second); got["after-consumer"] != 1 {
		t.Errorf("received %v after the consumer was deleted, want after-consumer", got)
	}
	if err := js.DeleteStream(ctx, "INSTANT"); err != nil {
		t.Fatal(err)
	}
	// Stored once the bridge created the stream again.
	testenv.Eventually(t, 15*time.Second, func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js.Publish(pctx, "instant.publish", []byte(`{"channel":"$users","message":"m","id":"after-stream"}`), jetstream.WithMsgID("after-stream"))
		return err
	})
	if got := collect(t, sub, 1, 15*time.Second); got["after-stream"] != 1 {
		t.Errorf("received %v after the stream was deleted, want after-stream", got)
	}
}

// TestHardening4ConsumerMissingFailsReadiness: with
// INSTANT_JETSTREAM_CREATE=false, a deleted consumer makes /readyz answer
// 503 naming it, and the bridge resumes once it exists again.
func TestHardening4ConsumerMissingFailsReadiness(t *testing.T) {
	s := newStack(t, jetstreamMode, func(c *bridge.Config) { c.JetStreamCreate = false })
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	createStreams(t, js, []string{"instant.publish", "instant.publish.>"})
	s.startBridge()
	sub := s.subscriber("$users")
	testenv.Eventually(t, 10*time.Second, func() error {
		if body, code := httpGetCode(t, "http://"+s.b.HTTPAddr()+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz %d %s", code, body)
		}
		return nil
	})
	if err := js.DeleteConsumer(ctx, "INSTANT", "instant-bridge"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		body, code := httpGetCode(t, "http://"+s.b.HTTPAddr()+"/readyz")
		if code != 503 || !strings.Contains(body, "instant-bridge") {
			return fmt.Errorf("/readyz %d %s: want 503 naming the consumer", code, body)
		}
		return nil
	})
	createConsumer(t, js)
	s.jsPublish(`{"channel":"$users","message":"m","id":"resumed"}`)
	if got := collect(t, sub, 1, 15*time.Second); got["resumed"] != 1 {
		t.Errorf("received %v once the consumer is back, want resumed", got)
	}
}

func createStreams(t *testing.T, js jetstream.JetStream, subjects []string) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INSTANT", Subjects: subjects, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, dlq.StreamConfig("INSTANT_DLQ", "instant.dlq", 1)); err != nil {
		t.Fatal(err)
	}
	createConsumer(t, js)
}

func createConsumer(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if _, err := js.CreateConsumer(context.Background(), "INSTANT", jetstream.ConsumerConfig{Durable: "instant-bridge", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * time.Second, MaxDeliver: -1}); err != nil {
		t.Fatal(err)
	}
}

// TestHardening5ReservedHeadersInAnyCase: producer headers named like the
// bridge's (Instant-*) or NATS's (Nats-*) in any letter case do not reach
// a rejection notice; other headers do.
func TestHardening5ReservedHeadersInAnyCase(t *testing.T) {
	s := startStack(t)
	notices, err := s.nc.SubscribeSync("instant.rejected.>")
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "instant.publish", Data: []byte(`{"channel":"$nope","message":"x"}`), Header: nats.Header{}}
	m.Header["instant-error-code"] = []string{"forged"}
	m.Header["INSTANT-PRODUCER"] = []string{"forged"}
	m.Header["nats-expected-stream"] = []string{"forged"}
	m.Header["X-Trace"] = []string{"t-1"}
	if err := s.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	n, err := notices.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range n.Header {
		for _, x := range v {
			if x == "forged" {
				t.Errorf("notice header %s: %q carried over from the producer", k, x)
			}
		}
	}
	if n.Header.Get(dlq.HeaderErrorCode) != "unknown_channel" || n.Header.Get("X-Trace") != "t-1" {
		t.Errorf("notice headers %v: want the bridge's code and the producer's X-Trace", n.Header)
	}
}

// TestHardening6ProducerNeedsTheSeparator: when the stream's subjects are
// wider than INSTANT_SUBJECT, an envelope on instant.publishXbilling is not
// producer "billing": it is rejected invalid_envelope naming the subject.
func TestHardening6ProducerNeedsTheSeparator(t *testing.T) {
	s := newStack(t, jetstreamMode, func(c *bridge.Config) { c.JetStreamCreate = false })
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	createStreams(t, js, []string{"instant.*", "instant.publish.>"})
	s.startBridge()
	ctx := context.Background()
	for _, subj := range []string{"instant.publishXbilling", "instant.other"} {
		if _, err := js.Publish(ctx, subj, []byte(`{"channel":"$billing","message":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	store := s.dlqStore()
	testenv.Eventually(t, 10*time.Second, func() error {
		ls, err := store.List(ctx, dlq.Filter{}, 0)
		if err != nil || len(ls) != 2 {
			return fmt.Errorf("%d dead letters (%v), want 2", len(ls), err)
		}
		for _, l := range ls {
			if l.Code != "invalid_envelope" || !strings.Contains(l.Reason, l.OriginalSubject) || l.Header.Get(dlq.HeaderProducer) != "" {
				return fmt.Errorf("dead letter %s %q producer %q: want invalid_envelope naming the subject, no producer", l.Code, l.Reason, l.Header.Get(dlq.HeaderProducer))
			}
		}
		return nil
	})
}

// TestHardening7RefusedAPIKeyIsRetried: Centrifugo refusing the bridge's
// API key (401, as during a key rotation) is an operator's problem: core
// mode retries and answers upstream_unavailable, /readyz fails, an error is
// logged; jetstream mode does not dead-letter the envelopes but naks them,
// and a bridge with the right key forwards them.
func TestHardening7RefusedAPIKeyIsRetried(t *testing.T) {
	s := newStack(t, jetstreamMode)
	good := s.cfg
	s.cfg.CentrifugoAPIKey = "not-the-key"
	s.cfg.Delivery = bridge.DeliveryCore
	s.startBridge()
	if r := s.request("instant.publish", `{"channel":"$users","message":"m"}`); r.OK || r.Error.Code != "upstream_unavailable" {
		t.Errorf("core receipt %+v, want upstream_unavailable", r)
	}
	if body, code := httpGetCode(t, "http://"+s.b.HTTPAddr()+"/readyz"); code != 503 {
		t.Errorf("/readyz %d %s, want 503 with a refused key", code, body)
	}
	if s.logs.FilterMessageSnippet("API key").Len() == 0 {
		t.Error("no error logged about the refused API key")
	}
	shutdown(t, s.b)

	s.cfg = good
	s.cfg.CentrifugoAPIKey = "not-the-key"
	s.startBridge()
	s.jsPublish(`{"channel":"$users","message":"m","id":"kept"}`)
	testenv.Eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, "http://"+s.b.HTTPAddr()+"/metrics", `instant_bridge_jetstream_acks_total{kind="nak"}`); v < 2 {
			return fmt.Errorf("%v naks, want the envelope naked again and again", v)
		}
		return nil
	})
	if ls, err := s.dlqStore().List(context.Background(), dlq.Filter{}, 0); err != nil || len(ls) != 0 {
		t.Errorf("dead letters %v (%v), want none for a refused key", ls, err)
	}
	shutdown(t, s.b)

	s.cfg = good
	s.startBridge()
	sub := s.subscriber("$users")
	if got := collect(t, sub, 1, 15*time.Second); got["kept"] != 1 {
		t.Errorf("received %v with the right key, want the kept envelope", got)
	}
}

func shutdown(t *testing.T, b *bridge.Bridge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestHardening2EnvelopeOverTheRequestLimit: an envelope whose encoded
// commands (escaping, one copy per channel in django mode) exceed
// INSTANT_MAX_REQUEST_BYTES is rejected too_large; others are forwarded.
func TestHardening2EnvelopeOverTheRequestLimit(t *testing.T) {
	s := startStack(t, func(c *bridge.Config) {
		c.PayloadMode = "django"
		c.MaxRequestBytes = 256 << 10
	})
	sub := s.subscriber("$users")
	// 40 KiB of '<' is 40 KiB of body, but 40 KiB × 6 × 2 escaped twice
	// (django), times 3 channels: well over 256 KiB of commands.
	inflated := `{"channels":["$users","public","$group1"],"message":"` + strings.Repeat("<", 40<<10) + `"}`
	if r := s.request("instant.publish", inflated); r.OK || r.Error.Code != "too_large" || !strings.Contains(r.Error.Message, "INSTANT_MAX_REQUEST_BYTES") {
		t.Errorf("receipt %+v, want too_large naming INSTANT_MAX_REQUEST_BYTES", r)
	}
	if r := s.request("instant.publish", `{"channel":"$users","message":"small"}`); !r.OK {
		t.Errorf("receipt %+v, want ok", r)
	}
	if p := sub.Next(5 * time.Second); !strings.Contains(string(p.Data), "small") {
		t.Errorf("received %s, want only the small envelope", p.Data)
	}
}

// TestHardening1DeadLettersAfterTheStreamIsCreatedAgain: a stream deleted
// and created again starts its sequences over; a dead letter of its first
// envelope is still stored, not taken for a repeat of the old stream's.
func TestHardening1DeadLettersAfterTheStreamIsCreatedAgain(t *testing.T) {
	s := startStack(t, jetstreamMode)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := s.dlqStore()
	letters := func(want int) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, func() error {
			ls, err := store.List(ctx, dlq.Filter{}, 0)
			if err != nil || len(ls) != want {
				return fmt.Errorf("%d dead letters (%v), want %d", len(ls), err, want)
			}
			return nil
		})
	}
	if seq := s.jsPublish(`{"channel":"$nope","message":"first"}`); seq != 1 {
		t.Fatalf("first envelope at sequence %d, want 1", seq)
	}
	letters(1)
	if err := js.DeleteStream(ctx, "INSTANT"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ack, err := js.Publish(pctx, "instant.publish", []byte(`{"channel":"$nope","message":"second"}`))
		if err == nil && ack.Sequence != 1 {
			t.Errorf("first envelope of the new stream at sequence %d, want 1", ack.Sequence)
		}
		return err
	})
	letters(2)
}

// TestHardening4DeadLetterStreamDeleted: with INSTANT_JETSTREAM_CREATE=true
// a deleted dead-letter stream is created again when a dead letter finds it
// missing, and the envelope is dead-lettered, not naked for ever.
func TestHardening4DeadLetterStreamDeleted(t *testing.T) {
	s := startStack(t, jetstreamMode)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := js.DeleteStream(ctx, "INSTANT_DLQ"); err != nil {
		t.Fatal(err)
	}
	s.jsPublish(`{"channel":"$nope","message":"x","id":"after-dlq-deleted"}`)
	testenv.Eventually(t, 15*time.Second, func() error {
		st, err := dlq.Open(ctx, s.nc, "INSTANT_DLQ")
		if err != nil {
			return err
		}
		ls, err := st.List(ctx, dlq.Filter{}, 0)
		if err != nil || len(ls) != 1 || ls[0].EnvelopeID != "after-dlq-deleted" {
			return fmt.Errorf("dead letters %v (%v), want after-dlq-deleted", ls, err)
		}
		return nil
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := s.streamMsgs(); n != 0 {
			return fmt.Errorf("%d envelopes left in the stream", n)
		}
		return nil
	})
}

// TestHardening2ShutdownBoundedWhileBlockedOnTheBudget: a jetstream bridge
// whose byte budget is full (Centrifugo hangs) shuts down within its
// timeout: what waits for the budget is naked, not held.
func TestHardening2ShutdownBoundedWhileBlockedOnTheBudget(t *testing.T) {
	s := newStack(t, jetstreamMode, func(c *bridge.Config) {
		c.MaxPendingBytes, c.MaxRequestBytes = 2048, 1024
		c.CentrifugoTimeout, c.RetryAttempts = 5*time.Second, 10
	})
	s.startBridge()
	pid := s.cf.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	for i := range 20 {
		s.jsPublish(fmt.Sprintf(`{"channel":"$users","message":"%s","id":"b-%d"}`, strings.Repeat("x", 300), i))
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if v := metricValue(t, "http://"+s.b.HTTPAddr()+"/metrics", "instant_bridge_inflight_envelopes"); v < 3 {
			return fmt.Errorf("%v envelopes in flight, want the budget full and more waiting", v)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		_ = s.b.Shutdown(ctx)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown with a 1 s timeout still running after 20 s")
	}
}

// TestIdempotencyKeysScopedByProducer: Centrifugo drops a repeat of an
// envelope id within its idempotency window, per producer: the same
// producer's retry is published once, another producer's envelope with the
// same id of its own is published too.
func TestIdempotencyKeysScopedByProducer(t *testing.T) {
	s := startStack(t)
	sub := s.subscriber("$users")
	for _, subj := range []string{"instant.publish.a", "instant.publish.a", "instant.publish.b"} {
		if r := s.request(subj, `{"channel":"$users","message":"m","id":"order-42"}`); !r.OK {
			t.Fatalf("%s: receipt %+v", subj, r)
		}
	}
	if got := collect(t, sub, 1, 5*time.Second); got["order-42"] != 2 {
		t.Errorf("received order-42 %d times, want 2 (producer a once, producer b once)", got["order-42"])
	}
}
