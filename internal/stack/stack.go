// Package stack starts the real processes Instant runs against (an embedded
// NATS server or cluster, a cluster of nats-server processes, a Centrifugo
// process, a redis-server process for
// Centrifugo's Redis engine, bridge processes) for the
// tests, the fault tests, the benchmark and the local development stack.
// Whoever starts something stops it (Stop or Close); internal/testenv wraps
// it for tests.
package stack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ErrNotYet is a convenience error for Eventually conditions.
var ErrNotYet = errors.New("not yet")

// pollInterval is how often Eventually checks its condition.
const pollInterval = 20 * time.Millisecond

// Eventually calls f until it returns nil or d has passed, and returns nil
// or, when d passed, an error wrapping f's last error.
func Eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %v: %w", d, err)
		}
		time.Sleep(pollInterval)
	}
}

// Secret returns a random hex string of n bytes for keys and secrets.
func Secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return hex.EncodeToString(b)
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ChildEnv is the environment of a child process: this process's
// environment without any INSTANT_* variable (so a developer's settings
// cannot change what is started), then vars (KEY=VALUE, later ones win).
func ChildEnv(vars ...string) []string {
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSTANT_") {
			base = append(base, kv)
		}
	}
	return mergeEnv(base, vars)
}

// mergeEnv returns base with the KEY=VALUE pairs of over replacing or added.
func mergeEnv(base, over []string) []string {
	idx := map[string]int{}
	out := append([]string(nil), base...)
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}
