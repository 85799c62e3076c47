package stack

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterName is the name of the clusters StartNATSCluster starts.
const clusterName = "instant"

// Cluster is a cluster of embedded nats-servers routed to each other. Each
// member can be stopped and started again on its own.
type Cluster struct {
	members []*NATS
}

// StartNATSCluster starts n servers (named n1, n2, ...) on free client and
// cluster ports, each with routes to all the others. With o.JetStream,
// JetStream is clustered and member i stores in o.StoreDir/n<i>. o.Port
// must be 0; o.Configure is applied to every member.
func StartNATSCluster(n int, o NATSOptions) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("stack: a cluster of %d servers", n)
	}
	if o.Port != 0 {
		return nil, errors.New("stack: NATSOptions.Port must be 0 for a cluster (each member gets a free port)")
	}
	routePorts := make([]int, n)
	routes := make([]string, n)
	for i := range routePorts {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		routePorts[i], routes[i] = p, "nats://127.0.0.1:"+strconv.Itoa(p)
	}
	c := &Cluster{}
	for i := range n {
		opts, err := memberOptions(o, i, routePorts[i], routes)
		if err != nil {
			c.Close()
			return nil, err
		}
		m, err := startNATS(opts)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster member %s: %w", opts.ServerName, err)
		}
		c.members = append(c.members, m)
	}
	return c, nil
}

func memberOptions(o NATSOptions, i, routePort int, routes []string) (server.Options, error) {
	name := "n" + strconv.Itoa(i+1)
	if o.JetStream && o.StoreDir != "" {
		o.StoreDir = filepath.Join(o.StoreDir, name)
	}
	opts, err := o.serverOptions()
	if err != nil {
		return opts, err
	}
	opts.ServerName = name
	opts.Cluster = server.ClusterOpts{Name: clusterName, Host: "127.0.0.1", Port: routePort}
	var others []string
	for j, r := range routes {
		if j != i {
			others = append(others, r)
		}
	}
	opts.Routes = server.RoutesFromStr(strings.Join(others, ","))
	return opts, nil
}

// Members are the servers, in the order of their names (n1 first).
func (c *Cluster) Members() []*NATS { return c.members }

// URL lists every member's client URL, comma-separated, as nats.Connect
// accepts it.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = m.URL()
	}
	return strings.Join(urls, ",")
}

// Formed returns nil when every running member has a route to every other
// running member and, with JetStream, is current with the JetStream meta
// leader; an error saying what is missing otherwise. Poll it with Eventually.
func (c *Cluster) Formed() error {
	var running []*server.Server
	for _, m := range c.members {
		if s := m.Server(); s != nil {
			running = append(running, s)
		}
	}
	for _, s := range running {
		if got := s.NumRemotes(); got != len(running)-1 {
			return fmt.Errorf("%s has routes to %d servers, want %d", s.Name(), got, len(running)-1)
		}
		if s.JetStreamEnabled() && !s.JetStreamIsCurrent() {
			return fmt.Errorf("%s is not current with the JetStream meta leader", s.Name())
		}
	}
	return nil
}

// Close stops every member.
func (c *Cluster) Close() {
	for _, m := range c.members {
		m.Stop()
	}
}
