package tokensvc

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/instant-go/instant/internal/confdefaults"
)

// Config is the token service's configuration, read from INSTANT_*
// environment variables. The names are spelled out in full (and read with
// no envconfig prefix) so that envconfig never falls back to an unprefixed
// variable such as ANONYMOUS.
type Config struct {
	HTTPAddr string `envconfig:"INSTANT_TOKENSVC_HTTP_ADDR" default:":8090" desc:"listen address of the token service's HTTP server"`
	SiteName string `envconfig:"INSTANT_SITE_NAME" default:"site" desc:"site name, put in the connection token's info (shared with the bridge)"`

	Demo      bool   `envconfig:"INSTANT_DEMO" default:"false" desc:"serve the live demo page at / (development: log in, watch the messages of your channels arrive)"`
	DemoWSURL string `envconfig:"INSTANT_DEMO_WS_URL" default:"ws://127.0.0.1:8000/connection/websocket" desc:"Centrifugo websocket URL the demo page connects to"`

	ChannelsFile string `envconfig:"INSTANT_CHANNELS_FILE" desc:"channels file (YAML or JSON), reloaded on change and SIGHUP (shared with the bridge); required"`
	UsersFile    string `envconfig:"INSTANT_USERS_FILE" desc:"users file (YAML or JSON) for password logins, reloaded on change and SIGHUP; empty disables /instant/login/"`
	Anonymous    bool   `envconfig:"INSTANT_ANONYMOUS" default:"false" desc:"give callers without credentials an anonymous token and the public channels"`

	CentrifugoHMACKey        string `envconfig:"INSTANT_CENTRIFUGO_HMAC_KEY" desc:"secret: Centrifugo's client.token.hmac_secret_key, signs the tokens (HS256)"`
	CentrifugoPrivateKeyFile string `envconfig:"INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE" desc:"RSA or ECDSA private key (PEM) signing the tokens instead of the HMAC key; Centrifugo gets the public key"`

	TokenTTL             time.Duration `envconfig:"INSTANT_TOKEN_TTL" default:"10m" desc:"lifetime of connection tokens"`
	SubscriptionTokenTTL time.Duration `envconfig:"INSTANT_SUBSCRIPTION_TOKEN_TTL" default:"10m" desc:"lifetime of subscription tokens"`

	SessionKey          string        `envconfig:"INSTANT_SESSION_KEY" desc:"secret (at least 32 bytes) signing session cookies; unset: a random key per process (sessions end at restart, not shared by replicas)"`
	SessionTTL          time.Duration `envconfig:"INSTANT_SESSION_TTL" default:"12h" desc:"lifetime of a login session"`
	SessionCookieName   string        `envconfig:"INSTANT_SESSION_COOKIE_NAME" default:"instant_session" desc:"name of the session cookie"`
	SessionCookieSecure bool          `envconfig:"INSTANT_SESSION_COOKIE_SECURE" default:"true" desc:"mark the session cookie Secure (HTTPS only); false for plain-HTTP development"`
	SessionCookieSame   string        `envconfig:"INSTANT_SESSION_COOKIE_SAMESITE" default:"lax" desc:"SameSite of the session cookie: lax, strict or none (none needs Secure; for a frontend on another site)"`

	AllowedOrigins []string `envconfig:"INSTANT_ALLOWED_ORIGINS" desc:"comma-separated origins (https://app.example.com) allowed to call with CORS and credentials; same-origin calls need none"`
	MaxBodyBytes   int64    `envconfig:"INSTANT_MAX_BODY_BYTES" default:"16384" desc:"largest accepted request body, in bytes"`

	LoginRatePerUser int `envconfig:"INSTANT_LOGIN_RATE_PER_USER" default:"10" desc:"login attempts allowed per username per minute"`
	LoginRatePerAddr int `envconfig:"INSTANT_LOGIN_RATE_PER_ADDR" default:"60" desc:"login attempts allowed per client address per minute"`

	JWTHMACKey       string        `envconfig:"INSTANT_JWT_HMAC_KEY" desc:"secret: HMAC key verifying upstream JWTs (Authorization: Bearer)"`
	JWTPublicKeyFile string        `envconfig:"INSTANT_JWT_PUBLIC_KEY_FILE" desc:"RSA or ECDSA public key (PEM) verifying upstream JWTs"`
	JWTJWKSURL       string        `envconfig:"INSTANT_JWT_JWKS_URL" desc:"JWKS URL whose keys verify upstream JWTs (cached)"`
	JWTJWKSRefresh   time.Duration `envconfig:"INSTANT_JWT_JWKS_REFRESH" default:"5m" desc:"how often the JWKS is fetched again (also on an unknown kid, at most every 10s)"`
	JWTAlgorithms    []string      `envconfig:"INSTANT_JWT_ALGORITHMS" desc:"comma-separated accepted upstream JWT algorithms; default HS256 (HMAC key), RS256 or ES256/384/512 (PEM key by type), RS256,ES256 (JWKS)"`
	JWTIssuer        string        `envconfig:"INSTANT_JWT_ISSUER" desc:"required iss of upstream JWTs; empty: not checked"`
	JWTAudience      string        `envconfig:"INSTANT_JWT_AUDIENCE" desc:"required aud of upstream JWTs; empty: not checked"`
	JWTLeeway        time.Duration `envconfig:"INSTANT_JWT_LEEWAY" default:"30s" desc:"clock skew allowed on upstream JWTs' exp, nbf and iat"`
	JWTClaimUserID   string        `envconfig:"INSTANT_JWT_CLAIM_USER_ID" default:"sub" desc:"upstream JWT claim holding the stable user id"`
	JWTClaimUsername string        `envconfig:"INSTANT_JWT_CLAIM_USERNAME" default:"preferred_username" desc:"upstream JWT claim holding the username"`
	JWTClaimGroups   string        `envconfig:"INSTANT_JWT_CLAIM_GROUPS" default:"groups" desc:"upstream JWT claim holding the groups (list of strings)"`
	JWTClaimStaff    string        `envconfig:"INSTANT_JWT_CLAIM_STAFF" default:"staff" desc:"upstream JWT claim holding the staff flag (boolean)"`
	JWTClaimSuper    string        `envconfig:"INSTANT_JWT_CLAIM_SUPERUSER" default:"superuser" desc:"upstream JWT claim holding the superuser flag (boolean)"`

	TrustedProxies    []string `envconfig:"INSTANT_TRUSTED_PROXIES" desc:"comma-separated addresses or CIDRs of auth proxies whose user headers are trusted; empty disables proxy headers"`
	ProxyUserHeader   string   `envconfig:"INSTANT_PROXY_USER_HEADER" default:"X-Forwarded-User" desc:"header a trusted proxy puts the username in"`
	ProxyGroupsHeader string   `envconfig:"INSTANT_PROXY_GROUPS_HEADER" default:"X-Forwarded-Groups" desc:"header a trusted proxy puts the comma-separated groups in"`
	ProxyForwardedFor string   `envconfig:"INSTANT_PROXY_FORWARDED_FOR_HEADER" default:"X-Forwarded-For" desc:"header a trusted proxy puts the client address in (for rate limits)"`

	LogLevel  string `envconfig:"INSTANT_LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
	LogFormat string `envconfig:"INSTANT_LOG_FORMAT" default:"json" desc:"log format: json or console"`
}

// LoadConfig reads the configuration from the environment and validates it.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// DefaultConfig is the configuration with every default of the struct
// tags applied and nothing read from the environment (tests, embedding).
func DefaultConfig() Config {
	var c Config
	if err := confdefaults.Apply(&c); err != nil {
		panic(err) // the tags are constants: a bad one is a programming error
	}
	return c
}

// Usage writes every variable with its default and meaning.
func Usage(w io.Writer) error {
	var c Config
	tw := tabwriter.NewWriter(w, 1, 0, 4, ' ', 0)
	if err := envconfig.Usagef("", &c, tw, envconfig.DefaultTableFormat); err != nil {
		return err
	}
	return tw.Flush()
}

// ConfigError is a bad configuration value: which variable, what is wrong,
// how to fix it. It never quotes a secret.
type ConfigError struct {
	Var string
	Msg string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Msg }

// Validate checks the configuration; the error names the variable.
func (c Config) Validate() error {
	bad := func(v, format string, args ...any) error {
		return &ConfigError{Var: v, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.HTTPAddr == "":
		return bad("INSTANT_TOKENSVC_HTTP_ADDR", "empty (want host:port, e.g. :8090)")
	case c.ChannelsFile == "":
		return bad("INSTANT_CHANNELS_FILE", "not set (want the path of the channels file shared with the bridge)")
	case c.CentrifugoHMACKey == "" && c.CentrifugoPrivateKeyFile == "":
		return bad("INSTANT_CENTRIFUGO_HMAC_KEY", "not set (want Centrifugo's client.token.hmac_secret_key, or set INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE)")
	case c.CentrifugoHMACKey != "" && c.CentrifugoPrivateKeyFile != "":
		return bad("INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE", "set together with INSTANT_CENTRIFUGO_HMAC_KEY (want only one of them)")
	case c.TokenTTL < time.Second:
		return bad("INSTANT_TOKEN_TTL", "%v is too short (want a duration of at least 1s, e.g. 10m)", c.TokenTTL)
	case c.SubscriptionTokenTTL < time.Second:
		return bad("INSTANT_SUBSCRIPTION_TOKEN_TTL", "%v is too short (want a duration of at least 1s, e.g. 10m)", c.SubscriptionTokenTTL)
	case c.SessionKey != "" && len(c.SessionKey) < 32:
		return bad("INSTANT_SESSION_KEY", "too short: %d bytes (want at least 32 random bytes, e.g. from: openssl rand -hex 32)", len(c.SessionKey))
	case c.SessionTTL < time.Minute:
		return bad("INSTANT_SESSION_TTL", "%v is too short (want at least 1m, e.g. 12h)", c.SessionTTL)
	case c.SessionCookieName == "" || strings.ContainsAny(c.SessionCookieName, " ;,=\t\r\n"):
		return bad("INSTANT_SESSION_COOKIE_NAME", "%q is not a valid cookie name", c.SessionCookieName)
	case c.MaxBodyBytes < 256:
		return bad("INSTANT_MAX_BODY_BYTES", "%d is too small (want at least 256)", c.MaxBodyBytes)
	case c.LoginRatePerUser < 1:
		return bad("INSTANT_LOGIN_RATE_PER_USER", "%d (want at least 1 attempt a minute)", c.LoginRatePerUser)
	case c.LoginRatePerAddr < 1:
		return bad("INSTANT_LOGIN_RATE_PER_ADDR", "%d (want at least 1 attempt a minute)", c.LoginRatePerAddr)
	}
	switch strings.ToLower(c.SessionCookieSame) {
	case "lax", "strict":
	case "none":
		if !c.SessionCookieSecure {
			return bad("INSTANT_SESSION_COOKIE_SAMESITE", "none needs INSTANT_SESSION_COOKIE_SECURE=true (browsers drop SameSite=None cookies that are not Secure)")
		}
	default:
		return bad("INSTANT_SESSION_COOKIE_SAMESITE", "%q (want lax, strict or none)", c.SessionCookieSame)
	}
	for _, o := range c.AllowedOrigins {
		if _, err := parseOrigin(o); err != nil {
			return bad("INSTANT_ALLOWED_ORIGINS", "%v", err)
		}
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return bad("INSTANT_TRUSTED_PROXIES", "%v", err)
	}
	if len(c.TrustedProxies) > 0 && c.ProxyUserHeader == "" {
		return bad("INSTANT_PROXY_USER_HEADER", "empty (want the header the proxy sets, e.g. X-Forwarded-User)")
	}
	n := 0
	for _, s := range []string{c.JWTHMACKey, c.JWTPublicKeyFile, c.JWTJWKSURL} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return bad("INSTANT_JWT_HMAC_KEY", "set at most one of INSTANT_JWT_HMAC_KEY, INSTANT_JWT_PUBLIC_KEY_FILE and INSTANT_JWT_JWKS_URL")
	}
	if c.JWTHMACKey != "" && len(c.JWTHMACKey) < 32 {
		return bad("INSTANT_JWT_HMAC_KEY", "too short: %d bytes (want at least 32)", len(c.JWTHMACKey))
	}
	if c.JWTJWKSURL != "" && !strings.HasPrefix(c.JWTJWKSURL, "https://") && !strings.HasPrefix(c.JWTJWKSURL, "http://") {
		return bad("INSTANT_JWT_JWKS_URL", "%q (want an http:// or https:// URL)", c.JWTJWKSURL)
	}
	if n > 0 && c.JWTJWKSRefresh < time.Second {
		return bad("INSTANT_JWT_JWKS_REFRESH", "%v is too short (want at least 1s)", c.JWTJWKSRefresh)
	}
	if n == 0 && len(c.JWTAlgorithms) > 0 {
		return bad("INSTANT_JWT_ALGORITHMS", "set without a key (set INSTANT_JWT_HMAC_KEY, INSTANT_JWT_PUBLIC_KEY_FILE or INSTANT_JWT_JWKS_URL)")
	}
	for _, a := range c.JWTAlgorithms {
		if _, ok := algFamilies[a]; !ok {
			return bad("INSTANT_JWT_ALGORITHMS", "unknown algorithm %q (want some of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)", a)
		}
		fam := algFamilies[a]
		if c.JWTHMACKey != "" && fam != "HMAC" || c.JWTHMACKey == "" && n > 0 && fam == "HMAC" {
			return bad("INSTANT_JWT_ALGORITHMS", "%s does not fit the configured key (HMAC algorithms only with INSTANT_JWT_HMAC_KEY, public-key ones only with a public key or JWKS)", a)
		}
	}
	if n > 0 {
		for v, s := range map[string]string{
			"INSTANT_JWT_CLAIM_USER_ID": c.JWTClaimUserID, "INSTANT_JWT_CLAIM_USERNAME": c.JWTClaimUsername,
		} {
			if s == "" {
				return bad(v, "empty (want a claim name)")
			}
		}
	}
	if c.UsersFile == "" && !c.Anonymous && n == 0 && len(c.TrustedProxies) == 0 {
		return bad("INSTANT_USERS_FILE", "no identity source is configured (set INSTANT_USERS_FILE, an INSTANT_JWT_* key, INSTANT_TRUSTED_PROXIES or INSTANT_ANONYMOUS=true)")
	}
	if _, err := os.Stat(c.ChannelsFile); err != nil {
		return bad("INSTANT_CHANNELS_FILE", "%v", err)
	}
	return c.validateDemo()
}

var algFamilies = map[string]string{
	"HS256": "HMAC", "HS384": "HMAC", "HS512": "HMAC",
	"RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
	"PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
	"ES256": "EC", "ES384": "EC", "ES512": "EC",
}

// parsePrefixes parses addresses and CIDRs.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
