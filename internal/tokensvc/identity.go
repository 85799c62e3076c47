package tokensvc

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/pkg/acl"
)

// The identity sources, as named in logs and metrics.
const (
	sourceJWT       = "jwt"
	sourceProxy     = "proxy"
	sourceSession   = "session"
	sourceAnonymous = "anonymous"
)

// identity is who the caller is and how we know.
type identity struct {
	user    acl.User
	source  string
	session *session // for sourceSession
}

// sub is the tokens' sub: the stable user id, "" for anonymous.
func (id identity) sub() string {
	if !id.user.Authenticated() {
		return ""
	}
	if id.user.ID != "" {
		return id.user.ID
	}
	return id.user.Username
}

// identify finds out who the caller is, in this order: an Authorization
// header (upstream JWT), an authenticating proxy's user header, the session
// cookie, then anonymous when enabled. Credentials that are present but invalid are a
// 401, never anonymous.
func (s *Server) identify(w http.ResponseWriter, r *http.Request) (identity, *apiError) {
	if h := r.Header.Get("Authorization"); h != "" {
		if s.jwt == nil {
			return s.authFail(sourceJWT, "no_jwt_source", "an Authorization header was given but no upstream JWT source is configured")
		}
		scheme, raw, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
			return s.authFail(sourceJWT, "not_bearer", "the Authorization header must be: Bearer <JWT>")
		}
		u, err := s.jwt.verify(strings.TrimSpace(raw))
		if err != nil {
			s.log.Info("upstream JWT refused", zap.String(logging.FieldReason, err.Error()))
			return s.authFail(sourceJWT, "invalid_token", "invalid or expired token")
		}
		return identity{user: u, source: sourceJWT}, nil
	}
	if len(s.authProxies) > 0 {
		if id, aerr, ok := s.proxyIdentity(r); ok {
			return id, aerr
		}
	}
	if c, err := r.Cookie(s.cfg.SessionCookieName); err == nil && c.Value != "" {
		ss, err := s.sessions.parse(c.Value)
		if err != nil {
			s.clearCookie(w)
			return s.authFail(sourceSession, "invalid_session", "invalid or expired session; log in again")
		}
		u, ok := s.currentUsers().Lookup(ss.Username)
		if !ok || ss.PW != s.sessions.passwordFingerprint(u.PasswordHash) {
			s.clearCookie(w)
			return s.authFail(sourceSession, "user_changed", "session ended (the user was removed or changed password); log in again")
		}
		return identity{user: u.ACL(), source: sourceSession, session: &ss}, nil
	}
	if s.cfg.Anonymous {
		return identity{user: acl.Anonymous(), source: sourceAnonymous}, nil
	}
	return identity{}, errf(http.StatusForbidden, codeNotAuthenticated, "not logged in")
}

// proxyIdentity reads the user an authenticating proxy names in its
// header; ok is false when the request has no such header. The header must
// come from one of INSTANT_PROXY_AUTH_PROXIES and hold exactly one name:
// two header lines or a comma-separated list mean a proxy that appends to
// what the client sent instead of replacing it, and are refused.
func (s *Server) proxyIdentity(r *http.Request) (id identity, aerr *apiError, ok bool) {
	values := r.Header.Values(s.cfg.ProxyUserHeader)
	if len(values) == 0 || len(values) == 1 && strings.TrimSpace(values[0]) == "" {
		return identity{}, nil, false
	}
	if !trusted(s.authProxies, peerAddr(r)) {
		s.log.Warn("proxy identity header from an address not in INSTANT_PROXY_AUTH_PROXIES", zap.String(logging.FieldAddr, r.RemoteAddr))
		id, aerr = s.authFail(sourceProxy, "untrusted_proxy", "identity headers are only accepted from an authenticating proxy (INSTANT_PROXY_AUTH_PROXIES)")
		return id, aerr, true
	}
	name := strings.TrimSpace(values[0])
	if len(values) > 1 || strings.Contains(name, ",") {
		s.m.authFailures.WithLabelValues(sourceProxy, "ambiguous_user").Inc()
		s.log.Warn("proxy identity header with more than one user; the proxy must replace the header, not append to it",
			zap.String("header", s.cfg.ProxyUserHeader), zap.Int("lines", len(values)))
		return identity{}, errf(http.StatusBadRequest, codeAmbiguousUser, "more than one "+s.cfg.ProxyUserHeader+" value"), true
	}
	u := acl.User{ID: name, Username: name}
	if s.cfg.ProxyGroupsHeader != "" {
		for _, g := range strings.Split(strings.Join(r.Header.Values(s.cfg.ProxyGroupsHeader), ","), ",") {
			if g = strings.TrimSpace(g); g != "" {
				u.Groups = append(u.Groups, g)
			}
		}
	}
	return identity{user: u, source: sourceProxy}, nil, true
}

func (s *Server) authFail(source, reason, msg string) (identity, *apiError) {
	s.m.authFailures.WithLabelValues(source, reason).Inc()
	return identity{}, errf(http.StatusUnauthorized, codeInvalidCredential, msg)
}
