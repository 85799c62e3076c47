package tokensvc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// session is the content of the signed session cookie. The server keeps no
// session store: the cookie is the session, checked against the users file
// on every request.
type session struct {
	ID       string `json:"sid"`
	Username string `json:"u"`
	// PW fingerprints the user's password hash, so that changing the
	// password ends the user's sessions.
	PW  string `json:"pw"`
	Exp int64  `json:"exp"`
}

var errBadSession = errors.New("invalid or expired session")

// sessions signs and checks session cookies and derives their CSRF tokens.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	revoked map[string]int64 // session id → its exp; logged out
}

func newSessions(key []byte, ttl time.Duration) *sessions {
	return &sessions{key: key, ttl: ttl, now: time.Now, revoked: map[string]int64{}}
}

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) mac(purpose, data string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(data))
	return m.Sum(nil)
}

// passwordFingerprint identifies a password hash without revealing it.
func (s *sessions) passwordFingerprint(hash string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("pw", hash)[:12])
}

// issue returns a new session for username and its cookie value.
func (s *sessions) issue(username, passwordHash string) (session, string) {
	ss := session{
		ID:       randomID(),
		Username: username,
		PW:       s.passwordFingerprint(passwordHash),
		Exp:      s.now().Add(s.ttl).Unix(),
	}
	b, _ := json.Marshal(ss)
	payload := base64.RawURLEncoding.EncodeToString(b)
	return ss, payload + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", payload))
}

// parse checks a cookie value's signature, expiry and revocation.
func (s *sessions) parse(value string) (session, error) {
	payload, sig, ok := strings.Cut(value, ".")
	if !ok {
		return session{}, errBadSession
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", payload)) {
		return session{}, errBadSession
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return session{}, errBadSession
	}
	var ss session
	if err := json.Unmarshal(b, &ss); err != nil || ss.ID == "" || ss.Username == "" {
		return session{}, errBadSession
	}
	if s.now().Unix() >= ss.Exp {
		return session{}, errBadSession
	}
	s.mu.Lock()
	_, revoked := s.revoked[ss.ID]
	s.mu.Unlock()
	if revoked {
		return session{}, errBadSession
	}
	return ss, nil
}

// csrfToken is the CSRF token of a session.
func (s *sessions) csrfToken(ss session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", ss.ID))
}

// checkCSRF compares a presented CSRF token in constant time.
func (s *sessions) checkCSRF(ss session, presented string) bool {
	return hmac.Equal([]byte(presented), []byte(s.csrfToken(ss)))
}

// revoke ends a session before its expiry (logout), in this process.
func (s *sessions) revoke(ss session) {
	now := s.now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, exp := range s.revoked {
		if exp <= now {
			delete(s.revoked, id)
		}
	}
	s.revoked[ss.ID] = ss.Exp
}
