package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CentrifugoVersion is the Centrifugo release Instant is tested against.
const CentrifugoVersion = "v6.9.1"

// CentrifugoInstallCommand is what a developer runs to get the Centrifugo binary.
const CentrifugoInstallCommand = "go install github.com/centrifugal/centrifugo/v6@" + CentrifugoVersion + "   (or: make centrifugo)"

// ErrCentrifugoNotFound means no Centrifugo binary could be found.
var ErrCentrifugoNotFound = errors.New("centrifugo binary not found")

// FindCentrifugo returns the path of the Centrifugo binary: $INSTANT_CENTRIFUGO_BIN,
// then $GOBIN/centrifugo, $GOPATH/bin/centrifugo (as go install puts it),
// then centrifugo on $PATH. The error says how to install it.
func FindCentrifugo() (string, error) {
	if p := os.Getenv("INSTANT_CENTRIFUGO_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: INSTANT_CENTRIFUGO_BIN=%q is not an executable file; install it with: %s", ErrCentrifugoNotFound, p, CentrifugoInstallCommand)
	}
	var candidates []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "centrifugo"))
	}
	if gopath := goEnv("GOPATH"); gopath != "" {
		for _, dir := range filepath.SplitList(gopath) {
			candidates = append(candidates, filepath.Join(dir, "bin", "centrifugo"))
		}
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c, nil
		}
	}
	if p, err := exec.LookPath("centrifugo"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w (looked in %s and $PATH); install Centrifugo %s with: %s",
		ErrCentrifugoNotFound, strings.Join(candidates, ", "), CentrifugoVersion, CentrifugoInstallCommand)
}

func goEnv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// CentrifugoOptions configure a Centrifugo process.
type CentrifugoOptions struct {
	Binary     string // from FindCentrifugo when empty
	Dir        string // working directory for the config file and log; required
	Port       int    // 0 picks a free port
	APIKey     string // HTTP API key; required
	HMACSecret string // client token HMAC secret; required
	// AllowedOrigins for websocket connections; default ["*"].
	AllowedOrigins []string
	// HistorySize and HistoryTTL enable per-channel history, so publishes
	// return an offset and an epoch. Defaults 100 and 300s.
	HistorySize int
	HistoryTTL  time.Duration
	// AllowAnonymous lets clients connect without a token.
	AllowAnonymous bool
	// Presence keeps who is subscribed to each channel (the token
	// service's live revocation asks it for users it cannot list itself).
	Presence bool
	// RedisAddress, when set (redis://127.0.0.1:6379, see StartRedis),
	// selects the Redis engine: nodes on the same Redis share publications,
	// history and idempotency results. Empty: the memory engine.
	RedisAddress string

	LogLevel string // default "error"
	// Env are extra KEY=VALUE in the process's environment, which it
	// inherits otherwise (Centrifugo reads CENTRIFUGO_* options from it).
	Env []string
	// ExactEnv: the process's environment is PATH, HOME and Env only,
	// nothing else of this process's.
	ExactEnv bool
	// Args, when set, is the command line after the binary (e.g. --config
	// and a configuration file of a deployment) instead of --config and the
	// file written from these options: no file is written, APIKey and
	// HMACSecret are not required, and the options above that only go into
	// that file have no effect. Port and the loopback address are given with
	// CENTRIFUGO_HTTP_SERVER_PORT and CENTRIFUGO_HTTP_SERVER_ADDRESS, which
	// win over a file. Readiness is /api/info with APIKey when it is set,
	// /health (health.enabled) otherwise.
	Args []string
	// Stdout receives the process's output; default a file "centrifugo.log" in Dir.
	Stdout *os.File
	// Extra are top-level keys of the configuration file, added to the
	// generated ones or replacing them whole (e.g. "consumers", or
	// "channel" to run without history).
	Extra map[string]any
}

