package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// RedisInstallCommand is what a developer runs to get redis-server (Debian
// and Ubuntu; .ci/run installs it so when it is missing).
const RedisInstallCommand = "apt-get update && apt-get install -y --no-install-recommends redis-server"

// ErrRedisNotFound means no redis-server binary could be found.
var ErrRedisNotFound = errors.New("redis-server binary not found")

// FindRedis returns the path of redis-server on $PATH (or in /usr/bin,
// /usr/sbin, where Debian installs it); the error says how to install it.
func FindRedis() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"} {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (looked on $PATH, /usr/bin, /usr/sbin); install it with: %s", ErrRedisNotFound, RedisInstallCommand)
}

// RedisOptions configure a redis-server process.
type RedisOptions struct {
	Binary string // from FindRedis when empty
	Dir    string // working directory and log file; required
	Port   int    // 0 picks a free port
}

// Redis is a redis-server child process in its own process group, on
// 127.0.0.1, without persistence (--save "" --appendonly no): Centrifugo's
// Redis engine keeps history and idempotency results there. The owner stops
// it with Stop.
type Redis struct {
	opts RedisOptions

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartRedis starts redis-server and waits until it answers PING.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	if o.Dir == "" {
		return nil, errors.New("stack: RedisOptions.Dir is required")
	}
	if o.Binary == "" {
		bin, err := FindRedis()
		if err != nil {
			return nil, err
		}
		o.Binary = bin
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	r := &Redis{opts: o}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Redis) start(ctx context.Context) error {
	logPath := filepath.Join(r.opts.Dir, "redis.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.opts.Binary,
		"--port", strconv.Itoa(r.opts.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.opts.Dir, "--daemonize", "no")
	cmd.Dir = r.opts.Dir
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProcess(cmd, out)
	if err != nil {
		return fmt.Errorf("start redis-server %s: %w", r.opts.Binary, err)
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if err := r.Ping(ctx); err == nil {
			return nil
		}
		select {
		case <-p.done():
			return fmt.Errorf("redis-server exited during start; see %s", logPath)
		case <-ctx.Done():
			_ = r.Stop()
			return fmt.Errorf("redis-server did not answer PING on port %d: %w; see %s", r.opts.Port, ctx.Err(), logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ping sends PING and expects +PONG.
func (r *Redis) Ping(ctx context.Context) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", r.Addr())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redis PING answered %q", line)
	}
	return nil
}

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.opts.Port) }

// URL is the address as Centrifugo takes it, redis://127.0.0.1:<port>.
func (r *Redis) URL() string { return "redis://" + r.Addr() }

// PID is the process id, 0 while stopped.
func (r *Redis) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc.pid()
}

// Stop terminates the process (SIGTERM, then SIGKILL after 5 s) and waits
// (idempotent).
func (r *Redis) Stop() error {
	_ = takeProcess(&r.mu, &r.proc).stop(5 * time.Second)
	return nil
}
