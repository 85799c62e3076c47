package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

func jetstreamMode(c *bridge.Config) {
	c.Delivery = bridge.DeliveryJetStream
	c.JetStreamBackoff = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	c.JetStreamAckWait = 2 * time.Second
	c.RetryAttempts, c.RetryBackoff, c.RetryMaxBackoff = 2, 20*time.Millisecond, 50*time.Millisecond
}

// jsPublish stores an envelope through JetStream and returns its sequence.
func (s *stack) jsPublish(body string, hdr ...string) uint64 {
	s.t.Helper()
	js, err := jetstream.New(s.nc)
	if err != nil {
		s.t.Fatal(err)
	}
	m := &nats.Msg{Subject: "instant.publish", Data: []byte(body), Header: nats.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		m.Header.Set(hdr[i], hdr[i+1])
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		s.t.Fatalf("jetstream publish %s: %v", body, err)
	}
	return ack.Sequence
}

func (s *stack) dlqStore() *dlq.Store {
	s.t.Helper()
	st, err := dlq.Open(context.Background(), s.nc, s.cfg.DLQ)
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// streamMsgs is the number of envelopes still in the envelope stream.
func (s *stack) streamMsgs() uint64 {
	s.t.Helper()
	js, _ := jetstream.New(s.nc)
	st, err := js.Stream(context.Background(), s.cfg.JetStreamStream)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return info.State.Msgs
}

// collect reads publications until want distinct ids arrived or d passed,
// and returns the count of each id.
func collect(t *testing.T, sub *testenv.Subscriber, want int, d time.Duration) map[string]int {
	t.Helper()
	got := map[string]int{}
	deadline := time.Now().Add(d)
	for len(got) < want {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		p, ok := sub.TryNext(left)
		if !ok {
			break
		}
		var m struct{ ID string }
		if err := json.Unmarshal(p.Data, &m); err != nil {
			t.Fatalf("publication %s: %v", p.Data, err)
		}
		got[m.ID]++
	}
	// Late duplicates, if any, within a short grace period.
	for {
		p, ok := sub.TryNext(300 * time.Millisecond)
		if !ok {
			return got
		}
		var m struct{ ID string }
		_ = json.Unmarshal(p.Data, &m)
		got[m.ID]++
	}
}

func TestJetStreamForwardsAndAcks(t *testing.T) {
	s := startStack(t, jetstreamMode)
	sub := s.subscriber("$users")
	// nats req: JetStream itself answers that the envelope is stored.
	msg, err := s.nc.Request("instant.publish", []byte(`{"channel":"$users","message":"a","id":"js-1"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var pubAck struct {
		Stream string `json:"stream"`
		Seq    uint64 `json:"seq"`
	}
	if err := json.Unmarshal(msg.Data, &pubAck); err != nil || pubAck.Stream != "INSTANT" || pubAck.Seq == 0 {
		t.Fatalf("stored receipt %s: want JetStream's publish ack", msg.Data)
	}
	// Instant-Reply-To: a second receipt once it was forwarded.
	inbox := nats.NewInbox()
	receipts, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	s.jsPublish(`{"channel":"$users","message":"b"}`, bridge.HeaderReplyTo, inbox)
	rm, err := receipts.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no forwarded receipt: %v", err)
	}
	var r receipt
	if err := json.Unmarshal(rm.Data, &r); err != nil || !r.OK || r.Offset == 0 || len(r.ID) != 26 {
		t.Fatalf("forwarded receipt %s: want ok with an offset and a 26-char id", rm.Data)
	}
	got := collect(t, sub, 2, 10*time.Second)
	if got["js-1"] != 1 || got[r.ID] != 1 {
		t.Errorf("received %v, want js-1 and %s once each", got, r.ID)
	}
	// Acked envelopes leave the work-queue stream.
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := s.streamMsgs(); n != 0 {
			return fmt.Errorf("%d envelopes left in the stream", n)
		}
		return nil
	})
	body := httpGet(t, "http://"+s.b.HTTPAddr()+"/readyz")
	if !json.Valid([]byte(body)) || !containsAll(body, `"consumer":"ok"`) {
		t.Errorf("/readyz %s: want the consumer reported ok", body)
	}
}

// TestJetStreamDeadLetters sends a mix of valid and invalid envelopes: every
// bad one lands in the dead-letter stream with its code and headers, every
// good one is delivered, and the stream is left empty.
func TestJetStreamDeadLetters(t *testing.T) {
	s := startStack(t, jetstreamMode)
	sub := s.subscriber("$users")
	bad := map[string]string{ // body -> code
		`{"channel":`:          "invalid_json",
		`{"channel":"$users"}`: "invalid_envelope",
		`{"channel":"$nope","message":"x","id":"bad-1"}`:                      "unknown_channel",
		`{"channel":"$old","message":"x","id":"bad-2"}`:                       "inactive_channel",
		`{"channel":"$billing","message":"x","id":"bad-3"}`:                   "publisher_denied",
		`{"channel":"nons:chan","message":"x","id":"bad-4"}`:                  "upstream_rejected",
		`{"channel":"$users","data":{"a":` + deep(40) + `}}`:                  "too_large",
		`{"channel":"$users","message":"` + strings.Repeat("x", 70000) + `"}`: "too_large",
	}
	seqs := map[uint64]string{}
	var good []string
	for i := 0; i < 20; i++ {
		id := "good-" + strconv.Itoa(i)
		good = append(good, id)
		s.jsPublish(fmt.Sprintf(`{"channel":"$users","message":"m","id":%q}`, id))
		if i == 10 {
			for body, code := range bad {
				seqs[s.jsPublish(body)] = code
			}
		}
	}
	got := collect(t, sub, len(good), 15*time.Second)
	for _, id := range good {
		if got[id] != 1 {
			t.Errorf("%s received %d times, want 1", id, got[id])
		}
	}
	store := s.dlqStore()
	var letters []dlq.Letter
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		letters, err = store.List(context.Background(), dlq.Filter{}, 0)
		if err != nil {
			return err
		}
		if len(letters) != len(bad) {
			return fmt.Errorf("%d dead letters, want %d", len(letters), len(bad))
		}
		return nil
	})
	for _, l := range letters {
		want, ok := seqs[l.OriginalSequence]
		if !ok {
			t.Errorf("dead letter for unexpected sequence %d (%s)", l.OriginalSequence, l.Data)
			continue
		}
		if l.Code != want || l.Subject != "instant.dlq."+want || l.OriginalSubject != "instant.publish" || l.Deliveries != 1 || l.Reason == "" {
			t.Errorf("dead letter %+v: want code %s on instant.dlq.%s from instant.publish after 1 delivery, with a reason", l, want, want)
		}
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := s.streamMsgs(); n != 0 {
			return fmt.Errorf("%d envelopes left in the stream", n)
		}
		return nil
	})
	metrics := httpGet(t, "http://"+s.b.HTTPAddr()+"/metrics")
	if !containsAll(metrics, `instant_bridge_dead_lettered_total{reason="unknown_channel"} 1`, `instant_bridge_jetstream_acks_total{kind="ack"} 20`) {
		t.Errorf("metrics lack dead-letter and ack counts")
	}
}

func deep(n int) string {
	s := "1"
	for range n {
		s = "[" + s + "]"
	}
	return s
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestJetStreamHeadersAndIDs: NATS's own publish headers do not stop a dead
// letter from being stored, a producer cannot forge Instant-* headers, the
// envelope id survives a replay, and receipts go only under the prefix.
func TestJetStreamHeadersAndIDs(t *testing.T) {
	s := startStack(t, jetstreamMode)
	sub := s.subscriber("$users")
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: "instant.publish", Data: []byte(`{"channel":"$users"}`), Header: nats.Header{}}
	m.Header.Set(dlq.HeaderEnvelopeID, "forged")
	m.Header.Set("X-Trace", "t-1")
	if _, err := js.PublishMsg(context.Background(), m, jetstream.WithExpectStream("INSTANT"), jetstream.WithMsgID("m-1")); err != nil {
		t.Fatal(err)
	}
	store := s.dlqStore()
	var l dlq.Letter
	testenv.Eventually(t, 10*time.Second, func() error {
		ls, err := store.List(context.Background(), dlq.Filter{}, 0)
		if err != nil || len(ls) != 1 {
			return fmt.Errorf("%d dead letters (%v), want 1", len(ls), err)
		}
		l = ls[0]
		return nil
	})
	if l.Code != "invalid_envelope" || l.Header.Get("X-Trace") != "t-1" || l.Header.Get(dlq.HeaderOriginalMsgID) != "m-1" || l.Header.Get("Nats-Expected-Stream") != "" {
		t.Errorf("dead letter headers %v: want the code, the producer's X-Trace, the original msg id, no Nats-Expected-Stream", l.Header)
	}

	// A channel that fails in Centrifugo, replayed after the cause is gone,
	// keeps the envelope id the bridge gave it.
	s.jsPublish(`{"channel":"nons:chan","message":"x"}`)
	var id string
	testenv.Eventually(t, 10*time.Second, func() error {
		ls, err := store.List(context.Background(), dlq.Filter{Code: "upstream_rejected"}, 0)
		if err != nil || len(ls) != 1 {
			return fmt.Errorf("%d upstream_rejected dead letters (%v)", len(ls), err)
		}
		id = ls[0].EnvelopeID
		return nil
	})
	if len(id) != 26 {
		t.Fatalf("dead letter id %q: want the 26-char stream-derived id", id)
	}
	if _, _, err := store.Replay(context.Background(), dlq.Filter{Code: "upstream_rejected"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		ls, err := store.List(context.Background(), dlq.Filter{Code: "upstream_rejected"}, 0)
		if err != nil || len(ls) != 1 || ls[0].EnvelopeID != id {
			return fmt.Errorf("replayed dead letter: %d letters (%v), want one again with id %s", len(ls), err, id)
		}
		return nil
	})

	// Receipts: only to subjects under INSTANT_RECEIPT_PREFIX.
	outside, err := s.nc.SubscribeSync("elsewhere.receipts")
	if err != nil {
		t.Fatal(err)
	}
	inbox := nats.NewInbox()
	inside, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	s.jsPublish(`{"channel":"$users","message":"a"}`, bridge.HeaderReplyTo, "elsewhere.receipts")
	s.jsPublish(`{"channel":"$users","message":"b"}`, bridge.HeaderReplyTo, inbox)
	if _, err := inside.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("receipt under _INBOX.: %v", err)
	}
	if msg, err := outside.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("receipt published outside the prefix: %s", msg.Data)
	}
	got := collect(t, sub, 2, 10*time.Second)
	if len(got) != 2 {
		t.Errorf("received %v, want both envelopes", got)
	}
}

// TestJetStreamMaxDeliveries: an envelope delivered more often than
// INSTANT_JETSTREAM_MAX_DELIVER without an outcome (here: fetched by
// another client that never acked) is dead-lettered as max_deliveries
// before it is even decoded.
func TestJetStreamMaxDeliveries(t *testing.T) {
	s := newStack(t, jetstreamMode, func(c *bridge.Config) {
		c.JetStreamMaxDeliver = 1
		c.JetStreamAckWait = time.Second
	})
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "INSTANT", Subjects: []string{"instant.publish", "instant.publish.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "INSTANT", jetstream.ConsumerConfig{Durable: "instant-bridge", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: -1})
	if err != nil {
		t.Fatal(err)
	}
	seq := s.jsPublish(`{"channel":"$users","message":"x","id":"crashy"}`)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m // delivery 1, never acked: as if the bridge had crashed
	}
	s.startBridge()
	store := s.dlqStore()
	testenv.Eventually(t, 15*time.Second, func() error {
		ls, err := store.List(ctx, dlq.Filter{Code: bridge.CodeMaxDeliveries}, 0)
		if err != nil || len(ls) != 1 {
			return fmt.Errorf("%d max_deliveries dead letters (%v), want 1", len(ls), err)
		}
		if ls[0].OriginalSequence != seq || ls[0].Deliveries < 2 {
			return fmt.Errorf("dead letter %+v: want sequence %d after at least 2 deliveries", ls[0], seq)
		}
		return nil
	})
}

// TestJetStreamDocumentedPermissions runs the bridge with
// INSTANT_JETSTREAM_CREATE=false as a NATS user that has exactly the
// permissions the README lists, against streams and a consumer an
// administrator created: envelopes are forwarded and dead-lettered.
func TestJetStreamDocumentedPermissions(t *testing.T) {
	n := testenv.StartNATS(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "admin-pw"},
			{Username: "bridge", Password: "bridge-pw", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{
					"$JS.API.CONSUMER.INFO.INSTANT.instant-bridge",
					"$JS.API.CONSUMER.MSG.NEXT.INSTANT.instant-bridge",
					"$JS.ACK.INSTANT.instant-bridge.>",
					"instant.dlq.>",
					"_INBOX.>",
				}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		}
	})
	admin := n.Connect(t, nats.UserInfo("admin", "admin-pw"))
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INSTANT", Subjects: []string{"instant.publish", "instant.publish.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INSTANT_DLQ", Subjects: []string{"instant.dlq.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, "INSTANT", jetstream.ConsumerConfig{Durable: "instant-bridge", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1}); err != nil {
		t.Fatal(err)
	}

	cf := testenv.StartCentrifugo(t)
	chFile := filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(chFile, []byte(channelsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, nats: n, cf: cf, nc: admin}
	s.cfg = testConfig(n.URL(), cf.APIURL(), cf.APIKey, chFile)
	jetstreamMode(&s.cfg)
	s.cfg.JetStreamCreate = false
	s.cfg.NATSUser, s.cfg.NATSPassword = "bridge", "bridge-pw"
	if s.signer, err = tokens.NewHMAC([]byte(cf.HMACSecret)); err != nil {
		t.Fatal(err)
	}
	s.startBridge()
	sub := s.subscriber("$users")

	inbox := nats.NewInbox()
	receipts, err := admin.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	s.jsPublish(`{"channel":"$users","message":"ok","id":"perm-1"}`, bridge.HeaderReplyTo, inbox)
	s.jsPublish(`{"channel":"$nope","message":"bad","id":"perm-2"}`)
	if got := collect(t, sub, 1, 10*time.Second); got["perm-1"] != 1 {
		t.Errorf("received %v, want perm-1", got)
	}
	if m, err := receipts.NextMsg(10 * time.Second); err != nil || !strings.Contains(string(m.Data), `"ok":true`) {
		t.Errorf("forwarded receipt: %v", err)
	}
	store := s.dlqStore()
	testenv.Eventually(t, 10*time.Second, func() error {
		ls, err := store.List(ctx, dlq.Filter{}, 0)
		if err != nil || len(ls) != 1 || ls[0].EnvelopeID != "perm-2" {
			return fmt.Errorf("dead letters %v (%v), want perm-2", ls, err)
		}
		return nil
	})
	if body := httpGet(t, "http://"+s.b.HTTPAddr()+"/readyz"); !strings.Contains(body, `"consumer":"ok"`) {
		t.Errorf("/readyz %s: want the consumer ok", body)
	}
	// NATS reports a permissions violation as an asynchronous error.
	if errs := s.logs.FilterMessage("nats async error"); errs.Len() > 0 {
		t.Errorf("NATS errors with the documented permissions: %v", errs.All())
	}
}
