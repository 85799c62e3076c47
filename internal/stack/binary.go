package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// BridgePackage is the package of the bridge program, relative to the module root.
const BridgePackage = "./cmd/bridge"

// NATSServerPackage is nats-server's main package. The module depends on
// nats-server (the embedded servers), so it builds from the module cache at
// the version in go.mod.
const NATSServerPackage = "github.com/nats-io/nats-server/v2"

// Binary is a program of the main module or of one of its dependencies,
// built once, on first use.
type Binary struct {
	// Package is relative to the module root (e.g. BridgePackage) or a
	// dependency's import path (e.g. NATSServerPackage); required.
	Package string
	// Name is the binary's file name; default the package's last element.
	Name string
	// Dir receives the binary; when empty, a temporary directory that Close
	// removes.
	Dir string

	mu   sync.Mutex
	path string
	tmp  string
}

// Path builds the package the first time and returns the binary's path. A
// failed build is tried again on the next call.
func (b *Binary) Path(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path != "" {
		return b.path, nil
	}
	if b.Package == "" {
		return "", errors.New("stack: Binary.Package is required")
	}
	dir := b.Dir
	if dir == "" {
		if b.tmp == "" {
			tmp, err := os.MkdirTemp("", "instant-stack-")
			if err != nil {
				return "", err
			}
			b.tmp = tmp
		}
		dir = b.tmp
	}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	name := b.Name
	if name == "" {
		name = filepath.Base(b.Package)
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, b.Package)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", b.Package, err, out)
	}
	b.path = path
	return path, nil
}

// Close removes the temporary directory, if Path made one.
func (b *Binary) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tmp == "" {
		return nil
	}
	err := os.RemoveAll(b.tmp)
	b.tmp, b.path = "", ""
	return err
}

// ModuleRoot is the directory of the main module's go.mod, found from the
// working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}
