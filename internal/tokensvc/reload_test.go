package tokensvc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestChannelsFileReload: a changed channels file changes the channels
// handed out without a restart; a broken one keeps the previous version.
func TestChannelsFileReload(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := startLogged(t, nil, zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)), func(c *tokensvc.Config) { c.Anonymous = true })
	c := h.client()
	get := func() []string { return names(c.tokens(c.do("POST", "/instant/get_token/", nil)).Channels) }
	if got := get(); !slices.Equal(got, []string{"public"}) {
		t.Fatalf("channels %v", got)
	}
	write := func(s string) {
		if err := os.WriteFile(h.cfg.ChannelsFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(channelsYAML + "  - name: news\n    level: public\n")
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := get(); !slices.Equal(got, []string{"news", "public"}) {
			return fmt.Errorf("channels %v, want [news public]", got)
		}
		return nil
	})
	write("channels:\n  - name: news\n    level: nonsense\n")
	testenv.Eventually(t, 5*time.Second, func() error {
		if logs.FilterMessageSnippet("reload failed").Len() == 0 {
			return fmt.Errorf("no failed reload logged")
		}
		return nil
	})
	if got := get(); !slices.Equal(got, []string{"news", "public"}) {
		t.Errorf("after a broken file: channels %v, want the previous [news public]", got)
	}
	if r := c.do("GET", "/readyz", nil); r.status != http.StatusOK {
		t.Errorf("readyz with a broken new file (old one kept): %s", r)
	}
}

// TestPrivateKeySigning: with INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE the
// tokens are signed with that ECDSA key.
func TestPrivateKeySigning(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "centrifugo.key")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	h := start(t, nil, func(c *tokensvc.Config) { c.CentrifugoHMACKey = ""; c.CentrifugoPrivateKeyFile = p })
	tr := h.client().login("alice", alicePW)
	for _, tok := range []string{tr.WSToken, tr.Channels[0].Token} {
		claims := jwt.MapClaims{}
		if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"})).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &k.PublicKey, nil }); err != nil {
			t.Errorf("token does not verify with the public key: %v", err)
		}
		if claims["sub"] != "42" {
			t.Errorf("sub %v, want 42", claims["sub"])
		}
	}
}
