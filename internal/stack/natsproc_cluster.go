package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// NATSProcessOptions configure a NATSProcessCluster.
type NATSProcessOptions struct {
	// Binary is nats-server (see Binary and NATSServerPackage); required.
	Binary string
	// Dir holds member n<i>'s configuration, log and JetStream storage in
	// Dir/n<i>; required.
	Dir        string
	JetStream  bool  // clustered JetStream
	MaxPayload int32 // largest message in bytes; 0 keeps the server's default (1 MiB)
}

// NATSProcessCluster is a cluster of nats-server processes routed to each
// other: unlike the embedded Cluster, a member can be SIGKILLed (Kill), as
// a crash or a lost machine would end it, and started again (Start).
type NATSProcessCluster struct {
	members []*NATSProcess
}

// StartNATSProcessCluster starts n nats-server processes (named n1, n2,
// ...) on free client, cluster and monitoring ports of 127.0.0.1, each with
// routes to all the others, and waits until each accepts connections (not
// until the cluster is formed: poll Formed). The owner stops them with
// Close.
func StartNATSProcessCluster(ctx context.Context, n int, o NATSProcessOptions) (*NATSProcessCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("stack: a cluster of %d servers", n)
	}
	if o.Binary == "" || o.Dir == "" {
		return nil, errNATSCluster
	}
	ports, err := freePorts(3 * n) // client, monitoring, cluster
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(ports[3*i+2])
	}
	c := &NATSProcessCluster{}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		m := &NATSProcess{name: name, bin: o.Binary, dir: filepath.Join(o.Dir, name), port: ports[3*i], monitor: ports[3*i+1]}
		others := append(append([]string(nil), routes[:i]...), routes[i+1:]...)
		cfg := natsConfig(o, name, m.port, m.monitor, ports[3*i+2], others)
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			c.Close()
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(m.dir, "nats-server.conf"), []byte(cfg), 0o600); err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, m)
		if err := m.Start(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster member %s: %w", name, err)
		}
	}
	return c, nil
}

// freePorts returns n distinct free ports.
func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	ports := make([]int, 0, n)
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// Members are the servers, in the order of their names (n1 first).
func (c *NATSProcessCluster) Members() []*NATSProcess { return c.members }

// Member is the server named name (as JetStream names a stream's leader),
// nil when there is none.
func (c *NATSProcessCluster) Member(name string) *NATSProcess {
	for _, m := range c.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// URL lists every member's client URL, comma-separated, as nats.Connect
// accepts it.
func (c *NATSProcessCluster) URL() string {
	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = m.URL()
	}
	return strings.Join(urls, ",")
}

// Formed returns nil when every running member has a route to every other
// running member and is healthy (with JetStream: current with the meta
// leader and with its streams' leaders); an error saying what is missing
// otherwise. Poll it with Eventually.
func (c *NATSProcessCluster) Formed(ctx context.Context) error {
	var running []*NATSProcess
	for _, m := range c.members {
		if m.PID() != 0 {
			running = append(running, m)
		}
	}
	for _, m := range running {
		remotes, err := m.Remotes(ctx)
		if err != nil {
			return err
		}
		for _, o := range running {
			if o != m && !remotes[o.name] {
				return fmt.Errorf("%s has no route to %s", m.name, o.name)
			}
		}
		if err := m.Healthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every member.
func (c *NATSProcessCluster) Close() {
	for _, m := range c.members {
		_ = m.Stop()
	}
}