// Centrifugo is a real Centrifugo server running (or stopped) as a child
// process in its own process group; production deployments run Centrifugo
// themselves.
type Centrifugo struct {
	opts    CentrifugoOptions
	cfgPath string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartCentrifugo writes the configuration (unless opts.Args is set) and
// starts Centrifugo, waiting until it answers. The owner stops it with Stop.
func StartCentrifugo(ctx context.Context, opts CentrifugoOptions) (*Centrifugo, error) {
	if opts.Dir == "" || (opts.Args == nil && (opts.APIKey == "" || opts.HMACSecret == "")) {
		return nil, errors.New("stack: CentrifugoOptions.Dir is required, and APIKey and HMACSecret unless Args is set")
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &Centrifugo{opts: opts}
	if opts.Args == nil {
		s.cfgPath = filepath.Join(opts.Dir, "centrifugo.json")
		if err := os.WriteFile(s.cfgPath, CentrifugoConfig(opts), 0o600); err != nil {
			return nil, fmt.Errorf("write centrifugo config: %w", err)
		}
	}
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (o *CentrifugoOptions) defaults() error {
	if o.Binary == "" {
		bin, err := FindCentrifugo()
		if err != nil {
			return err
		}
		o.Binary = bin
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		o.Port = p
	}
	o.configDefaults()
	return nil
}

// configDefaults fills in the defaults of what goes into the written file.
func (o *CentrifugoOptions) configDefaults() {
	if len(o.AllowedOrigins) == 0 {
		o.AllowedOrigins = []string{"*"}
	}
	if o.HistorySize == 0 {
		o.HistorySize = 100
	}
	if o.HistoryTTL == 0 {
		o.HistoryTTL = 300 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "error"
	}
}

// CentrifugoConfig is the configuration file (JSON) StartCentrifugo writes
// for o, defaults filled in.
func CentrifugoConfig(o CentrifugoOptions) []byte {
	o.configDefaults()
	return (&Centrifugo{opts: o}).config()
}

func (s *Centrifugo) config() []byte {
	cfg := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": s.opts.Port},
		"http_api":    map[string]any{"key": s.opts.APIKey},
		"client": map[string]any{
			"token":                                 map[string]any{"hmac_secret_key": s.opts.HMACSecret},
			"allowed_origins":                       s.opts.AllowedOrigins,
			"allow_anonymous_connect_without_token": s.opts.AllowAnonymous,
		},
		"channel": map[string]any{
			"without_namespace": map[string]any{
				"history_size": s.opts.HistorySize,
				"history_ttl":  s.opts.HistoryTTL.String(),
				// Clients may ask to recover what they missed while
				// disconnected (the browser client does).
				"allow_recovery": true,
				"presence":       s.opts.Presence,
			},
		},
		"health": map[string]any{"enabled": true},
		"log":    map[string]any{"level": s.opts.LogLevel},
	}
	if s.opts.RedisAddress != "" {
		cfg["engine"] = map[string]any{"type": "redis", "redis": map[string]any{"address": []string{s.opts.RedisAddress}}}
	}
	for k, v := range s.opts.Extra {
		cfg[k] = v
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return b
}

// Port is the HTTP port Centrifugo listens on.
func (s *Centrifugo) Port() int { return s.opts.Port }

// URL is the base HTTP URL, e.g. http://127.0.0.1:41234.
func (s *Centrifugo) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// APIURL is the HTTP API endpoint for gocent.
func (s *Centrifugo) APIURL() string { return s.URL() + "/api" }

// WebsocketURL is the client websocket endpoint.
func (s *Centrifugo) WebsocketURL() string {
	return "ws://127.0.0.1:" + strconv.Itoa(s.opts.Port) + "/connection/websocket"
}

// Options returns the options the server runs with (defaults filled in).
func (s *Centrifugo) Options() CentrifugoOptions { return s.opts }

// Restart starts the process again after Stop (same port and config).
func (s *Centrifugo) Restart(ctx context.Context) error {
	s.mu.Lock()
	if s.proc != nil {
		s.mu.Unlock()
		return errors.New("stack: centrifugo already running")
	}
	out, opened := s.opts.Stdout, io.Closer(nil)
	if out == nil {
		f, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		out, opened = f, f
	}
	cmd := s.command()
	cmd.Stdout = out
	cmd.Stderr = out
	p, err := startProcess(cmd, opened)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start centrifugo %s: %w", s.opts.Binary, err)
	}
	s.proc = p
	s.mu.Unlock()
	return s.waitReady(ctx, p.done())
}

// command is the process to start.
func (s *Centrifugo) command() *exec.Cmd {
	args := s.opts.Args
	if args == nil {
		args = []string{"--config", s.cfgPath}
	}
	cmd := exec.Command(s.opts.Binary, args...)
	cmd.Dir = s.opts.Dir
	env := s.opts.Env
	if s.opts.Args != nil { // a given file: the port and address win over it
		env = append(slices.Clone(env),
			"CENTRIFUGO_HTTP_SERVER_PORT="+strconv.Itoa(s.opts.Port), "CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1")
	}
	switch {
	case s.opts.ExactEnv:
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	case len(env) > 0:
		cmd.Env = append(os.Environ(), env...)
	}
	return cmd
}

// logTail is the end of the log file, or where the output went.
func (s *Centrifugo) logTail() string {
	if s.opts.Stdout != nil {
		return "(in " + s.opts.Stdout.Name() + ")"
	}
	data, err := os.ReadFile(s.LogPath())
	if err != nil {
		return err.Error()
	}
	if len(data) > logTailBytes {
		data = append([]byte("…\n"), data[len(data)-logTailBytes:]...)
	}
	return string(data)
}

// LogPath is the file receiving the process's output when
// CentrifugoOptions.Stdout is not set.
func (s *Centrifugo) LogPath() string { return filepath.Join(s.opts.Dir, "centrifugo.log") }

func (s *Centrifugo) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if err := s.Ping(ctx, client); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("centrifugo exited during start; output:\n%s", s.logTail())
		case <-ctx.Done():
			_ = s.Stop()
			return fmt.Errorf("centrifugo did not become ready on port %d: %w", s.opts.Port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Ping calls the HTTP API's info method with the API key or, without
// one, GETs /health.
func (s *Centrifugo) Ping(ctx context.Context, client *http.Client) error {
	method, path, body := http.MethodPost, "/api/info", []byte("{}")
	if s.opts.APIKey == "" {
		method, path, body = http.MethodGet, "/health", nil
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if s.opts.APIKey != "" {
		req.Header.Set("X-API-Key", s.opts.APIKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("centrifugo %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// Stop terminates the process (SIGTERM, then SIGKILL after 5 s) and waits.
func (s *Centrifugo) Stop() error {
	_ = takeProcess(&s.mu, &s.proc).stop(5 * time.Second)
	return nil
}

// PID is the process id, 0 while stopped.
func (s *Centrifugo) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.pid()
}
