package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"

	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

// TestHarness checks the harness itself: a real Centrifugo accepts an API
// publish and delivers it to a real websocket subscriber holding tokens.
func TestHarness(t *testing.T) {
	cf := testenv.StartCentrifugo(t)
	signer, err := tokens.NewHMAC([]byte(cf.HMACSecret))
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := signer.Connection("alice", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sub := testenv.Connect(t, cf.WebsocketURL(), conn)
	subTok, _, err := signer.Subscription("alice", "$users", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sub.MustSubscribe("$users", subTok)
	if err := sub.Subscribe("$staff", ""); err == nil {
		t.Fatal("subscribe to a private channel without a token: want refusal, got none")
	}

	api := gocent.New(gocent.Config{Addr: cf.APIURL(), Key: cf.APIKey})
	res, err := api.Publish(context.Background(), "$users", []byte(`{"x":1}`))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if res.Offset == 0 || res.Epoch == "" {
		t.Errorf("publish result %+v: want offset and epoch (history enabled)", res)
	}
	p := sub.Next(5 * time.Second)
	if p.Channel != "$users" || string(p.Data) != `{"x":1}` {
		t.Errorf("got %s %s, want $users {\"x\":1}", p.Channel, p.Data)
	}

	cf.Stop()
	if _, err := api.Publish(context.Background(), "$users", []byte(`{}`)); err == nil {
		t.Fatal("publish to a stopped centrifugo: want error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cf.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Publish(context.Background(), "$users", []byte(`{}`)); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}

	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	if !nc.IsConnected() {
		t.Fatal("nats not connected")
	}
}
