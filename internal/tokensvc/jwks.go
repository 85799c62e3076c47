package tokensvc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// jwksCache holds the keys of a JWKS URL. It fetches them on first use, again
// when they are older than refresh, and when a token names an unknown kid
// (at most every minRefetch). A failed fetch keeps the keys it had.
//
// The lock is never held during a fetch: a token signed with a known key is
// verified at once, even while the identity provider is slow or down (a due
// refresh runs in the background). At most one fetch runs at a time; callers
// that need it (no keys yet, an unknown kid) wait for that one.
type jwksCache struct {
	url     string
	refresh time.Duration
	client  *http.Client
	now     func() time.Time

	ctx    context.Context // bounds the fetches; cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the fetch goroutine

	mu        sync.Mutex
	keys      map[string]any // kid → *rsa.PublicKey or *ecdsa.PublicKey
	fetched   time.Time      // last successful fetch
	attempted time.Time      // last attempt
	inflight  chan struct{}  // closed when the running fetch ends; nil when none runs
	lastErr   error          // of the last fetch
}

const minRefetch = 10 * time.Second

func newJWKSCache(url string, refresh time.Duration) *jwksCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &jwksCache{
		url: url, refresh: refresh, now: time.Now,
		client: &http.Client{Timeout: 5 * time.Second},
		ctx:    ctx, cancel: cancel,
	}
}

// close stops a running fetch and waits for it.
func (c *jwksCache) close() {
	c.cancel()
	c.wg.Wait()
}

// ready reports whether keys were fetched at least once.
func (c *jwksCache) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys != nil
}

// key returns the key with kid ("" is accepted when the set has one key).
// A known key is returned at once; an unknown kid waits for a fetch, the
// running one or a new one if none ran in the last minRefetch.
func (c *jwksCache) key(kid string) (any, error) {
	c.mu.Lock()
	k, known := c.lookup(kid)
	if known {
		if c.now().Sub(c.fetched) > c.refresh {
			c.startLocked() // in the background; this token does not wait
		}
		c.mu.Unlock()
		return k, nil
	}
	done := c.startLocked()
	c.mu.Unlock()
	if done == nil {
		return nil, fmt.Errorf("no key with kid %q in the JWKS", kid)
	}
	<-done // bounded by the client's timeout
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, known = c.lookup(kid); known {
		return k, nil
	}
	if c.keys == nil && c.lastErr != nil {
		return nil, c.lastErr
	}
	return nil, fmt.Errorf("no key with kid %q in the JWKS", kid)
}

func (c *jwksCache) lookup(kid string) (any, bool) {
	if kid == "" && len(c.keys) == 1 {
		for _, k := range c.keys {
			return k, true
		}
	}
	k, ok := c.keys[kid]
	return k, ok
}

// startLocked starts a fetch unless one runs already or one was attempted
// in the last minRefetch. It returns a channel closed when the running
// fetch ends, nil when none runs. c.mu is held.
func (c *jwksCache) startLocked() <-chan struct{} {
	if c.inflight != nil {
		return c.inflight
	}
	now := c.now()
	if !c.attempted.IsZero() && now.Sub(c.attempted) < minRefetch {
		return nil
	}
	c.attempted = now
	done := make(chan struct{})
	c.inflight = done
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		keys, err := c.get(c.ctx)
		c.mu.Lock()
		if err == nil {
			c.keys, c.fetched = keys, c.now()
		}
		c.lastErr, c.inflight = err, nil
		c.mu.Unlock()
		close(done)
	}()
	return done
}

// tryFetch fetches the keys when there are none yet and no attempt was
// made in the last minRefetch, waiting for the fetch at most until ctx is
// done; it reports whether keys are there.
func (c *jwksCache) tryFetch(ctx context.Context) bool {
	c.mu.Lock()
	var done <-chan struct{}
	if c.keys == nil {
		done = c.startLocked()
	}
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	return c.ready()
}

// fetch loads the key set now (or waits for the fetch that runs), at most
// until ctx is done.
func (c *jwksCache) fetch(ctx context.Context) error {
	c.mu.Lock()
	done := c.startLocked()
	c.mu.Unlock()
	if done == nil { // attempted within minRefetch
		return c.err()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("fetch jwks %s: %w", c.url, ctx.Err())
	}
	return c.err()
}

// err is the error of the last fetch.
func (c *jwksCache) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// get fetches and parses the key set, without the lock.
func (c *jwksCache) get(ctx context.Context) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", c.url, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks %s: %w", c.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks %s: status %d", c.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch jwks %s: %w", c.url, err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", c.url, err)
	}
	return keys, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads the RSA and EC signature keys of a JWK set; other keys
// are skipped.
func parseJWKS(b []byte) (map[string]any, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	keys := map[string]any{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
				return nil, fmt.Errorf("key %q: bad RSA key (want n of at least 2048 bits and e)", k.Kid)
			}
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				return nil, fmt.Errorf("key %q: unsupported curve %q", k.Kid, k.Crv)
			}
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			size := (curve.Params().BitSize + 7) / 8
			if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
				return nil, fmt.Errorf("key %q: bad EC key", k.Kid)
			}
			pk, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k.Kid, err)
			}
			keys[k.Kid] = pk
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no RSA or EC signature key in the JWK set")
	}
	return keys, nil
}
