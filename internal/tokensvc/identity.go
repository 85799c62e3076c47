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
// header (upstream JWT), trusted proxy headers, the session cookie, then
// anonymous when enabled. Credentials that are present but invalid are a
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
	if len(s.proxies) > 0 {
		name := strings.TrimSpace(r.Header.Get(s.cfg.ProxyUserHeader))
		if name != "" {
			if !trusted(s.proxies, peerAddr(r)) {
				s.log.Warn("proxy identity header from an untrusted address", zap.String("addr", r.RemoteAddr))
				return s.authFail(sourceProxy, "untrusted_proxy", "identity headers are only accepted from a trusted proxy")
			}
			u := acl.User{ID: name, Username: name}
			if s.cfg.ProxyGroupsHeader != "" {
				for _, g := range strings.Split(strings.Join(r.Header.Values(s.cfg.ProxyGroupsHeader), ","), ",") {
					if g = strings.TrimSpace(g); g != "" {
						u.Groups = append(u.Groups, g)
					}
				}
			}
			return identity{user: u, source: sourceProxy}, nil
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

func (s *Server) authFail(source, reason, msg string) (identity, *apiError) {
	s.m.authFailures.WithLabelValues(source, reason).Inc()
	return identity{}, errf(http.StatusUnauthorized, codeInvalidCredential, msg)
}
