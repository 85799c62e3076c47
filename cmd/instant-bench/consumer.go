package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Centrifugo's own NATS JetStream consumer (compare mode): the benchmark
// stores ready payloads on a stream of their own, and Centrifugo drains it
// in publication data mode (the payload is the publication data, headers
// name the channels and the idempotency key).
const (
	cfStream        = "CENTRIFUGO_BENCH"
	cfSubject       = "centrifugo.bench"
	cfConsumer      = "centrifugo-bench"
	cfMaxAckPending = 5000 // as the bridge's INSTANT_JETSTREAM_MAX_ACK_PENDING default

	// Centrifugo v6.9.1's default header names in publication data mode.
	cfChannelsHeader       = "centrifugo-channels"
	cfIdempotencyKeyHeader = "centrifugo-idempotency-key"
)

// createConsumerStream creates the stream Centrifugo consumes, configured
// like the bridge's own (work queue, file storage); Centrifugo creates its
// durable consumer when it starts.
func createConsumerStream(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Name("instant-bench-setup"))
	if err != nil {
		return fmt.Errorf("connect nats %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      cfStream,
		Subjects:  []string{cfSubject},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", cfStream, err)
	}
	return nil
}

// consumerConfig is the "consumers" section of Centrifugo's configuration
// (v6.9.1: internal/configtypes NatsJetStreamConsumerConfig).
func consumerConfig(natsURL string) []any {
	return []any{map[string]any{
		"name":    "bench_nats",
		"enabled": true,
		"type":    "nats_jetstream",
		"nats_jetstream": map[string]any{
			"url":                   natsURL,
			"stream_name":           cfStream,
			"subjects":              []string{cfSubject},
			"durable_consumer_name": cfConsumer,
			"deliver_policy":        "all", // a work-queue stream requires it
			"max_ack_pending":       cfMaxAckPending,
			"publication_data_mode": map[string]any{"enabled": true},
		},
	}}
}

// consumerMsg is event seq of run for Centrifugo's consumer: the same
// payload a direct publish sends, with its id as the idempotency key (as
// the bridge sends it).
func consumerMsg(pl directPayload, run, seq int) *nats.Msg {
	ch := pl.channel(seq)
	id := pl.ids.Next()
	m := nats.NewMsg(cfSubject)
	m.Header.Set(cfChannelsHeader, ch)
	m.Header.Set(cfIdempotencyKeyHeader, id)
	m.Data = pl.buildWithID(nil, run, seq, id)
	return m
}
