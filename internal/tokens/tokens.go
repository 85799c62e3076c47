// Package tokens signs the Centrifugo connection and subscription JWTs that
// the token service hands out.
package tokens

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer signs Centrifugo tokens with one key.
type Signer struct {
	method jwt.SigningMethod
	key    any
	now    func() time.Time
}

// MinHMACSecret is the shortest HMAC secret NewHMAC accepts, in bytes: the
// 256 bits of an HS256 signature.
const MinHMACSecret = 32

// NewHMAC returns a signer using HS256 with Centrifugo's client token HMAC
// secret (client.token.hmac_secret_key), at least MinHMACSecret bytes.
func NewHMAC(secret []byte) (*Signer, error) {
	if len(secret) < MinHMACSecret {
		return nil, fmt.Errorf("tokens: HMAC secret of %d bytes, want at least %d", len(secret), MinHMACSecret)
	}
	return &Signer{method: jwt.SigningMethodHS256, key: secret, now: time.Now}, nil
}

// NewFromPEM returns a signer using an RSA (RS256) or ECDSA (ES256/384/512,
// by curve) private key in PEM form; Centrifugo must be configured with the
// matching public key.
func NewFromPEM(pemBytes []byte) (*Signer, error) {
	if k, err := jwt.ParseRSAPrivateKeyFromPEM(pemBytes); err == nil {
		return &Signer{method: jwt.SigningMethodRS256, key: k, now: time.Now}, nil
	}
	k, err := jwt.ParseECPrivateKeyFromPEM(pemBytes)
	if err != nil {
		return nil, errors.New("tokens: private key is neither an RSA nor an ECDSA PEM key")
	}
	var m jwt.SigningMethod
	switch k.Curve.Params().BitSize {
	case 256:
		m = jwt.SigningMethodES256
	case 384:
		m = jwt.SigningMethodES384
	case 521:
		m = jwt.SigningMethodES512
	default:
		return nil, fmt.Errorf("tokens: unsupported ECDSA curve %s", k.Curve.Params().Name)
	}
	return &Signer{method: m, key: k, now: time.Now}, nil
}

// Algorithm is the JWT alg the signer uses.
func (s *Signer) Algorithm() string { return s.method.Alg() }

// SetClock replaces the clock (tests).
func (s *Signer) SetClock(now func() time.Time) { s.now = now }

// ConnectionClaims are the claims of a connection token.
type ConnectionClaims struct {
	Info map[string]any `json:"info,omitempty"`
	jwt.RegisteredClaims
}

// SubscriptionClaims are the claims of a subscription token.
type SubscriptionClaims struct {
	Channel string `json:"channel"`
	jwt.RegisteredClaims
}

// Connection signs a connection token for user sub ("" is anonymous) valid
// for ttl, with optional connection info.
func (s *Signer) Connection(sub string, info map[string]any, ttl time.Duration) (string, time.Time, error) {
	now := s.now().Truncate(time.Second)
	exp := now.Add(ttl)
	c := ConnectionClaims{Info: info, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}}
	tok, err := jwt.NewWithClaims(s.method, c).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign connection token: %w", err)
	}
	return tok, exp, nil
}

// Subscription signs a subscription token for user sub and channel valid for ttl.
func (s *Signer) Subscription(sub, channel string, ttl time.Duration) (string, time.Time, error) {
	now := s.now().Truncate(time.Second)
	exp := now.Add(ttl)
	c := SubscriptionClaims{Channel: channel, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}}
	tok, err := jwt.NewWithClaims(s.method, c).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign subscription token for %q: %w", channel, err)
	}
	return tok, exp, nil
}
