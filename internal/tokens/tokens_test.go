package tokens_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instant-go/instant/internal/tokens"
)

func TestSigners(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER := x509.MarshalPKCS1PrivateKey(rsaKey)
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	hmacSigner, err := tokens.NewHMAC([]byte("centrifugo-secret-of-32-bytes-ok"))
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := tokens.NewFromPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: rsaDER}))
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := tokens.NewFromPEM(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name   string
		s      *tokens.Signer
		alg    string
		verify any
	}{
		{"hmac", hmacSigner, "HS256", []byte("centrifugo-secret-of-32-bytes-ok")},
		{"rsa", rsaSigner, "RS256", &rsaKey.PublicKey},
		{"ecdsa p384", ecSigner, "ES384", &ecKey.PublicKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.s.Algorithm() != tc.alg {
				t.Errorf("algorithm %s, want %s", tc.s.Algorithm(), tc.alg)
			}
			tc.s.SetClock(func() time.Time { return now })
			parse := func(tok string, c jwt.Claims) {
				t.Helper()
				_, err := jwt.NewParser(jwt.WithValidMethods([]string{tc.alg}), jwt.WithTimeFunc(func() time.Time { return now })).
					ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return tc.verify, nil })
				if err != nil {
					t.Fatal(err)
				}
			}
			tok, exp, err := tc.s.Connection("42", map[string]any{"username": "alice", "site": "s"}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var cc tokens.ConnectionClaims
			parse(tok, &cc)
			if cc.Subject != "42" || cc.Info["username"] != "alice" || !cc.ExpiresAt.Equal(exp) || !exp.Equal(now.Add(time.Minute)) || !cc.IssuedAt.Equal(now) {
				t.Errorf("connection claims %+v exp %v", cc, exp)
			}
			tok, _, err = tc.s.Subscription("42", "$users", 2*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var sc tokens.SubscriptionClaims
			parse(tok, &sc)
			if sc.Subject != "42" || sc.Channel != "$users" || !sc.ExpiresAt.Equal(now.Add(2*time.Minute)) {
				t.Errorf("subscription claims %+v", sc)
			}
		})
	}
	for _, short := range []string{"", "centrifugo-secret", strings.Repeat("k", tokens.MinHMACSecret-1)} {
		if _, err := tokens.NewHMAC([]byte(short)); err == nil {
			t.Errorf("HMAC secret of %d bytes: want error", len(short))
		}
	}
	if _, err := tokens.NewFromPEM([]byte("not a key")); err == nil {
		t.Error("garbage PEM: want error")
	}
}
