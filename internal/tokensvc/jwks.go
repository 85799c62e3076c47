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
type jwksCache struct {
	url     string
	refresh time.Duration
	client  *http.Client
	now     func() time.Time

	mu        sync.Mutex
	keys      map[string]any // kid → *rsa.PublicKey or *ecdsa.PublicKey
	fetched   time.Time      // last successful fetch
	attempted time.Time      // last attempt
}

const minRefetch = 10 * time.Second

func newJWKSCache(url string, refresh time.Duration) *jwksCache {
	return &jwksCache{url: url, refresh: refresh, client: &http.Client{Timeout: 5 * time.Second}, now: time.Now}
}

// ready reports whether keys were fetched at least once.
func (c *jwksCache) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys != nil
}

// key returns the key with kid ("" is accepted when the set has one key).
func (c *jwksCache) key(kid string) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	_, known := c.lookup(kid)
	need := c.keys == nil || now.Sub(c.fetched) > c.refresh || !known
	if need && (c.attempted.IsZero() || now.Sub(c.attempted) >= minRefetch) {
		c.attempted = now
		if err := c.fetchLocked(context.Background()); err != nil && c.keys == nil {
			return nil, err
		}
	}
	k, ok := c.lookup(kid)
	if !ok {
		return nil, fmt.Errorf("no key with kid %q in the JWKS", kid)
	}
	return k, nil
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

// tryFetch fetches the keys when there are none yet and no attempt was
// made in the last minRefetch; it reports whether keys are there.
func (c *jwksCache) tryFetch(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil && (c.attempted.IsZero() || c.now().Sub(c.attempted) >= minRefetch) {
		c.attempted = c.now()
		_ = c.fetchLocked(ctx) // the caller reports not ready
	}
	return c.keys != nil
}

// fetch loads the key set now.
func (c *jwksCache) fetch(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempted = c.now()
	return c.fetchLocked(ctx)
}

func (c *jwksCache) fetchLocked(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", c.url, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch jwks %s: %w", c.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch jwks %s: status %d", c.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("fetch jwks %s: %w", c.url, err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", c.url, err)
	}
	c.keys, c.fetched = keys, c.now()
	return nil
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
