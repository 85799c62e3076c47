// Command producer publishes one envelope to Instant and prints the
// bridge's receipt.
//
//	go run ./examples/go/producer [channel] [message]     (NATS_URL, default nats://127.0.0.1:4222)
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	channel, message := "public", "hello from Go"
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
	nc, err := nats.Connect(url, nats.Name("instant-example-go"))
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()

	envelope, err := json.Marshal(map[string]any{
		"channel": channel, "message": message, "event_class": "example", "data": map[string]string{"from": "go"},
	})
	if err != nil {
		return err
	}
	// A request: the bridge answers once Centrifugo accepted the message.
	reply, err := nc.Request("instant.publish", envelope, 5*time.Second)
	if err != nil {
		return fmt.Errorf("publish: %w (is the bridge running?)", err)
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
