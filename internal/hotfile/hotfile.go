// Package hotfile keeps a value parsed from a file and reloads it when the
// file changes or the process receives SIGHUP, without a restart; a bad new
// file is refused and the old value kept.
package hotfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// ParseFunc parses the contents of a file; name is the file's path, for
// error messages and to choose a format.
type ParseFunc[T any] func(name string, data []byte) (T, error)

// debounce is how long Watch waits after the last change event of a burst
// before it reloads. A burst that goes on is reloaded at least every eleven
// debounce periods.
const debounce = 100 * time.Millisecond

// ErrWatching is returned by a second concurrent call to Watch.
var ErrWatching = errors.New("hotfile: already watching")

// File is a value parsed from a file, replaced whole on each successful
// reload. Its methods are safe for concurrent use.
type File[T any] struct {
	path  string
	parse ParseFunc[T]
	log   *zap.Logger

	cur atomic.Pointer[T]

	mu    sync.Mutex // serializes reloads and guards the fields below
	data  []byte     // the contents cur was parsed from
	hooks []func(T)

	watching atomic.Bool
	// signals, when not nil, replaces SIGHUP as the source of reload
	// requests (for tests).
	signals <-chan os.Signal
	// debounce is the quiet period after change events.
	debounce time.Duration
}

// Load reads and parses the file at path. It fails if the file is missing or
// invalid. log may be nil.
func Load[T any](path string, parse ParseFunc[T], log *zap.Logger) (*File[T], error) {
	if log == nil {
		log = zap.NewNop()
	}
	f := &File[T]{
		path:     path,
		parse:    parse,
		log:      log.With(zap.String("path", path)),
		debounce: debounce,
	}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the path of the file.
func (f *File[T]) Path() string { return f.path }

// Current returns the value of the last successful load. Callers must not
// modify it.
func (f *File[T]) Current() T { return *f.cur.Load() }

// OnReload registers fn to be called with the new value after each reload
// that changed it, in order, from the goroutine that reloaded. fn must not
// call Reload.
func (f *File[T]) OnReload(fn func(T)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = append(f.hooks, fn)
}

// Reload reads and parses the file again. If that fails, the current value
// is kept and the error returned. A file whose contents did not change is
// not parsed again.
func (f *File[T]) Reload() error {
	_, err := f.reload()
	return err
}

// reload reports whether the value changed.
func (f *File[T]) reload() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", f.path, err)
	}
	if f.cur.Load() != nil && bytes.Equal(data, f.data) {
		return false, nil
	}
	v, err := f.parse(f.path, data)
	if err != nil {
		return false, err
	}
	f.data = data
	f.cur.Store(&v)
	for _, fn := range f.hooks {
		fn(v)
	}
	return true, nil
}

// Watch reloads the file when it changes and on SIGHUP, until ctx is done;
// then it returns nil. It watches the file's directory, so that editors
// that replace the file by renaming and Kubernetes ConfigMap symlink swaps
// are seen; a burst of changes gives one reload. It logs each reload, and
// each failed one at error level (the old value stays). It fails at once
// if the directory cannot be watched, or if another Watch of f is running.
func (f *File[T]) Watch(ctx context.Context) error {
	if !f.watching.CompareAndSwap(false, true) {
		return ErrWatching
	}
	defer f.watching.Store(false)

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", f.path, err)
	}
	defer w.Close()
	dir := filepath.Dir(f.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: directory %s: %w", f.path, dir, err)
	}

	signals := f.signals
	if signals == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		signals = ch
	}

	// A change between Load and now was not seen: look once.
	f.reloadAndLog("watch start")
	target := f.realPath()
	f.log.Debug("watching", zap.String("dir", dir))

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var firstEvent time.Time // of the burst not yet reloaded; zero if none

	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-signals:
			f.log.Info("reload requested", zap.Stringer("signal", sig))
			f.reloadAndLog("signal")
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", f.path)
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			// The file itself changed, or the symlinks leading to it now
			// lead somewhere else (a ConfigMap update).
			if filepath.Clean(ev.Name) != filepath.Clean(f.path) && f.realPath() == target {
				continue
			}
			if firstEvent.IsZero() {
				firstEvent = time.Now()
			}
			if time.Since(firstEvent) < 10*f.debounce {
				timer.Reset(f.debounce)
			}
		case <-timer.C:
			firstEvent = time.Time{}
			target = f.realPath()
			f.reloadAndLog("file changed")
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("watch %s: watcher closed", f.path)
			}
			f.log.Error("watch error", zap.Error(err))
		}
	}
}

// realPath returns where the file's symlinks lead, or "" if they lead
// nowhere now.
func (f *File[T]) realPath() string {
	p, err := filepath.EvalSymlinks(f.path)
	if err != nil {
		return ""
	}
	return p
}

func (f *File[T]) reloadAndLog(why string) {
	changed, err := f.reload()
	switch {
	case err != nil:
		f.log.Error("reload failed, keeping the previous version", zap.String("trigger", why), zap.Error(err))
	case changed:
		fields := []zap.Field{zap.String("trigger", why)}
		if l, ok := any(f.Current()).(interface{ Len() int }); ok {
			fields = append(fields, zap.Int("entries", l.Len()))
		}
		f.log.Info("reloaded", fields...)
	default:
		f.log.Debug("unchanged", zap.String("trigger", why))
	}
}
