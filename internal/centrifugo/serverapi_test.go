package centrifugo

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

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
	api := NewServerAPI(cf.APIURL(), cf.APIKey, client)
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
	if _, err := NewServerAPI(cf.APIURL(), "wrong", client).Revoke(ctx, []AdminCommand{{Disconnect: &Disconnect{User: "x"}}}); !errors.As(err, &rq) || rq.HTTPStatus != http.StatusUnauthorized {
		t.Errorf("wrong key: %v, want a 401 request error", err)
	}
}
