package tokensvc

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instant-go/instant/pkg/acl"
)

// jwtVerifier verifies upstream JWTs (the application's own tokens) and
// turns their claims into a user. The accepted algorithms come from the
// configuration only; the key handed to the library always has the type of
// the configured key, so a token cannot choose another verification.
type jwtVerifier struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	algs    []string
	claims  claimNames
	jwks    *jwksCache // nil unless a JWKS URL is configured
}

type claimNames struct{ id, username, groups, staff, superuser string }

// newJWTVerifier builds the verifier from the configuration, nil when no
// upstream JWT key is configured.
func newJWTVerifier(cfg Config) (*jwtVerifier, error) {
	v := &jwtVerifier{claims: claimNames{
		id: cfg.JWTClaimUserID, username: cfg.JWTClaimUsername, groups: cfg.JWTClaimGroups,
		staff: cfg.JWTClaimStaff, superuser: cfg.JWTClaimSuper,
	}}
	var defaults []string
	switch {
	case cfg.JWTHMACKey != "":
		key := []byte(cfg.JWTHMACKey)
		v.keyFunc = func(t *jwt.Token) (any, error) {
			if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
				return nil, errors.New("not an HMAC algorithm")
			}
			return key, nil
		}
		defaults = []string{"HS256"}
	case cfg.JWTPublicKeyFile != "":
		pemBytes, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, &ConfigError{Var: "INSTANT_JWT_PUBLIC_KEY_FILE", Msg: err.Error()}
		}
		key, err := parsePublicKeyPEM(pemBytes)
		if err != nil {
			return nil, &ConfigError{Var: "INSTANT_JWT_PUBLIC_KEY_FILE", Msg: err.Error()}
		}
		v.keyFunc = func(t *jwt.Token) (any, error) { return keyForMethod(t.Method, key) }
		switch k := key.(type) {
		case *rsa.PublicKey:
			defaults = []string{"RS256"}
		case *ecdsa.PublicKey:
			defaults = []string{map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[k.Curve.Params().BitSize]}
		}
	case cfg.JWTJWKSURL != "":
		v.jwks = newJWKSCache(cfg.JWTJWKSURL, cfg.JWTJWKSRefresh)
		v.keyFunc = func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			key, err := v.jwks.key(kid)
			if err != nil {
				return nil, err
			}
			return keyForMethod(t.Method, key)
		}
		defaults = []string{"RS256", "ES256"}
	default:
		return nil, nil
	}
	v.algs = cfg.JWTAlgorithms
	if len(v.algs) == 0 {
		v.algs = defaults
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.JWTLeeway),
		jwt.WithJSONNumber(),
	}
	if cfg.JWTIssuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.JWTIssuer))
	}
	if cfg.JWTAudience != "" {
		opts = append(opts, jwt.WithAudience(cfg.JWTAudience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// keyForMethod returns key if it is of the type method verifies with.
func keyForMethod(m jwt.SigningMethod, key any) (any, error) {
	switch m.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if k, ok := key.(*rsa.PublicKey); ok {
			return k, nil
		}
	case *jwt.SigningMethodECDSA:
		if k, ok := key.(*ecdsa.PublicKey); ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("key does not fit algorithm %s", m.Alg())
}

func parsePublicKeyPEM(b []byte) (any, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(b); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(b); err == nil {
		return k, nil
	}
	return nil, errors.New("not an RSA or ECDSA public key in PEM form")
}

// verify checks an upstream token and returns its user. Its errors are
// for logs; the client only learns that the token is invalid.
func (v *jwtVerifier) verify(raw string) (acl.User, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keyFunc); err != nil {
		return acl.User{}, err
	}
	u := acl.User{
		ID:       claimString(claims[v.claims.id]),
		Username: claimString(claims[v.claims.username]),
	}
	if u.ID == "" {
		u.ID = u.Username
	}
	if u.Username == "" {
		u.Username = u.ID
	}
	if u.ID == "" {
		return acl.User{}, fmt.Errorf("token has neither a %q nor a %q claim", v.claims.id, v.claims.username)
	}
	if v.claims.groups != "" {
		g, err := claimStrings(claims[v.claims.groups])
		if err != nil {
			return acl.User{}, fmt.Errorf("claim %q: %w", v.claims.groups, err)
		}
		u.Groups = g
	}
	var err error
	if u.Staff, err = claimBool(claims, v.claims.staff); err != nil {
		return acl.User{}, err
	}
	if u.Superuser, err = claimBool(claims, v.claims.superuser); err != nil {
		return acl.User{}, err
	}
	return u, nil
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// claimStrings reads a list of strings, or one string of space- or
// comma-separated names.
func claimStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.FieldsFunc(x, func(r rune) bool { return r == ',' || r == ' ' }), nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("want a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("want a list of strings")
}

func claimBool(claims jwt.MapClaims, name string) (bool, error) {
	if name == "" {
		return false, nil
	}
	switch x := claims[name].(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	}
	return false, fmt.Errorf("claim %q: want true or false", name)
}
