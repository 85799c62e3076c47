package tokensvc

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer serves a JWK set that the test can change or break.
type jwksServer struct {
	mu      sync.Mutex
	body    []byte
	fail    bool
	fetches atomic.Int32
}

func (j *jwksServer) set(t *testing.T, keys map[string]*rsa.PublicKey) {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		set.Keys = append(set.Keys, map[string]string{
			"kty": "RSA", "kid": kid,
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	b, _ := json.Marshal(set)
	j.mu.Lock()
	j.body, j.fail = b, false
	j.mu.Unlock()
}

func (j *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	j.fetches.Add(1)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(j.body)
}

func TestJWKSCache(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	js := &jwksServer{}
	js.set(t, map[string]*rsa.PublicKey{"k1": &k1.PublicKey})
	srv := httptest.NewServer(js)
	t.Cleanup(srv.Close)

	now := time.Unix(1_800_000_000, 0)
	c := newJWKSCache(srv.URL, time.Minute)
	c.now = func() time.Time { return now }

	if k, err := c.key("k1"); err != nil || k.(*rsa.PublicKey).N.Cmp(k1.N) != 0 {
		t.Fatalf("key k1: %v %v", k, err)
	}
	// A single-key set also answers tokens without kid.
	if _, err := c.key(""); err != nil {
		t.Errorf("no kid with one key: %v", err)
	}
	// Unknown kids do not make a fetch per token.
	for range 50 {
		if _, err := c.key("k2"); err == nil {
			t.Fatal("unknown kid k2: want error")
		}
	}
	if n := js.fetches.Load(); n != 1 {
		t.Errorf("%d fetches within %v, want 1", n, minRefetch)
	}
	// Rotation: k2 appears; after minRefetch an unknown kid fetches again.
	js.set(t, map[string]*rsa.PublicKey{"k1": &k1.PublicKey, "k2": &k2.PublicKey})
	now = now.Add(minRefetch)
	if _, err := c.key("k2"); err != nil {
		t.Errorf("key k2 after rotation: %v", err)
	}
	// The JWKS goes down: the cached keys stay in use past refresh.
	js.mu.Lock()
	js.fail = true
	js.mu.Unlock()
	now = now.Add(2 * time.Minute)
	if _, err := c.key("k1"); err != nil {
		t.Errorf("key k1 while the JWKS is down: %v", err)
	}
	before := js.fetches.Load()
	if before < 3 {
		t.Errorf("no fetch after the refresh interval (fetches %d)", before)
	}
}

func TestJWKSNotReady(t *testing.T) {
	js := &jwksServer{fail: true}
	srv := httptest.NewServer(js)
	t.Cleanup(srv.Close)
	now := time.Unix(1_800_000_000, 0)
	c := newJWKSCache(srv.URL, time.Minute)
	c.now = func() time.Time { return now }
	if c.tryFetch(t.Context()) {
		t.Fatal("ready with the JWKS down")
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	js.set(t, map[string]*rsa.PublicKey{"k": &k.PublicKey})
	if c.tryFetch(t.Context()) {
		t.Error("fetched again within minRefetch")
	}
	now = now.Add(minRefetch)
	if !c.tryFetch(t.Context()) {
		t.Error("not ready after the JWKS came back")
	}
}

func TestParseJWKSRejects(t *testing.T) {
	for _, body := range []string{
		`not json`,
		`{"keys":[]}`,
		`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]}`,
	} {
		if _, err := parseJWKS([]byte(body)); err == nil {
			t.Errorf("parseJWKS(%s): want error", body)
		}
	}
}
