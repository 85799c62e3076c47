package hotfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/pkg/acl"
)

// parseText accepts any text but empty text and text starting with "bad".
func parseText(name string, data []byte) (string, error) {
	s := strings.TrimSpace(string(data))
	if s == "" || strings.HasPrefix(s, "bad") {
		return "", fmt.Errorf("%s: bad contents %q", name, s)
	}
	return s, nil
}

func writeFile(tb testing.TB, path, data string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func wantCurrent[T comparable](f *File[T], want T) func() error {
	return func() error {
		if got := f.Current(); got != want {
			return fmt.Errorf("Current = %v, want %v", got, want)
		}
		return nil
	}
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func logged(logs *observer.ObservedLogs, level zapcore.Level, msg string) func() error {
	return func() error {
		for _, e := range logs.All() {
			if e.Level == level && e.Message == msg {
				return nil
			}
		}
		return fmt.Errorf("no %s log %q", level, msg)
	}
}

// startWatch runs f.Watch until the test ends and waits until it watches.
func startWatch[T any](tb testing.TB, f *File[T], logs *observer.ObservedLogs) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Watch(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Watch returned %v, want nil after cancel", err)
			}
		case <-time.After(5 * time.Second):
			tb.Error("Watch did not return after cancel")
		}
	})
	testenv.Eventually(tb, 5*time.Second, func() error {
		select {
		case err := <-done:
			tb.Fatalf("Watch returned early: %v", err)
		default:
		}
		return logged(logs, zapcore.DebugLevel, "watching")()
	})
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.txt")
	if _, err := Load(path, parseText, nil); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming the path", err)
	}
	writeFile(t, path, "bad")
	if _, err := Load(path, parseText, nil); err == nil || !strings.Contains(err.Error(), "bad contents") {
		t.Errorf("Load(invalid) = %v, want the parse error", err)
	}
	writeFile(t, path, "one\n")
	f, err := Load(path, parseText, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Current(); got != "one" {
		t.Errorf("Current = %q, want one", got)
	}
}

func TestReloadKeepsOldValueOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	writeFile(t, path, "one")
	f, err := Load(path, parseText, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	f.OnReload(func(v string) { mu.Lock(); seen = append(seen, v); mu.Unlock() })

	writeFile(t, path, "bad two")
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), "bad contents") {
		t.Errorf("Reload(bad) = %v, want the parse error", err)
	}
	if got := f.Current(); got != "one" {
		t.Errorf("after a bad reload Current = %q, want one (the old value)", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); !errors.Is(err, fs.ErrNotExist) || f.Current() != "one" {
		t.Errorf("Reload(missing) = %v, Current %q; want not-exist and one", err, f.Current())
	}
	writeFile(t, path, "three")
	if err := f.Reload(); err != nil {
		t.Fatalf("Reload(good) = %v", err)
	}
	if err := f.Reload(); err != nil { // unchanged: no second hook call
		t.Fatalf("Reload(unchanged) = %v", err)
	}
	if got := f.Current(); got != "three" {
		t.Errorf("Current = %q, want three", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"three"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("OnReload saw %q, want %q", seen, want)
	}
}

func TestWatchWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	writeFile(t, path, "one")
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, f, logs)

	writeFile(t, path, "two")
	testenv.Eventually(t, 5*time.Second, wantCurrent(f, "two"))
	testenv.Eventually(t, 5*time.Second, logged(logs, zapcore.InfoLevel, "reloaded"))
	if e := logs.FilterMessage("reloaded").All()[0]; e.ContextMap()["path"] != path {
		t.Errorf("reloaded log fields = %v, want path %s", e.ContextMap(), path)
	}
}

func TestWatchBadFileKeepsOldValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	writeFile(t, path, "one")
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, f, logs)

	writeFile(t, path, "bad")
	testenv.Eventually(t, 5*time.Second, logged(logs, zapcore.ErrorLevel, "reload failed, keeping the previous version"))
	if got := f.Current(); got != "one" {
		t.Errorf("after a bad file Current = %q, want one", got)
	}
	writeFile(t, path, "two")
	testenv.Eventually(t, 5*time.Second, wantCurrent(f, "two"))
}

