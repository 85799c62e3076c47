package tokensvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// ChannelToken is one channel of a token response.
type ChannelToken struct {
	Name  string `json:"name"`
	Level string `json:"level"`
	Token string `json:"token,omitempty"`
}

// TokenResponse is the answer of login and get_token, django-instant's
// shape. CSRFToken is empty unless the caller has a session.
type TokenResponse struct {
	CSRFToken string         `json:"csrf_token"`
	WSToken   string         `json:"ws_token"`
	Channels  []ChannelToken `json:"channels"`
}

func (s *Server) currentUsers() *users.File {
	if s.deps.Users == nil {
		return nil
	}
	return s.deps.Users()
}

func (s *Server) internal(err error, what string) *apiError {
	s.log.Error(what, zap.Error(err))
	return errf(http.StatusInternalServerError, codeInternal, "internal error")
}

// connectionToken signs a connection token for id.
func (s *Server) connectionToken(id identity) (string, error) {
	info := map[string]any{"site": s.cfg.SiteName}
	if id.user.Authenticated() {
		info["username"] = id.user.Username
		// The attributes the ACL decided with, for live revocation to check
		// this connection against a new ACL (revoke_plan.go).
		if a := (connACL{Groups: id.user.Groups, Staff: id.user.Staff, Superuser: id.user.Superuser}); len(a.Groups) > 0 || a.Staff || a.Superuser {
			info[connInfoACL] = a
		}
	}
	tok, _, err := s.deps.Signer.Connection(id.sub(), info, s.cfg.TokenTTL)
	if err != nil {
		return "", err
	}
	s.m.tokens.WithLabelValues("connection").Inc()
	return tok, nil
}

// channelTokens signs a subscription token for each channel. The caller has
// checked them against the ACL; this checks again, so that no code path can
// sign a token the ACL denies.
func (s *Server) channelTokens(id identity, reg *acl.Registry, chs []acl.Channel) ([]ChannelToken, error) {
	out := make([]ChannelToken, 0, len(chs))
	for _, c := range chs {
		if !reg.CanSubscribe(id.user, c.Name) {
			return nil, fmt.Errorf("refusing to sign a token for channel %q the ACL denies", c.Name)
		}
		tok, _, err := s.deps.Signer.Subscription(id.sub(), c.Name, s.cfg.SubscriptionTokenTTL)
		if err != nil {
			return nil, err
		}
		s.m.tokens.WithLabelValues("subscription").Inc()
		out = append(out, ChannelToken{Name: c.Name, Level: string(c.Level), Token: tok})
	}
	return out, nil
}

// tokenResponse builds the login/get_token answer for id.
func (s *Server) tokenResponse(id identity) (TokenResponse, *apiError) {
	ws, err := s.connectionToken(id)
	if err != nil {
		return TokenResponse{}, s.internal(err, "sign connection token")
	}
	reg := s.deps.Channels()
	chs, err := s.channelTokens(id, reg, reg.ChannelsFor(id.user))
	if err != nil {
		return TokenResponse{}, s.internal(err, "sign subscription tokens")
	}
	resp := TokenResponse{WSToken: ws, Channels: chs}
	if id.session != nil {
		resp.CSRFToken = s.sessions.csrfToken(*id.session)
	}
	return resp, nil
}

// readJSON reads an optional JSON body into v; it reports whether there was
// one.
func readJSON(r *http.Request, v any) (bool, *apiError) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return false, errf(http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		}
		return false, errf(http.StatusBadRequest, codeBadRequest, "could not read the request body")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, errf(http.StatusBadRequest, codeBadRequest, "invalid JSON body: "+err.Error())
	}
	return true, nil
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func (s *Server) setCookie(w http.ResponseWriter, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     s.cfg.SessionCookieName,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.cfg.SessionCookieSecure,
		SameSite: s.sameSite,
		MaxAge:   int(maxAge / time.Second),
	}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.Expires = time.Now().Add(maxAge)
	}
	http.SetCookie(w, c)
}

