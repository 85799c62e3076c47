package stack

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a started child process in its own process group, killed if
// this process dies, with a goroutine waiting for it. Signals go to the
// whole group. The methods are safe on a nil *process, which is a stopped
// one: pid is 0, stop and kill do nothing.
type process struct {
	cmd   *exec.Cmd
	ch    chan struct{}    // closed once the process has exited
	state *os.ProcessState // set before ch is closed
}

// startProcess starts cmd in a new process group. out, when not nil, is
// closed once the process has exited (its log file), or at once when it
// cannot start.
func startProcess(cmd *exec.Cmd, out io.Closer) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if out != nil {
			_ = out.Close()
		}
		return nil, err
	}
	p := &process{cmd: cmd, ch: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		if out != nil {
			_ = out.Close()
		}
		close(p.ch)
	}()
	return p, nil
}

// takeProcess returns *running and sets it to nil, under mu: of two calls
// that end a server's process, only the first gets it.
func takeProcess(mu *sync.Mutex, running **process) *process {
	mu.Lock()
	defer mu.Unlock()
	p := *running
	*running = nil
	return p
}

// pid is the process id, also its process group id; 0 for nil.
func (p *process) pid() int {
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// done is closed once the process has exited.
func (p *process) done() <-chan struct{} { return p.ch }

// exited is how the process ended, and whether it has.
func (p *process) exited() (*os.ProcessState, bool) {
	select {
	case <-p.ch:
		return p.state, true
	default:
		return nil, false
	}
}

// signal sends sig to the process group (never to pid 0, this process's
// own group).
func (p *process) signal(sig syscall.Signal) error {
	if p == nil {
		return syscall.ESRCH
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// stop sends SIGTERM to the group and waits up to grace for the process to
// exit, then sends SIGKILL and waits. The error is a failed SIGTERM (it
// does not wait then) or that it had to kill.
func (p *process) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal %s: %w", syscall.SIGTERM, err)
	}
	select {
	case <-p.ch:
		return nil
	case <-time.After(grace):
	}
	_ = p.signal(syscall.SIGKILL)
	<-p.ch
	return fmt.Errorf("did not stop within %v after SIGTERM; killed", grace)
}

// kill sends SIGKILL to the group and waits until the process has exited;
// the error is a failed SIGKILL (it does not wait then).
func (p *process) kill() error {
	if p == nil {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("signal %s: %w", syscall.SIGKILL, err)
	}
	<-p.ch
	return nil
}
