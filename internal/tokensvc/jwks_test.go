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
	t.Cleanup(c.close)

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
	c.settle()
	if _, err := c.key("k1"); err != nil {
		t.Errorf("key k1 after a failed refresh: %v", err)
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
	t.Cleanup(c.close)
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

// settle waits for the running fetch, if any.
func (c *jwksCache) settle() {
	c.mu.Lock()
	done := c.inflight
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// hangingJWKS serves a JWK set until hang is called; from then on each
// request reports on started and waits until release is closed (or the
// client gives up), then fails with 500.
type hangingJWKS struct {
	jwksServer
	hanging  atomic.Bool
	started  chan struct{}
	release  chan struct{}
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func (h *hangingJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hanging.Load() {
		h.jwksServer.ServeHTTP(w, r)
		return
	}
	h.fetches.Add(1)
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for m := h.maxIn.Load(); n > m && !h.maxIn.CompareAndSwap(m, n); m = h.maxIn.Load() {
	}
	h.started <- struct{}{}
	select {
	case <-h.release:
	case <-r.Context().Done():
	}
	http.Error(w, "down", http.StatusInternalServerError)
}

// TestHardening8JWKSRefetchDoesNotBlockKnownKeys (issue 12, point 8): while
// the identity provider hangs, tokens with known keys are verified at once,
// even when the set is due for a refresh and while unknown kids wait for a
// refetch; only one refetch runs at a time; a failed refetch keeps the keys.
func TestHardening8JWKSRefetchDoesNotBlockKnownKeys(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	js := &hangingJWKS{started: make(chan struct{}, 16), release: make(chan struct{})}
	js.set(t, map[string]*rsa.PublicKey{"k1": &k1.PublicKey})
	srv := httptest.NewServer(js)
	released := false
	t.Cleanup(func() {
		if !released {
			close(js.release)
		}
		srv.Close()
	})

	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := newJWKSCache(srv.URL, time.Minute)
	c.now = clock
	c.client = &http.Client{} // no timeout: a hang lasts until released
	t.Cleanup(c.close)
	if err := c.fetch(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The identity provider hangs; the keys are due for a refresh.
	before := js.fetches.Load()
	js.hanging.Store(true)
	advance(2 * time.Minute)

	// keyNow asks for kid and fails the test if the answer waits for the
	// hanging fetch (which only ends when the test releases it).
	keyNow := func(kid string) error {
		t.Helper()
		got := make(chan error, 1)
		go func() { _, err := c.key(kid); got <- err }()
		select {
		case err := <-got:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("key(%q) waits for the hanging JWKS fetch", kid)
			return nil
		}
	}
	if err := keyNow("k1"); err != nil { // starts the refresh in the background
		t.Fatalf("known key while a refresh is due: %v", err)
	}
	<-js.started // the refresh is now hanging

	// Unknown kids wait for the one running fetch; known keys do not.
	unknown := make(chan error, 5)
	for range 5 {
		go func() { _, err := c.key("rotated"); unknown <- err }()
	}
	advance(minRefetch) // a new fetch would be allowed, but one runs
	for range 20 {
		if err := keyNow("k1"); err != nil {
			t.Fatalf("known key during a hanging fetch: %v", err)
		}
	}
	select {
	case err := <-unknown:
		t.Fatalf("an unknown kid did not wait for the running fetch: %v", err)
	default:
	}
	if n := js.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches started while one hangs, want 1", n)
	}

	// The fetch fails: the waiting callers are refused, the keys are kept.
	close(js.release)
	released = true
	for range 5 {
		if err := <-unknown; err == nil {
			t.Error("unknown kid accepted after a failed fetch")
		}
	}
	c.settle()
	if err := keyNow("k1"); err != nil {
		t.Errorf("known key after a failed refetch: %v", err)
	}
	if m := js.maxIn.Load(); m != 1 {
		t.Errorf("%d fetches ran at once, want at most 1", m)
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