func (s *Server) clearCookie(w http.ResponseWriter) { s.setCookie(w, "", -1) }

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handleLogin: POST /instant/login/ {"username","password"}.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) *apiError {
	uf := s.currentUsers()
	if s.deps.Users == nil {
		return errf(http.StatusForbidden, codeLoginDisabled, "password login is not configured (INSTANT_USERS_FILE)")
	}
	if !isJSON(r) {
		return errf(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "login takes an application/json body")
	}
	var req loginRequest
	_, bodyErr := readJSON(r, &req)
	if bodyErr != nil && bodyErr.Status == http.StatusRequestEntityTooLarge {
		return bodyErr
	}
	// django-instant: a caller already logged in gets the answer whatever
	// the body, unless it names another user.
	if c, err := r.Cookie(s.cfg.SessionCookieName); err == nil && c.Value != "" {
		if ss, err := s.sessions.parse(c.Value); err == nil && (req.Username == "" || req.Username == ss.Username) {
			if u, ok := uf.Lookup(ss.Username); ok && ss.PW == s.sessions.passwordFingerprint(u.PasswordHash) {
				resp, aerr := s.tokenResponse(identity{user: u.ACL(), source: sourceSession, session: &ss})
				if aerr != nil {
					return aerr
				}
				writeJSON(w, http.StatusOK, resp)
				return nil
			}
		}
	}
	if bodyErr != nil {
		return bodyErr
	}
	addr := clientAddr(r, s.proxies, s.cfg.ProxyForwardedFor)
	if ok, wait := s.perAddr.reserve(addrKey(addr)); !ok {
		s.m.logins.WithLabelValues("rate_limited").Inc()
		s.log.Warn("login rate limited", zap.String(logging.FieldAddr, addr))
		return &apiError{Status: http.StatusTooManyRequests, Code: codeRateLimited, Message: "too many login attempts from this address; try again later", RetryAfter: wait}
	}
	if ok, wait := s.perUser.reserve(req.Username); !ok {
		s.m.logins.WithLabelValues("rate_limited").Inc()
		s.log.Warn("login rate limited", zap.String(logging.FieldUser, req.Username), zap.String(logging.FieldAddr, addr))
		return &apiError{Status: http.StatusTooManyRequests, Code: codeRateLimited, Message: "too many login attempts for this user; try again later", RetryAfter: wait}
	}
	if req.Username == "" || req.Password == "" {
		s.m.logins.WithLabelValues("invalid").Inc()
		return errf(http.StatusBadRequest, codeBadRequest, "username and password are required")
	}
	u, err := s.authenticate(uf, req.Username, req.Password)
	if errors.Is(err, errLoginBusy) {
		s.m.logins.WithLabelValues("busy").Inc()
		s.log.Warn("login refused: INSTANT_LOGIN_MAX_CONCURRENT password checks already running", zap.String(logging.FieldUser, req.Username), zap.String(logging.FieldAddr, addr))
		return &apiError{Status: http.StatusTooManyRequests, Code: codeLoginBusy, Message: "too many logins in progress; try again in a moment", RetryAfter: time.Second}
	}
	if err != nil {
		s.m.logins.WithLabelValues("invalid").Inc()
		s.log.Info("login refused", zap.String(logging.FieldUser, req.Username), zap.String(logging.FieldAddr, addr), zap.String(logging.FieldReason, "invalid credentials"))
		return errf(http.StatusUnauthorized, codeInvalidCredential, "invalid username or password")
	}
	ss, value := s.sessions.issue(u.Username, u.PasswordHash)
	resp, aerr := s.tokenResponse(identity{user: u.ACL(), source: sourceSession, session: &ss})
	if aerr != nil {
		return aerr
	}
	s.setCookie(w, value, s.cfg.SessionTTL)
	s.m.logins.WithLabelValues("ok").Inc()
	s.log.Info("login", zap.String(logging.FieldUser, u.Username), zap.String(logging.FieldAddr, addr))
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// errLoginBusy: INSTANT_LOGIN_MAX_CONCURRENT password checks are running.
var errLoginBusy = errors.New("too many password checks running")

// authenticate checks the password unless INSTANT_LOGIN_MAX_CONCURRENT
// checks are running already (errLoginBusy): bcrypt work is bounded over
// all clients, not only per address and user.
func (s *Server) authenticate(uf *users.File, username, password string) (users.User, error) {
	select {
	case s.hashSlots <- struct{}{}:
	default:
		return users.User{}, errLoginBusy
	}
	defer func() { <-s.hashSlots }()
	return s.checkPassword(uf, username, password)
}

// handleGetToken: GET|POST /instant/get_token/. The body is ignored.
func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := s.identify(w, r)
	if aerr != nil {
		return aerr
	}
	resp, aerr := s.tokenResponse(id)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type subscribeRequest struct {
	Channel  *string  `json:"channel"`
	Channels []string `json:"channels"`
}

// handleSubscribe: POST /instant/subscribe/ with {"channel"} (answer
// {"token"}, centrifuge-js getToken's shape), {"channels":[...]} or no
// body / {} (every allowed channel, as django-instant).
func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) *apiError {
	var req subscribeRequest
	if _, aerr := readJSON(r, &req); aerr != nil {
		return aerr
	}
	if req.Channel != nil && req.Channels != nil {
		return errf(http.StatusBadRequest, codeBadRequest, "give channel or channels, not both")
	}
	id, aerr := s.identify(w, r)
	if aerr != nil {
		return aerr
	}
	reg := s.deps.Channels()
	var chs []acl.Channel
	switch {
	case req.Channel != nil:
		req.Channels = []string{*req.Channel}
		fallthrough
	case req.Channels != nil:
		var denied []string
		seen := map[string]bool{}
		for _, name := range req.Channels {
			if seen[name] {
				continue
			}
			seen[name] = true
			c, ok := reg.Lookup(name)
			if !ok || !reg.CanSubscribe(id.user, name) {
				denied = append(denied, name)
				continue
			}
			chs = append(chs, c)
		}
		if len(denied) > 0 {
			s.m.denied.Add(float64(len(denied)))
			s.log.Info("subscription refused", zap.String(logging.FieldUser, id.user.Username), zap.String("source", id.source), zap.Strings(logging.FieldChannel, denied))
			return errf(http.StatusForbidden, codeForbiddenChannel, fmt.Sprintf("not allowed to subscribe to %s (unknown, inactive, or not open to this user)", quoteList(denied)))
		}
	default:
		chs = reg.ChannelsFor(id.user)
	}
	toks, err := s.channelTokens(id, reg, chs)
	if err != nil {
		return s.internal(err, "sign subscription tokens")
	}
	if req.Channel != nil {
		writeJSON(w, http.StatusOK, map[string]string{"token": toks[0].Token})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": toks})
	return nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// handleRefresh: POST /instant/refresh/ → {"token"}: a fresh connection
// token, centrifuge-js's connection getToken shape.
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := s.identify(w, r)
	if aerr != nil {
		return aerr
	}
	tok, err := s.connectionToken(id)
	if err != nil {
		return s.internal(err, "sign connection token")
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
	return nil
}

// handleLogout: GET|POST /instant/logout/, needs the session's X-CSRFToken.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := s.identify(w, r)
	if aerr != nil {
		return aerr
	}
	if id.session == nil {
		return errf(http.StatusForbidden, codeNotAuthenticated, "not logged in")
	}
	if !s.sessions.checkCSRF(*id.session, r.Header.Get("X-CSRFToken")) {
		return errf(http.StatusForbidden, codeCSRF, "missing or wrong X-CSRFToken header (send the csrf_token of login or get_token)")
	}
	s.sessions.revoke(*id.session)
	s.clearCookie(w)
	s.log.Info("logout", zap.String(logging.FieldUser, id.user.Username))
	writeJSON(w, http.StatusOK, map[string]string{"response": "ok"})
	return nil
}

// handleChannels: GET /instant/channels/ → the channels the caller may
// subscribe to, without tokens.
func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := s.identify(w, r)
	if aerr != nil {
		return aerr
	}
	chs := s.deps.Channels().ChannelsFor(id.user)
	out := make([]ChannelToken, 0, len(chs))
	for _, c := range chs {
		out = append(out, ChannelToken{Name: c.Name, Level: string(c.Level)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
	return nil
}
