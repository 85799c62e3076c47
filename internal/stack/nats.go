package stack

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds how long a starting nats-server may take.
const natsReadyTimeout = 10 * time.Second

// NATSOptions configure an embedded nats-server.
type NATSOptions struct {
	Port       int    // client port on 127.0.0.1; 0 picks a free one
	JetStream  bool   // enable JetStream, stored in StoreDir
	StoreDir   string // JetStream storage; required with JetStream
	MaxPayload int32  // largest message in bytes; 0 keeps the server's default (1 MiB)
	// Configure, when set, changes the server options last (users,
	// permissions, limits).
	Configure func(*server.Options)
}

// NATS is an embedded nats-server that can be stopped and started again on
// the same ports with the same storage.
type NATS struct {
	mu   sync.Mutex
	opts server.Options // ports fixed once known
	srv  *server.Server // nil while stopped
}

// StartNATS starts an embedded nats-server and waits until it accepts
// connections.
func StartNATS(o NATSOptions) (*NATS, error) {
	opts, err := o.serverOptions()
	if err != nil {
		return nil, err
	}
	return startNATS(opts)
}

func startNATS(opts server.Options) (*NATS, error) {
	n := &NATS{opts: opts}
	if err := n.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

func (o NATSOptions) serverOptions() (server.Options, error) {
	if o.JetStream && o.StoreDir == "" {
		return server.Options{}, errors.New("stack: NATSOptions.StoreDir is required with JetStream")
	}
	opts := server.Options{
		Host:       "127.0.0.1",
		Port:       o.Port,
		JetStream:  o.JetStream,
		StoreDir:   o.StoreDir,
		MaxPayload: o.MaxPayload,
		NoLog:      true,
		NoSigs:     true,
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT // 0 would be the default port, 4222
	}
	if o.Configure != nil {
		o.Configure(&opts)
	}
	return opts, nil
}

// Start starts the server after Stop, on the same ports with the same
// storage; it is a no-op when it runs.
func (n *NATS) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	opts := n.opts // the server keeps and changes its copy
	s, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(natsReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("nats-server did not become ready on port %d in %v (in use?)", n.opts.Port, natsReadyTimeout)
	}
	n.opts.Port = s.Addr().(*net.TCPAddr).Port
	n.srv = s
	return nil
}

// Stop shuts the server down and waits until it stopped (idempotent).
func (n *NATS) Stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same ports with the
// same storage.
func (n *NATS) Restart() error {
	n.Stop()
	return n.Start()
}

// Server is the running server, nil while stopped.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Port is the client port.
func (n *NATS) Port() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.opts.Port
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port()) }

// StoreDir is the JetStream storage directory.
func (n *NATS) StoreDir() string { return n.opts.StoreDir }
