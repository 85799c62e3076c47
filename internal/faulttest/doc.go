// Package faulttest holds the bridge's fault tests: real bridge processes
// (built from ./cmd/bridge), an embedded NATS server with JetStream and a
// real Centrifugo, with replicas killed, NATS restarted and Centrifugo
// stopped, checking that no envelope is lost. It has only tests.
package faulttest
