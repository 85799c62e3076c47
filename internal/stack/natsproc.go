package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NATSProcess is a nats-server child process, member of a
// NATSProcessCluster, in its own process group (killed if this process
// dies). It can be killed (SIGKILL: no leadership hand-off, no flush) and
// started again on the same ports with the same storage and routes.
type NATSProcess struct {
	name    string
	bin     string
	dir     string // configuration, log and JetStream storage
	port    int    // client port
	monitor int    // HTTP monitoring port

	mu   sync.Mutex
	proc *process // nil while stopped
}

// natsConfig is a member's configuration file: listeners on 127.0.0.1,
// JetStream in dir/jetstream when on, routes to every other member.
func natsConfig(o NATSProcessOptions, name string, port, monitor, routePort int, routes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nhost: \"127.0.0.1\"\nport: %d\nhttp: \"127.0.0.1:%d\"\n", name, port, monitor)
	if o.MaxPayload > 0 {
		fmt.Fprintf(&b, "max_payload: %d\n", o.MaxPayload)
	}
	if o.JetStream {
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(o.Dir, name, "jetstream"))
	}
	quoted := make([]string, len(routes))
	for i, r := range routes {
		quoted[i] = strconv.Quote(r)
	}
	fmt.Fprintf(&b, "cluster {\n  name: %q\n  host: \"127.0.0.1\"\n  port: %d\n  routes: [%s]\n}\n",
		clusterName, routePort, strings.Join(quoted, ", "))
	return b.String()
}

// Name is the server's name (n1, n2, ...), as JetStream reports leaders.
func (p *NATSProcess) Name() string { return p.name }

// Port is the client port.
func (p *NATSProcess) Port() int { return p.port }

// URL is the client URL.
func (p *NATSProcess) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(p.port) }

// MonitorURL is the base URL of the HTTP monitoring endpoints (/varz,
// /connz, /routez, /healthz).
func (p *NATSProcess) MonitorURL() string { return "http://127.0.0.1:" + strconv.Itoa(p.monitor) }

// LogPath is the file receiving the server's output.
func (p *NATSProcess) LogPath() string { return filepath.Join(p.dir, "nats-server.log") }

// PID is the process id, 0 while stopped.
func (p *NATSProcess) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc.pid()
}

// Start starts the server (again) and waits until it accepts client
// connections; it is an error while it runs.
func (p *NATSProcess) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.proc != nil {
		p.mu.Unlock()
		return fmt.Errorf("stack: nats-server %s already running", p.name)
	}
	out, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	cmd := exec.Command(p.bin, "-c", filepath.Join(p.dir, "nats-server.conf"))
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = out, out
	proc, err := startProcess(cmd, out)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start nats-server %s (%s): %w", p.name, p.bin, err)
	}
	p.proc = proc
	p.mu.Unlock()
	return p.waitReady(ctx, proc.done())
}

func (p *NATSProcess) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, natsReadyTimeout)
	defer cancel()
	addr := "127.0.0.1:" + strconv.Itoa(p.port)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("nats-server %s exited during start; see %s", p.name, p.LogPath())
		case <-ctx.Done():
			_ = p.Kill()
			return fmt.Errorf("nats-server %s did not accept connections on port %d: %w; see %s", p.name, p.port, ctx.Err(), p.LogPath())
		case <-time.After(pollInterval):
		}
	}
}

// Kill sends SIGKILL to the server's process group and waits until it
// exited (idempotent): a crash, not a shutdown.
func (p *NATSProcess) Kill() error { return p.named(takeProcess(&p.mu, &p.proc).kill()) }

// Stop shuts the server down (SIGTERM, SIGKILL after 10 s) and waits
// (idempotent).
func (p *NATSProcess) Stop() error {
	return p.named(takeProcess(&p.mu, &p.proc).stop(10 * time.Second))
}

// named says which server an error of Kill or Stop is about; nil stays nil.
func (p *NATSProcess) named(err error) error {
	if err != nil {
		return fmt.Errorf("nats-server %s: %w", p.name, err)
	}
	return nil
}

// monitorClient bounds the monitoring requests.
var monitorClient = &http.Client{Timeout: 2 * time.Second}

// getJSON GETs a monitoring endpoint and decodes its answer into v; a
// status other than 200 is an error holding the body.
func (p *NATSProcess) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MonitorURL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := monitorClient.Do(req)
	if err != nil {
		return fmt.Errorf("nats-server %s %s: %w", p.name, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return fmt.Errorf("nats-server %s %s: status %d %s", p.name, path, resp.StatusCode, body.Error)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// ClientNames are the names of the client connections on the server
// (nats.Name), from /connz.
func (p *NATSProcess) ClientNames(ctx context.Context) ([]string, error) {
	var cz struct {
		Conns []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := p.getJSON(ctx, "/connz?limit=100000", &cz); err != nil {
		return nil, err
	}
	names := make([]string, len(cz.Conns))
	for i, c := range cz.Conns {
		names[i] = c.Name
	}
	return names, nil
}

// Remotes are the names of the servers this one has routes to (several
// pooled routes to one server count once), from /routez.
func (p *NATSProcess) Remotes(ctx context.Context) (map[string]bool, error) {
	var rz struct {
		Routes []struct {
			RemoteName string `json:"remote_name"`
			RemoteID   string `json:"remote_id"`
		} `json:"routes"`
	}
	if err := p.getJSON(ctx, "/routez", &rz); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range rz.Routes {
		if r.RemoteName != "" {
			out[r.RemoteName] = true
		} else {
			out[r.RemoteID] = true
		}
	}
	return out, nil
}

// Healthy returns nil when /healthz answers ok: with JetStream, the server
// is current with the meta leader and each of its streams and consumers is
// current with its leader.
func (p *NATSProcess) Healthy(ctx context.Context) error {
	var hz struct {
		Status string `json:"status"`
	}
	if err := p.getJSON(ctx, "/healthz", &hz); err != nil {
		return err
	}
	if hz.Status != "ok" {
		return fmt.Errorf("nats-server %s /healthz: %q", p.name, hz.Status)
	}
	return nil
}

// errNATSCluster says what a cluster's options lack.
var errNATSCluster = errors.New("stack: NATSProcessOptions.Binary and Dir are required")
