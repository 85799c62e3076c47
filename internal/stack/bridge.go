package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DefaultReadyTimeout is how long StartBridge waits for /readyz by default.
const DefaultReadyTimeout = 30 * time.Second

// BridgeOptions configure a bridge process.
type BridgeOptions struct {
	Binary string // the bridge program (see Binary); required
	Name   string // names the process in errors; default "bridge"
	// Env is the bridge's configuration, KEY=VALUE (later ones win); the
	// caller's own INSTANT_* variables are never passed on (see ChildEnv).
	Env []string
	// HTTPAddr is its metrics and health listener (INSTANT_BRIDGE_HTTP_ADDR,
	// which it overrides in Env); 127.0.0.1 on a free port when empty.
	HTTPAddr string
	LogPath  string    // file receiving its output; required
	Output   io.Writer // also receives its output, when set
	// ReadyTimeout bounds StartBridge's wait for /readyz; default
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Bridge is a bridge process in its own process group (killed if this
// process dies). The owner stops it with Stop.
type Bridge struct {
	name    string
	addr    string
	logPath string
	proc    *process
}

// StartBridge starts a bridge process and waits until its /readyz answers
// 200. When it does not, the process is killed and the error holds the end
// of its output.
func StartBridge(ctx context.Context, o BridgeOptions) (*Bridge, error) {
	b, err := spawnBridge(o)
	if err != nil {
		return nil, err
	}
	d := o.ReadyTimeout
	if d <= 0 {
		d = DefaultReadyTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := b.WaitReady(rctx); err != nil {
		_ = b.Kill()
		return nil, err
	}
	return b, nil
}

func spawnBridge(o BridgeOptions) (*Bridge, error) {
	if o.Binary == "" || o.LogPath == "" {
		return nil, errors.New("stack: BridgeOptions.Binary and LogPath are required")
	}
	if o.Name == "" {
		o.Name = "bridge"
	}
	if o.HTTPAddr == "" {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	logFile, err := os.Create(o.LogPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary)
	cmd.Env = ChildEnv(append(append([]string(nil), o.Env...), "INSTANT_BRIDGE_HTTP_ADDR="+o.HTTPAddr)...)
	var out io.Writer = logFile
	if o.Output != nil {
		out = io.MultiWriter(logFile, o.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProcess(cmd, logFile)
	if err != nil {
		return nil, fmt.Errorf("start bridge %s (%s): %w", o.Name, o.Binary, err)
	}
	return &Bridge{name: o.Name, addr: o.HTTPAddr, logPath: o.LogPath, proc: p}, nil
}

// Name is the name given in BridgeOptions.
func (b *Bridge) Name() string { return b.name }

// PID is the process id (also its process group id).
func (b *Bridge) PID() int { return b.proc.pid() }

// HTTPAddr is the address of its metrics and health listener.
func (b *Bridge) HTTPAddr() string { return b.addr }

// httpBase is the URL base to reach the listener from this host.
func (b *Bridge) httpBase() string {
	host, port, err := net.SplitHostPort(b.addr)
	if err != nil {
		return "http://" + b.addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// WaitReady polls /readyz until it answers 200; it fails when the process
// exits or ctx ends, with the end of the process's output.
func (b *Bridge) WaitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	last := "no answer"
	for {
		resp, err := client.Get(b.httpBase() + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-b.proc.done():
			return fmt.Errorf("bridge %s exited during start (%s); output:\n%s", b.name, b.State(), b.LogTail(logTailBytes))
		case <-ctx.Done():
			return fmt.Errorf("bridge %s not ready (%s): %w; output:\n%s", b.name, last, ctx.Err(), b.LogTail(logTailBytes))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTailBytes is how much of the output errors quote.
const logTailBytes = 4000

// Exited reports whether the process has exited.
func (b *Bridge) Exited() bool {
	_, exited := b.proc.exited()
	return exited
}

// State is how the process ended, nil while it runs.
func (b *Bridge) State() *os.ProcessState {
	st, _ := b.proc.exited()
	return st
}

// Wait waits up to d for the process to exit and returns how it ended, or
// nil when it still runs.
func (b *Bridge) Wait(d time.Duration) *os.ProcessState {
	if st := b.State(); st != nil {
		return st
	}
	select {
	case <-b.proc.done():
		return b.State()
	case <-time.After(d):
		return nil
	}
}

// Signal sends sig to the process's group. Signalling a process that has
// exited is not an error.
func (b *Bridge) Signal(sig syscall.Signal) error {
	if err := b.proc.signal(sig); err != nil && !b.Exited() {
		return fmt.Errorf("signal %s to bridge %s: %w", sig, b.name, err)
	}
	return nil
}

// Stop sends SIGTERM (and SIGCONT, in case it was frozen) and waits up to
// grace for the process to exit, then kills it; the error says it had to.
func (b *Bridge) Stop(grace time.Duration) error {
	if b.Exited() {
		return nil
	}
	_ = b.Signal(syscall.SIGTERM)
	_ = b.Signal(syscall.SIGCONT)
	if b.Wait(grace) != nil {
		return nil
	}
	if err := b.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("bridge %s did not stop within %v after SIGTERM; killed", b.name, grace)
}

// Kill sends SIGKILL to the process's group and waits until it exited.
func (b *Bridge) Kill() error {
	if err := b.proc.kill(); err != nil && !b.Exited() {
		return fmt.Errorf("bridge %s: %w", b.name, err)
	}
	return nil
}

// LogTail is the end of the process's output, at most n bytes.
func (b *Bridge) LogTail(n int) string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = append([]byte("…\n"), data[len(data)-n:]...)
	}
	return string(data)
}
