// Command jetstream-producer publishes one envelope to a bridge in
// JetStream mode (INSTANT_DELIVERY=jetstream): it prints JetStream's ack
// once the envelope is stored, then the bridge's receipt once it was
// forwarded, asked for with the Instant-Reply-To header.
//
//	go run ./examples/go/jetstream-producer [channel] [message]     (NATS_URL, default nats://127.0.0.1:4222)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "jetstream-producer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	channel, message := "public", "hello from Go, stored first"
	if len(args) > 0 {
		channel = args[0]
	}
	if len(args) > 1 {
		message = args[1]
	}
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Name("instant-example-go-jetstream"))
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	envelope, err := json.Marshal(map[string]any{
		"channel": channel, "message": message, "event_class": "example", "data": map[string]string{"from": "go-jetstream"},
	})
	if err != nil {
		return err
	}

	// The bridge's receipt comes later, on a subject of ours under _INBOX.
	inbox := nats.NewInbox()
	receipts, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	msg := nats.NewMsg("instant.publish")
	msg.Data = envelope
	msg.Header.Set("Instant-Reply-To", inbox)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg) // returns once the stream stored it
	if err != nil {
		return fmt.Errorf("publish: %w (is a bridge in jetstream mode running? it creates the stream)", err)
	}
	stored, _ := json.Marshal(map[string]any{"stream": ack.Stream, "seq": ack.Sequence})
	fmt.Println(string(stored))

	reply, err := receipts.NextMsg(30 * time.Second)
	if err != nil {
		return fmt.Errorf("no receipt: %w", err)
	}
	fmt.Println(string(reply.Data))
	var receipt struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(reply.Data, &receipt); err != nil || !receipt.OK {
		return fmt.Errorf("not delivered")
	}
	return nil
}
