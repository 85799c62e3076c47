package centrifugo

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/testenv"
)

// senders are the Sender implementations, each tested against the real
// Centrifugo by the same contract.
var senders = []struct {
	name string
	new  func(apiURL, key string, c *http.Client) Sender
}{
	{"gocent", func(u, k string, c *http.Client) Sender { return NewGocentSender(u, k, c) }},
}

func TestSendersAgainstCentrifugo(t *testing.T) {
	cf := testenv.StartCentrifugo(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, s := range senders {
		t.Run(s.name, func(t *testing.T) {
			ctx := context.Background()
			snd := s.new(cf.APIURL(), cf.APIKey, client)
			if err := snd.Ready(ctx); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			pre := s.name + "-"
			got, err := snd.Send(ctx, []Command{
				{Channel: pre + "a", Data: []byte(`{"n":1}`)},
				{Channel: pre + "a", Data: []byte(`{"n":2}`)},
				{Channel: "nope:x", Data: []byte(`{}`)}, // no such namespace
				{Channels: []string{pre + "b", "nope:y"}, Data: []byte(`"s"`)},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 {
				t.Fatalf("%d replies, want 4", len(got))
			}
			if got[0].Err != nil || got[1].Err != nil || got[0].Epoch == "" || got[1].Offset != got[0].Offset+1 || got[1].Epoch != got[0].Epoch {
				t.Errorf("publishes: %s, want offsets n, n+1 in one epoch", show(got[:2]))
			}
			if e := got[2].Err; e == nil || e.Code != 102 {
				t.Errorf("unknown channel: %s, want error 102", show(got[2:3]))
			}
			per := got[3].PerChannel
			if got[3].Err != nil || len(per) != 2 || per[0].Err != nil || per[0].Offset != 1 || per[0].Epoch == "" || per[1].Err == nil || per[1].Err.Code != 102 {
				t.Errorf("broadcast: %s, want offset 1 then error 102", show(got[3:]))
			}

			bad := s.new(cf.APIURL(), "wrong key", client)
			_, err = bad.Send(ctx, []Command{{Channel: pre + "a", Data: []byte(`{}`)}})
			var re *RequestError
			if !errors.As(err, &re) || re.Unavailable || re.HTTPStatus != http.StatusUnauthorized {
				t.Errorf("wrong key: %v, want a refused request with status 401", err)
			}
			if err := bad.Ready(ctx); err == nil {
				t.Error("Ready with a wrong key: nil, want an error")
			}
		})
	}
}
