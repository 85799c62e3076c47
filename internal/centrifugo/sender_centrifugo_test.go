package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"

	"github.com/instant-go/instant/internal/testenv"
)

// senders are the Sender implementations, each tested against the real
// Centrifugo by the same contract.
var senders = []struct {
	name string
	new  func(apiURL, key string, c *http.Client) Sender
}{
	{"gocent", func(u, k string, c *http.Client) Sender { return NewGocentSender(u, k, c) }},
	{"http", func(u, k string, c *http.Client) Sender { return NewHTTPSender(u, k, c) }},
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

// TestHTTPSenderIdempotency: the same batch sent twice with the same
// idempotency keys is applied once: one publication per channel in history.
func TestHTTPSenderIdempotency(t *testing.T) {
	cf := testenv.StartCentrifugo(t)
	ctx := context.Background()
	snd := NewHTTPSender(cf.APIURL(), cf.APIKey, &http.Client{Timeout: 10 * time.Second})
	batch := []Command{
		{Channel: "idem-a", Data: []byte(`{"n":1}`), IdempotencyKey: "env-1"},
		{Channels: []string{"idem-b", "idem-c"}, Data: []byte(`{"n":2}`), IdempotencyKey: "env-2"},
		{Channel: "idem-a", Data: []byte(`{"n":3}`)}, // no key: applied each time
	}
	first, err := snd.Send(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	again, err := snd.Send(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if show(again[:2]) != show(first[:2]) {
		t.Errorf("second send answered %s, want the first answers %s", show(again[:2]), show(first[:2]))
	}
	api := gocent.New(gocent.Config{Addr: cf.APIURL(), Key: cf.APIKey})
	for ch, want := range map[string]string{"idem-a": `[{"n":1} {"n":3} {"n":3}]`, "idem-b": `[{"n":2}]`, "idem-c": `[{"n":2}]`} {
		h, err := api.History(ctx, ch, gocent.WithLimit(10))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range h.Publications {
			got = append(got, string(p.Data))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("history of %s: %v, want %s", ch, got, want)
		}
	}
}
