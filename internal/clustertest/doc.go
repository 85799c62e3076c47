// Package clustertest runs Instant as it is scaled out, with the real
// engines: a 3-node NATS cluster with replicated JetStream streams, two
// bridge processes, two Centrifugo nodes sharing a Redis engine, and a
// websocket subscriber on the node the bridges do not publish to. Its tests
// kill NATS and Centrifugo nodes under load and check what arrives.
package clustertest
