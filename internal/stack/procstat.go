package stack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcMem is a process's resident memory, from /proc/<pid>/status.
type ProcMem struct {
	HWM, RSS int64 // bytes: VmHWM (peak) and VmRSS (now)
}

// ReadProcMem reads a process's resident memory (Linux).
func ReadProcMem(pid int) (ProcMem, error) {
	var m ProcMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmHWM":
			dst = &m.HWM
		case "VmRSS":
			dst = &m.RSS
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc/%d/status: unexpected %s line %q", pid, k, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, err
		}
		*dst = n << 10
	}
	if m.HWM == 0 {
		return m, errors.New("no VmHWM in /proc status")
	}
	return m, nil
}

// ResetPeakRSS sets a process's VmHWM back to its current VmRSS (writes 5
// to /proc/<pid>/clear_refs; Linux 4.0 and later), so that the next
// ReadProcMem gives the peak since this call.
func ResetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of %d: %w", pid, err)
	}
	return nil
}

// clockTick is USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 100

// ProcCPU is the user+system CPU time a process has used (Linux); pid 0 is
// this process, a negative pid an unknown one (0).
func ProcCPU(pid int) time.Duration {
	if pid < 0 {
		return 0
	}
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick
}

// ProcWrites is the number of write system calls a process has made
// (syscw in /proc/<pid>/io, Linux): every write to a socket, file or pipe.
func ProcWrites(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
