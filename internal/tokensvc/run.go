package tokensvc

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/hotfile"
	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/internal/tokens"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// Service is a running token service: the HTTP server and the watchers of
// the channels and users files.
type Service struct {
	log    *zap.Logger
	server *Server
	http   *http.Server
	ln     net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error // the HTTP server's exit
}

// Start loads the files, builds the server and starts listening on
// cfg.HTTPAddr (port 0 picks a free port, see Addr). cfg must be valid.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := log
	log = log.With(zap.String(logging.FieldComponent, "tokensvc"))
	channels, err := hotfile.Load(cfg.ChannelsFile, channelsfile.Parse, log)
	if err != nil {
		return nil, fmt.Errorf("INSTANT_CHANNELS_FILE: %w", err)
	}
	var usersFile *hotfile.File[*users.File]
	deps := Deps{Channels: channels.Current}
	if cfg.UsersFile != "" {
		if usersFile, err = hotfile.Load(cfg.UsersFile, users.Parse, log); err != nil {
			return nil, fmt.Errorf("INSTANT_USERS_FILE: %w", err)
		}
		deps.Users = usersFile.Current
	}
	if deps.Signer, err = newSigner(cfg); err != nil {
		return nil, err
	}
	server, err := NewServer(cfg, base, deps)
	if err != nil {
		return nil, err
	}
	if server.jwt != nil && server.jwt.jwks != nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := server.jwt.jwks.fetch(fctx); err != nil {
			log.Warn("JWKS not fetched; retrying on demand (readyz fails until then)", zap.Error(err))
		}
		cancel()
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("INSTANT_TOKENSVC_HTTP_ADDR: listen %s: %w", cfg.HTTPAddr, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		log:    log,
		server: server,
		ln:     ln,
		cancel: cancel,
		errc:   make(chan error, 1),
		http: &http.Server{
			Handler:           server,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          zap.NewStdLog(log),
		},
	}
	if cfg.CentrifugoAPIURL != "" {
		s.startRevoker(wctx, cfg, base, channels, usersFile)
	}
	s.goWatch(wctx, cfg.ChannelsFile, channels.Watch)
	if usersFile != nil {
		s.goWatch(wctx, cfg.UsersFile, usersFile.Watch)
	}
	go func() { s.errc <- s.http.Serve(ln) }()
	log.Info("token service listening", zap.String("addr", s.Addr()),
		zap.Int("channels", channels.Current().Len()), zap.Bool("anonymous", cfg.Anonymous),
		zap.Bool("users_file", cfg.UsersFile != ""), zap.Bool("upstream_jwt", server.jwt != nil),
		zap.Bool("proxy_auth", len(server.authProxies) > 0), zap.Bool("live_revocation", cfg.CentrifugoAPIURL != ""))
	return s, nil
}

// goWatch runs a file's watch until ctx ends.
func (s *Service) goWatch(ctx context.Context, name string, watch func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := watch(ctx); err != nil {
			s.log.Error("file watch stopped; reload with a restart", zap.String("file", name), zap.Error(err))
		}
	}()
}

// startRevoker revokes access through Centrifugo's API after each reload of
// the channels or users file, until ctx ends.
func (s *Service) startRevoker(ctx context.Context, cfg Config, log *zap.Logger, channels *hotfile.File[*acl.Registry], usersFile *hotfile.File[*users.File]) {
	current := func() accessState {
		st := accessState{reg: channels.Current()}
		if usersFile != nil {
			st.users = usersFile.Current()
		}
		return st
	}
	r := newRevoker(cfg, log, s.server.m.reg, current)
	channels.OnReload(func(*acl.Registry) { r.reloaded() })
	if usersFile != nil {
		usersFile.OnReload(func(*users.File) { r.reloaded() })
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.run(ctx)
	}()
}

func newSigner(cfg Config) (*tokens.Signer, error) {
	if cfg.CentrifugoPrivateKeyFile != "" {
		b, err := os.ReadFile(cfg.CentrifugoPrivateKeyFile)
		if err != nil {
			return nil, &ConfigError{Var: "INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE", Msg: err.Error()}
		}
		sig, err := tokens.NewFromPEM(b)
		if err != nil {
			return nil, &ConfigError{Var: "INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE", Msg: err.Error()}
		}
		return sig, nil
	}
	return tokens.NewHMAC([]byte(cfg.CentrifugoHMACKey))
}

// Addr is the address the service listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// done yields the HTTP server's exit error.
func (s *Service) done() <-chan error { return s.errc }

// Close stops taking connections, lets requests in flight finish (up to
// 10s), and stops the file watchers.
func (s *Service) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.cancel()
	s.wg.Wait()
	s.server.close()
	return err
}

// Run starts the service and serves until ctx is done.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	s, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
		return s.Close()
	case err := <-s.done():
		_ = s.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
	}
}

const usageHeader = `tokensvc: Instant's token service. It authenticates users and issues
Centrifugo connection and subscription tokens for the channels the ACL allows.

Usage:
  tokensvc                 run the service (configured by the variables below)
  tokensvc hash-password [-cost 12]
                           read a password line on stdin, print its bcrypt hash
  tokensvc explain --user NAME [--channel CH] [--groups g1,g2] [--staff]
                   [--superuser] [--anonymous] [--json]
                           why a user may or may not subscribe (explain --help)
  tokensvc --help          this help

Configuration (environment variables):
`

// Main is the tokensvc program: args are the command-line arguments
// without the program name.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			_, _ = io.WriteString(stdout, usageHeader)
			return Usage(stdout)
		case "hash-password":
			fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
			fs.SetOutput(stderr)
			cost := fs.Int("cost", 12, "bcrypt cost (4 to 31)")
			if err := fs.Parse(args[1:]); err != nil {
				return err
			}
			return hashPassword(stdin, stdout, *cost)
		case "explain":
			return explainCommand(args[1:], stdout, stderr)
		default:
			return fmt.Errorf("unknown argument %q (see tokensvc --help)", args[0])
		}
	}
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return &ConfigError{Var: "INSTANT_LOG_LEVEL", Msg: err.Error()}
	}
	defer func() { _ = log.Sync() }()
	return Run(ctx, cfg, log)
}

// hashPassword reads one line (without its newline) and prints its bcrypt
// hash.
func hashPassword(stdin io.Reader, stdout io.Writer, cost int) error {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("-cost %d: want %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	h, err := users.HashPassword([]byte(line), cost)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, h)
	return err
}