func TestWatchRenameSwap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.txt")
	writeFile(t, path, "one")
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, f, logs)

	for _, v := range []string{"two", "three"} {
		tmp := filepath.Join(dir, ".v.txt.tmp")
		writeFile(t, tmp, v)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, wantCurrent(f, v))
	}
}

// TestWatchConfigMapSwap replays how Kubernetes updates a mounted
// ConfigMap: the file is a symlink through ..data, a symlink to a
// timestamped directory, and an update swaps ..data by rename.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, contents string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "v.txt"), contents)
	}
	version("..2026_01_01", "one")
	if err := os.Symlink("..2026_01_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "v.txt")
	if err := os.Symlink("..data/v.txt", path); err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, f, logs)

	version("..2026_01_02", "two")
	if err := os.Symlink("..2026_01_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, wantCurrent(f, "two"))
}

// signalSetup makes a file that Watch cannot see change: the watched path
// is a symlink into an unwatched directory whose file is edited in place.
// Only a signal can make Watch reload it.
func signalSetup(t *testing.T) (path, target string) {
	t.Helper()
	watched, elsewhere := t.TempDir(), t.TempDir()
	target = filepath.Join(elsewhere, "v.txt")
	writeFile(t, target, "one")
	path = filepath.Join(watched, "v.txt")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return path, target
}

func TestWatchSignalChannel(t *testing.T) {
	path, target := signalSetup(t)
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	f.signals = sigs
	startWatch(t, f, logs)

	writeFile(t, target, "two")
	sigs <- syscall.SIGHUP
	testenv.Eventually(t, 5*time.Second, wantCurrent(f, "two"))
	testenv.Eventually(t, 5*time.Second, logged(logs, zapcore.InfoLevel, "reload requested"))
}

// TestWatchSIGHUP sends a real SIGHUP to the test process, only while Watch
// has it registered with signal.Notify (it logs "watching" after that), so
// the signal cannot stop the test binary.
func TestWatchSIGHUP(t *testing.T) {
	path, target := signalSetup(t)
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, f, logs)

	writeFile(t, target, "two")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, wantCurrent(f, "two"))
}

func TestWatchTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	writeFile(t, path, "one")
	log, logs := observed()
	f, err := Load(path, parseText, log)
	if err != nil {
		t.Fatal(err)
	}
	f.signals = make(chan os.Signal)
	startWatch(t, f, logs)
	if err := f.Watch(context.Background()); !errors.Is(err, ErrWatching) {
		t.Errorf("second Watch = %v, want ErrWatching", err)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	writeFile(t, path, "one")
	f, err := Load(path, parseText, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	if err := f.Watch(context.Background()); err == nil {
		t.Error("Watch of a removed directory: no error")
	}
}

// TestChannelsFile uses the real channels file parser, as the bridge does.
func TestChannelsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "channels.yaml")
	writeFile(t, path, "channels:\n  - name: public\n    level: public\n")
	log, logs := observed()
	f, err := Load(path, channelsfile.Parse, log)
	if err != nil {
		t.Fatal(err)
	}
	startWatch(t, f, logs)

	writeFile(t, path, "channels:\n  - name: public\n    level: public\n  - name: $staff\n    level: staff\n")
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := f.Current().Len(); n != 2 {
			return fmt.Errorf("Current().Len() = %d, want 2", n)
		}
		return nil
	})
	testenv.Eventually(t, 5*time.Second, func() error {
		for _, e := range logs.FilterMessage("reloaded").All() {
			if e.ContextMap()["entries"] == int64(2) {
				return nil
			}
		}
		return errors.New(`no "reloaded" log with entries=2`)
	})

	writeFile(t, path, "channels:\n  - name: public\n    levle: public\n")
	err = f.Reload()
	var fe *acl.FileError
	if !errors.As(err, &fe) || fe.File != path || fe.Line != 3 {
		t.Errorf("Reload(typo) = %v, want a *acl.FileError naming %s line 3", err, path)
	}
	if n := f.Current().Len(); n != 2 {
		t.Errorf("after a bad file Current().Len() = %d, want 2 (the old registry)", n)
	}
}
