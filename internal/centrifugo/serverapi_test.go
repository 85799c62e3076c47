package centrifugo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// TestServerAPIAgainstCentrifugo: a batch of revocations gets one answer
// per command (an unknown namespace is that command's error), presence is
// ErrCodeNotAvailable where the namespace does not enable it (the token
// service's TestRevokeUpstreamUsersWithPresence reads a real presence list),
// and a wrong key is a request error.
func TestServerAPIAgainstCentrifugo(t *testing.T) {
	cf := testenv.StartCentrifugo(t)
	client := &http.Client{Timeout: 10 * time.Second}
	api := NewServerAPI([]string{cf.APIURL()}, cf.APIKey, client)
	ctx := context.Background()
	errs, err := api.Revoke(ctx, []AdminCommand{
		{Unsubscribe: &Unsubscribe{Channel: "$users", User: "42"}},
		{Unsubscribe: &Unsubscribe{Channel: "nope:x", User: "42"}},
		{Disconnect: &Disconnect{User: "42", Code: 4501, Reason: "revoked"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var re *ReplyError
	if len(errs) != 3 || errs[0] != nil || !errors.As(errs[1], &re) || re.Code != 102 || errs[2] != nil {
		t.Errorf("replies %v, want ok, 102 unknown channel, ok", errs)
	}
	if _, err := api.Presence(ctx, "$users"); !errors.As(err, &re) || re.Code != ErrCodeNotAvailable {
		t.Errorf("presence without presence enabled: %v, want code %d", err, ErrCodeNotAvailable)
	}
	var rq *RequestError
	if _, err := NewServerAPI([]string{cf.APIURL()}, "wrong", client).Revoke(ctx, []AdminCommand{{Disconnect: &Disconnect{User: "x"}}}); !errors.As(err, &rq) || rq.HTTPStatus != http.StatusUnauthorized {
		t.Errorf("wrong key: %v, want a 401 request error", err)
	}
}

// TestServerAPIFailover: with several API URLs, a call that a node does not
// take (nothing listening, a 503) goes to the next node, and later calls go
// first to the node that answered; with no node answering, the error is
// unavailable and names each node.
func TestServerAPIFailover(t *testing.T) {
	cf := testenv.StartCentrifugo(t)
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(port) + "/api" // nothing listens there
	var busyHits atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		busyHits.Add(1)
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()

	api := NewServerAPI([]string{closed, busy.URL + "/api", cf.APIURL()}, cf.APIKey, client)
	for i := range 2 {
		errs, err := api.Revoke(ctx, []AdminCommand{{Unsubscribe: &Unsubscribe{Channel: "$users", User: "42"}}})
		if err != nil || len(errs) != 1 || errs[0] != nil {
			t.Fatalf("call %d: %v %v, want applied by the third node", i, errs, err)
		}
		if _, err := api.Presence(ctx, "$users"); !errors.As(err, new(*ReplyError)) {
			t.Errorf("call %d: presence %v, want Centrifugo's reply (not available)", i, err)
		}
	}
	if n := busyHits.Load(); n != 1 {
		t.Errorf("the 503 node was asked %d times, want once (then the node that answered first)", n)
	}

	_, err = NewServerAPI([]string{closed, busy.URL + "/api"}, cf.APIKey, client).Revoke(ctx, []AdminCommand{{Disconnect: &Disconnect{User: "x"}}})
	var rq *RequestError
	if !errors.As(err, &rq) || !rq.Unavailable || !strings.Contains(err.Error(), closed) || !strings.Contains(err.Error(), busy.URL) {
		t.Errorf("no node answering: %v, want an unavailable error naming both nodes", err)
	}
}
