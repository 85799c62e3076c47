package tokensvc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/internal/tokens"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// Deps are what the server reads its state from. Channels and Users return
// the current (hot-reloaded) files; Users is nil when no users file is
// configured.
type Deps struct {
	Channels func() *acl.Registry
	Users    func() *users.File
	Signer   *tokens.Signer
}

var _ http.Handler = (*Server)(nil)

// Server is the token service's HTTP handler.
type Server struct {
	cfg         Config
	log         *zap.Logger
	deps        Deps
	sessions    *sessions
	jwt         *jwtVerifier
	proxies     []netip.Prefix // INSTANT_TRUSTED_PROXIES: whose forwarded-for header names the client
	authProxies []netip.Prefix // INSTANT_PROXY_AUTH_PROXIES: whose user header names the user; nil unless INSTANT_PROXY_AUTH
	origins     []string
	perUser     *keyedLimiter
	perAddr     *keyedLimiter
	// hashSlots bounds the password checks running at once.
	hashSlots chan struct{}
	// checkPassword is (*users.File).Authenticate; tests hold it.
	checkPassword func(f *users.File, username, password string) (users.User, error)
	m             *metrics
	sameSite      http.SameSite
	handler       http.Handler
}

// NewServer builds the server. cfg must be valid (Config.Validate).
func NewServer(cfg Config, log *zap.Logger, deps Deps) (*Server, error) {
	if deps.Channels == nil || deps.Signer == nil {
		return nil, errors.New("tokensvc: Deps.Channels and Deps.Signer are required")
	}
	log = log.With(zap.String(logging.FieldComponent, "tokensvc"))
	key := []byte(cfg.SessionKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Warn("INSTANT_SESSION_KEY is not set: session cookies are signed with a random key of this process; sessions end at restart and are not shared by replicas")
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		deps:     deps,
		sessions: newSessions(key, cfg.SessionTTL),
		perUser:  newKeyedLimiter(cfg.LoginRatePerUser),
		perAddr:  newKeyedLimiter(cfg.LoginRatePerAddr),
		m:        newMetrics(),

		hashSlots:     make(chan struct{}, max(cfg.LoginConcurrent, 1)),
		checkPassword: (*users.File).Authenticate,
	}
	var err error
	if s.proxies, err = parsePrefixes(cfg.TrustedProxies); err != nil {
		return nil, &ConfigError{Var: "INSTANT_TRUSTED_PROXIES", Msg: err.Error()}
	}
	if cfg.ProxyAuth {
		if s.authProxies, err = parsePrefixes(cfg.ProxyAuthProxies); err != nil {
			return nil, &ConfigError{Var: "INSTANT_PROXY_AUTH_PROXIES", Msg: err.Error()}
		}
	}
	for _, o := range cfg.AllowedOrigins {
		n, err := parseOrigin(o)
		if err != nil {
			return nil, &ConfigError{Var: "INSTANT_ALLOWED_ORIGINS", Msg: err.Error()}
		}
		s.origins = append(s.origins, n)
	}
	if s.jwt, err = newJWTVerifier(cfg); err != nil {
		return nil, err
	}
	switch strings.ToLower(cfg.SessionCookieSame) {
	case "strict":
		s.sameSite = http.SameSiteStrictMode
	case "none":
		s.sameSite = http.SameSiteNoneMode
	default:
		s.sameSite = http.SameSiteLaxMode
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// close stops the server's background work (a JWKS fetch).
func (s *Server) close() {
	if s.jwt != nil && s.jwt.jwks != nil {
		s.jwt.jwks.close()
	}
}

// Ready reports why the server cannot answer yet, nil when it can.
func (s *Server) Ready() error {
	if s.deps.Channels() == nil {
		return errors.New("channels file not loaded")
	}
	if s.deps.Users != nil && s.deps.Users() == nil {
		return errors.New("users file not loaded")
	}
	if s.jwt != nil && s.jwt.jwks != nil && !s.jwt.jwks.tryFetch(context.Background()) {
		return errors.New("JWKS not fetched yet (INSTANT_JWT_JWKS_URL)")
	}
	return nil
}

type endpoint struct {
	route   string
	methods []string
	h       func(w http.ResponseWriter, r *http.Request) *apiError
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	add := func(path string, e endpoint) {
		h := s.instrument(e)
		mux.Handle(path+"{$}", h)
		if p := strings.TrimSuffix(path, "/"); p != path && p != "" {
			mux.Handle(p, h)
		}
	}
	add("/instant/login/", endpoint{"login", []string{http.MethodPost}, s.handleLogin})
	add("/instant/get_token/", endpoint{"get_token", []string{http.MethodGet, http.MethodPost}, s.handleGetToken})
	add("/instant/subscribe/", endpoint{"subscribe", []string{http.MethodPost}, s.handleSubscribe})
	add("/instant/refresh/", endpoint{"refresh", []string{http.MethodPost}, s.handleRefresh})
	add("/instant/logout/", endpoint{"logout", []string{http.MethodGet, http.MethodPost}, s.handleLogout})
	add("/instant/channels/", endpoint{"channels", []string{http.MethodGet}, s.handleChannels})
	mux.Handle("/healthz", s.instrument(endpoint{"healthz", []string{http.MethodGet, http.MethodHead}, func(w http.ResponseWriter, _ *http.Request) *apiError {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}}))
	mux.Handle("/readyz", s.instrument(endpoint{"readyz", []string{http.MethodGet, http.MethodHead}, func(w http.ResponseWriter, _ *http.Request) *apiError {
		if err := s.Ready(); err != nil {
			return errf(http.StatusServiceUnavailable, codeNotReady, err.Error())
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	}}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", s.instrument(endpoint{"other", nil, func(http.ResponseWriter, *http.Request) *apiError {
		return errf(http.StatusNotFound, codeNotFound, "no such endpoint")
	}}))
	return s.withStatic(s.guard(mux))
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument checks the method, runs the handler, answers its error and
// counts the request.
func (s *Server) instrument(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", zap.String("route", e.route), zap.Any("panic", v), zap.Stack("stack"))
				if sw.code == 0 {
					writeError(sw, errf(http.StatusInternalServerError, codeInternal, "internal error"))
				}
			}
			s.m.requests.WithLabelValues(e.route, strconv.Itoa(sw.code)).Inc()
		}()
		if e.methods != nil && !slices.Contains(e.methods, r.Method) {
			sw.Header().Set("Allow", strings.Join(e.methods, ", "))
			writeError(sw, errf(http.StatusMethodNotAllowed, codeMethod, fmt.Sprintf("method %s not allowed (want %s)", r.Method, strings.Join(e.methods, " or "))))
			return
		}
		if err := e.h(sw, r); err != nil {
			writeError(sw, err)
		}
	})
}

// guard applies the origin policy (CORS) and the body size cap to every
// request.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
			norm, err := parseOrigin(origin)
			if err != nil || !slices.Contains(s.origins, norm) {
				s.m.requests.WithLabelValues("cors", "403").Inc()
				writeError(w, errf(http.StatusForbidden, codeOrigin, "origin not allowed (add it to INSTANT_ALLOWED_ORIGINS)"))
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-CSRFToken, Authorization")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, errf(http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether origin names the host the request was sent to.
func sameOrigin(origin, host string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && host != "" && strings.EqualFold(rest, host)
}
