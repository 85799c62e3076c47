package testenv

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

// Publication is one message a Subscriber received.
type Publication struct {
	Channel string
	Offset  uint64
	Data    []byte
}

// Subscriber is a real websocket client (centrifuge-go) connected to Centrifugo.
type Subscriber struct {
	tb     testing.TB
	client *centrifuge.Client
	pubs   chan Publication

	mu           sync.Mutex
	subErrors    map[string]error
	unsubbed     map[string]centrifuge.UnsubscribedEvent
	disconnected *centrifuge.DisconnectedEvent
}

// Connect opens a websocket connection with a connection token; it waits
// until the client is connected. Closed at cleanup.
func Connect(tb testing.TB, wsURL, token string) *Subscriber {
	tb.Helper()
	s := &Subscriber{
		tb:        tb,
		pubs:      make(chan Publication, 1<<16),
		subErrors: map[string]error{},
		unsubbed:  map[string]centrifuge.UnsubscribedEvent{},
	}
	s.client = centrifuge.NewJsonClient(wsURL, centrifuge.Config{Token: token})
	connected := make(chan struct{})
	var once sync.Once
	s.client.OnConnected(func(centrifuge.ConnectedEvent) { once.Do(func() { close(connected) }) })
	disconnected := make(chan centrifuge.DisconnectedEvent, 1)
	s.client.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		s.mu.Lock()
		s.disconnected = &e
		s.mu.Unlock()
		select {
		case disconnected <- e:
		default:
		}
	})
	tb.Cleanup(s.client.Close)
	if err := s.client.Connect(); err != nil {
		tb.Fatalf("centrifuge connect: %v", err)
	}
	select {
	case <-connected:
	case e := <-disconnected:
		tb.Fatalf("centrifuge connection refused: %d %s", e.Code, e.Reason)
	case <-time.After(10 * time.Second):
		tb.Fatal("centrifuge client did not connect within 10s")
	}
	return s
}

// Subscribe subscribes to channel with a subscription token ("" for none)
// and waits for the server's answer. It returns the error when Centrifugo
// refuses the subscription.
func (s *Subscriber) Subscribe(channel, token string) error {
	s.tb.Helper()
	sub, err := s.client.NewSubscription(channel, centrifuge.SubscriptionConfig{Token: token})
	if err != nil {
		return err
	}
	result := make(chan error, 1)
	var once sync.Once
	sub.OnSubscribed(func(centrifuge.SubscribedEvent) { once.Do(func() { result <- nil }) })
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		s.mu.Lock()
		s.unsubbed[channel] = e
		s.mu.Unlock()
		once.Do(func() { result <- fmt.Errorf("unsubscribed from %s: %d %s", channel, e.Code, e.Reason) })
	})
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) {
		once.Do(func() { result <- fmt.Errorf("subscription error on %s: %w", channel, e.Error) })
	})
	sub.OnPublication(func(e centrifuge.PublicationEvent) {
		d := make([]byte, len(e.Data))
		copy(d, e.Data)
		select {
		case s.pubs <- Publication{Channel: channel, Offset: e.Offset, Data: d}:
		default:
			s.tb.Errorf("subscriber buffer full: publication on %s dropped by the test", channel)
		}
	})
	if err := sub.Subscribe(); err != nil {
		return err
	}
	select {
	case err := <-result:
		if err != nil {
			_ = sub.Unsubscribe()
			s.client.RemoveSubscription(sub)
		}
		return err
	case <-time.After(10 * time.Second):
		return errors.New("no answer to subscribe within 10s")
	}
}

// MustSubscribe is Subscribe that fails the test on error.
func (s *Subscriber) MustSubscribe(channel, token string) {
	s.tb.Helper()
	if err := s.Subscribe(channel, token); err != nil {
		s.tb.Fatal(err)
	}
}

// Next returns the next publication or fails the test after d.
func (s *Subscriber) Next(d time.Duration) Publication {
	s.tb.Helper()
	select {
	case p := <-s.pubs:
		return p
	case <-time.After(d):
		s.tb.Fatalf("no publication within %v", d)
		return Publication{}
	}
}

// TryNext returns the next publication, or false when none arrives within d.
func (s *Subscriber) TryNext(d time.Duration) (Publication, bool) {
	select {
	case p := <-s.pubs:
		return p, true
	case <-time.After(d):
		return Publication{}, false
	}
}

// Publications is the channel of received publications.
func (s *Subscriber) Publications() <-chan Publication { return s.pubs }

// Unsubscribed returns how the subscription to channel ended, when it did
// (the server unsubscribed it, or a subscribe was refused).
func (s *Subscriber) Unsubscribed(channel string) (centrifuge.UnsubscribedEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.unsubbed[channel]
	return e, ok
}

// Disconnected returns the last disconnect of the connection, if any.
func (s *Subscriber) Disconnected() (centrifuge.DisconnectedEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disconnected == nil {
		return centrifuge.DisconnectedEvent{}, false
	}
	return *s.disconnected, true
}
