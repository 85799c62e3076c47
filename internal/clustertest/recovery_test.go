package clustertest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

// TestClusterHistoryRecovery: a subscriber on Centrifugo B receives
// envelopes and disconnects; more are published (the bridges send them to
// A); it connects to A, the other node, and recovers exactly the ones it
// missed, in order, from the history the nodes share in Redis, then
// receives new ones live.
func TestClusterHistoryRecovery(t *testing.T) {
	c := newCluster(t, "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_ALLOW_RECOVERY=true")
	c.startBridge("bridge-1")
	c.startBridge("bridge-2")
	ids := makeIDs("h", 35)

	first := c.openRecoverable(c.b.WebsocketURL(), nil)
	if ev := first.waitSubscribed(t); !ev.Recoverable || ev.StreamPosition == nil {
		t.Fatalf("subscribed on B: %+v, want a recoverable subscription with a stream position", ev)
	}
	c.request(ids[:10])
	got := first.take(t, 10)
	requireIDs(t, "live on B", got, ids[:10])
	pos := centrifuge.StreamPosition{Offset: got[9].Offset, Epoch: first.epoch}
	first.client.Close()

	c.request(ids[10:30]) // missed by the subscriber
	second := c.openRecoverable(c.a.WebsocketURL(), &pos)
	ev := second.waitSubscribed(t)
	if !ev.WasRecovering || !ev.Recovered {
		t.Fatalf("subscribed on A from %+v: recovering %v, recovered %v; want recovered", pos, ev.WasRecovering, ev.Recovered)
	}
	got = second.take(t, 20)
	requireIDs(t, "recovered on A", got, ids[10:30])
	for i, p := range got {
		if want := pos.Offset + uint64(i) + 1; p.Offset != want {
			t.Errorf("recovered publication %d has offset %d, want %d", i, p.Offset, want)
		}
	}
	c.request(ids[30:])
	requireIDs(t, "live on A", second.take(t, 5), ids[30:])
}

// recoverable is a centrifuge-go client with one recoverable subscription.
type recoverable struct {
	client     *centrifuge.Client
	pubs       chan centrifuge.Publication
	subscribed chan centrifuge.SubscribedEvent
	epoch      string // from the first subscribed event
}

// openRecoverable connects to wsURL and subscribes to the channel,
// recovering from since when it is set. Closed at cleanup.
func (c *cluster) openRecoverable(wsURL string, since *centrifuge.StreamPosition) *recoverable {
	c.t.Helper()
	conn, sub := c.tokens()
	r := &recoverable{
		client:     centrifuge.NewJsonClient(wsURL, centrifuge.Config{Token: conn}),
		pubs:       make(chan centrifuge.Publication, 100),
		subscribed: make(chan centrifuge.SubscribedEvent, 4),
	}
	c.t.Cleanup(r.client.Close)
	cfg := centrifuge.SubscriptionConfig{Token: sub, Recoverable: true}
	if since != nil {
		cfg.GetState = func(centrifuge.SubscriptionGetStateEvent) (centrifuge.StreamPosition, error) { return *since, nil }
	}
	s, err := r.client.NewSubscription(channel, cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	s.OnSubscribed(func(e centrifuge.SubscribedEvent) { r.subscribed <- e })
	s.OnPublication(func(e centrifuge.PublicationEvent) { r.pubs <- e.Publication })
	s.OnError(func(e centrifuge.SubscriptionErrorEvent) { c.t.Logf("subscription error: %v", e.Error) })
	if err := s.Subscribe(); err != nil {
		c.t.Fatal(err)
	}
	if err := r.client.Connect(); err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (r *recoverable) waitSubscribed(t *testing.T) centrifuge.SubscribedEvent {
	t.Helper()
	select {
	case ev := <-r.subscribed:
		if ev.StreamPosition != nil {
			r.epoch = ev.StreamPosition.Epoch
		}
		return ev
	case <-time.After(15 * time.Second):
		t.Fatal("not subscribed within 15s")
		return centrifuge.SubscribedEvent{}
	}
}

// take returns the next n publications, failing the test after 15 s.
func (r *recoverable) take(t *testing.T, n int) []centrifuge.Publication {
	t.Helper()
	out := make([]centrifuge.Publication, 0, n)
	for len(out) < n {
		select {
		case p := <-r.pubs:
			out = append(out, p)
		case <-time.After(15 * time.Second):
			t.Fatalf("%d of %d publications within 15s", len(out), n)
		}
	}
	return out
}

func requireIDs(t *testing.T, what string, got []centrifuge.Publication, want []string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, p := range got {
		var m struct{ ID string }
		_ = json.Unmarshal(p.Data, &m)
		ids[i] = m.ID
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("%s: %v, want %v", what, ids, want)
	}
}

// request publishes each id with a NATS request, one after the other, and
// fails the test unless every receipt is ok.
func (c *cluster) request(ids []string) {
	c.t.Helper()
	for _, id := range ids {
		msg, err := c.nc.Request(publishSubject, envelope(id), 5*time.Second)
		if err != nil {
			c.t.Fatalf("request %s: %v", id, err)
		}
		var rc struct{ OK bool }
		if json.Unmarshal(msg.Data, &rc) != nil || !rc.OK {
			c.t.Fatalf("request %s: receipt %s", id, msg.Data)
		}
	}
}
