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

	"github.com/instant-go/instant/internal/centrifugo"
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

	CentrifugoHMACKey        string `envconfig:"INSTANT_CENTRIFUGO_HMAC_KEY" desc:"secret (at least 32 bytes): Centrifugo's client.token.hmac_secret_key, signs the tokens (HS256)"`
	CentrifugoPrivateKeyFile string `envconfig:"INSTANT_CENTRIFUGO_PRIVATE_KEY_FILE" desc:"RSA or ECDSA private key (PEM) signing the tokens instead of the HMAC key; Centrifugo gets the public key"`

	TokenTTL             time.Duration `envconfig:"INSTANT_TOKEN_TTL" default:"2m" desc:"lifetime of connection tokens, and the longest a client that kept one can reconnect with it after its access was revoked"`
	SubscriptionTokenTTL time.Duration `envconfig:"INSTANT_SUBSCRIPTION_TOKEN_TTL" default:"2m" desc:"lifetime of subscription tokens, and the longest a client that kept one can subscribe with it after its access was revoked"`

	SessionKey          string        `envconfig:"INSTANT_SESSION_KEY" desc:"secret (at least 32 bytes) signing session cookies; unset: a random key per process (sessions end at restart, not shared by replicas)"`
	SessionTTL          time.Duration `envconfig:"INSTANT_SESSION_TTL" default:"12h" desc:"lifetime of a login session"`
	SessionCookieName   string        `envconfig:"INSTANT_SESSION_COOKIE_NAME" default:"instant_session" desc:"name of the session cookie"`
	SessionCookieSecure bool          `envconfig:"INSTANT_SESSION_COOKIE_SECURE" default:"true" desc:"mark the session cookie Secure (HTTPS only); false for plain-HTTP development"`
	SessionCookieSame   string        `envconfig:"INSTANT_SESSION_COOKIE_SAMESITE" default:"lax" desc:"SameSite of the session cookie: lax, strict or none (none needs Secure; for a frontend on another site)"`

	AllowedOrigins []string `envconfig:"INSTANT_ALLOWED_ORIGINS" desc:"comma-separated origins (https://app.example.com) allowed to call with CORS and credentials; same-origin calls need none"`
	MaxBodyBytes   int64    `envconfig:"INSTANT_MAX_BODY_BYTES" default:"16384" desc:"largest accepted request body, in bytes"`

	LoginRatePerUser int `envconfig:"INSTANT_LOGIN_RATE_PER_USER" default:"10" desc:"login attempts allowed per username per minute"`
	LoginRatePerAddr int `envconfig:"INSTANT_LOGIN_RATE_PER_ADDR" default:"60" desc:"login attempts allowed per client address (an IPv6 address counts as its /64) per minute"`
	LoginConcurrent  int `envconfig:"INSTANT_LOGIN_MAX_CONCURRENT" default:"4" desc:"most password checks (bcrypt) running at once, over all clients; more logins get 429 login_busy"`

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

	TrustedProxies    []string `envconfig:"INSTANT_TRUSTED_PROXIES" desc:"comma-separated addresses or CIDRs of reverse proxies whose forwarded-for header gives the client address (rate limits, logs); never trusted for identity"`
	ProxyForwardedFor string   `envconfig:"INSTANT_PROXY_FORWARDED_FOR_HEADER" default:"X-Forwarded-For" desc:"header a trusted proxy puts the client address in (for rate limits and logs)"`
	ProxyAuth         bool     `envconfig:"INSTANT_PROXY_AUTH" default:"false" desc:"identity source: accept the user named in the user header of requests from INSTANT_PROXY_AUTH_PROXIES"`
	ProxyAuthProxies  []string `envconfig:"INSTANT_PROXY_AUTH_PROXIES" desc:"comma-separated addresses or CIDRs of the authenticating proxies whose user headers are trusted (needs INSTANT_PROXY_AUTH=true)"`
	ProxyUserHeader   string   `envconfig:"INSTANT_PROXY_USER_HEADER" default:"X-Forwarded-User" desc:"header an authenticating proxy puts the username in (exactly one value)"`
	ProxyGroupsHeader string   `envconfig:"INSTANT_PROXY_GROUPS_HEADER" default:"X-Forwarded-Groups" desc:"header an authenticating proxy puts the comma-separated groups in"`

	CentrifugoAPIURL string `envconfig:"INSTANT_CENTRIFUGO_API_URL" desc:"Centrifugo HTTP API endpoint(s), comma-separated (http://127.0.0.1:8000/api; several: nodes sharing a broker such as Redis, each call goes to the first answering, the next on failure): on each reload of the channels or users file, unsubscribe and disconnect who lost access; empty: live revocation off"`
	CentrifugoAPIKey string `envconfig:"INSTANT_CENTRIFUGO_API_KEY" desc:"Centrifugo HTTP API key (http_api.key; secret), with INSTANT_CENTRIFUGO_API_URL"`

	LogLevel  string `envconfig:"INSTANT_LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
	LogFormat string `envconfig:"INSTANT_LOG_FORMAT" default:"json" desc:"log format: json or console"`
}

// minSecretBytes is the shortest HMAC key or session key accepted: 256 bits,
// the size of an HS256 / HMAC-SHA256 output.
const minSecretBytes = 32

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
	case c.CentrifugoHMACKey != "" && len(c.CentrifugoHMACKey) < minSecretBytes:
		return bad("INSTANT_CENTRIFUGO_HMAC_KEY", "too short: %d bytes (want at least %d random bytes, e.g. from: openssl rand -hex 32; give Centrifugo the same value as client.token.hmac_secret_key)", len(c.CentrifugoHMACKey), minSecretBytes)
	case c.TokenTTL < time.Second:
		return bad("INSTANT_TOKEN_TTL", "%v is too short (want a duration of at least 1s, e.g. 2m)", c.TokenTTL)
	case c.SubscriptionTokenTTL < time.Second:
		return bad("INSTANT_SUBSCRIPTION_TOKEN_TTL", "%v is too short (want a duration of at least 1s, e.g. 2m)", c.SubscriptionTokenTTL)
	case c.SessionKey != "" && len(c.SessionKey) < minSecretBytes:
		return bad("INSTANT_SESSION_KEY", "too short: %d bytes (want at least %d random bytes, e.g. from: openssl rand -hex 32)", len(c.SessionKey), minSecretBytes)
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
	case c.LoginConcurrent < 1:
		return bad("INSTANT_LOGIN_MAX_CONCURRENT", "%d (want at least 1; about twice the CPUs the service may use, e.g. 4)", c.LoginConcurrent)
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
	if err := c.validateProxies(); err != nil {
		return err
	}
	if err := c.validateJWT(); err != nil {
		return err
	}
	if err := c.validateRevocation(); err != nil {
		return err
	}
	if c.UsersFile == "" && !c.Anonymous && c.jwtSources() == 0 && !c.ProxyAuth {
		return bad("INSTANT_USERS_FILE", "no identity source is configured (set INSTANT_USERS_FILE, an INSTANT_JWT_* key, INSTANT_PROXY_AUTH=true or INSTANT_ANONYMOUS=true)")
	}
	if _, err := os.Stat(c.ChannelsFile); err != nil {
		return bad("INSTANT_CHANNELS_FILE", "%v", err)
	}
	return nil
}

// jwtSources counts the upstream JWT keys configured (valid: 0 or 1).
func (c Config) jwtSources() int {
	n := 0
	for _, s := range []string{c.JWTHMACKey, c.JWTPublicKeyFile, c.JWTJWKSURL} {
		if s != "" {
			n++
		}
	}
	return n
}

// validateJWT checks the upstream JWT settings.
func (c Config) validateJWT() error {
	bad := func(v, format string, args ...any) error {
		return &ConfigError{Var: v, Msg: fmt.Sprintf(format, args...)}
	}
	n := c.jwtSources()
	if n > 1 {
		return bad("INSTANT_JWT_HMAC_KEY", "set at most one of INSTANT_JWT_HMAC_KEY, INSTANT_JWT_PUBLIC_KEY_FILE and INSTANT_JWT_JWKS_URL")
	}
	if c.JWTHMACKey != "" && len(c.JWTHMACKey) < minSecretBytes {
		return bad("INSTANT_JWT_HMAC_KEY", "too short: %d bytes (want at least %d)", len(c.JWTHMACKey), minSecretBytes)
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
	return nil
}

// validateRevocation checks the Centrifugo API settings of live revocation.
func (c Config) validateRevocation() error {
	switch {
	case c.CentrifugoAPIURL == "" && c.CentrifugoAPIKey != "":
		return &ConfigError{Var: "INSTANT_CENTRIFUGO_API_URL", Msg: "empty with INSTANT_CENTRIFUGO_API_KEY set (want Centrifugo's API URL, e.g. http://127.0.0.1:8000/api, to revoke access live)"}
	case c.CentrifugoAPIURL == "":
		return nil
	case c.CentrifugoAPIKey == "":
		return &ConfigError{Var: "INSTANT_CENTRIFUGO_API_KEY", Msg: "empty with INSTANT_CENTRIFUGO_API_URL set (want Centrifugo's http_api.key)"}
	}
	for _, u := range c.CentrifugoAPIURLs() {
		if err := centrifugo.CheckAPIURL(u); err != nil {
			return &ConfigError{Var: "INSTANT_CENTRIFUGO_API_URL", Msg: fmt.Sprintf("%v in %q (want an http(s) URL such as http://127.0.0.1:8000/api, or several comma-separated)", err, c.CentrifugoAPIURL)}
		}
	}
	return nil
}

// CentrifugoAPIURLs are the URLs of INSTANT_CENTRIFUGO_API_URL, in order.
func (c Config) CentrifugoAPIURLs() []string { return centrifugo.SplitAPIURLs(c.CentrifugoAPIURL) }

// validateProxies checks the proxy settings: INSTANT_TRUSTED_PROXIES only
// chooses whose forwarded-for header names the client; identity from proxy
// headers has its own switch and list.
func (c Config) validateProxies() error {
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return &ConfigError{Var: "INSTANT_TRUSTED_PROXIES", Msg: err.Error()}
	}
	authProxies, err := parsePrefixes(c.ProxyAuthProxies)
	switch {
	case err != nil:
		return &ConfigError{Var: "INSTANT_PROXY_AUTH_PROXIES", Msg: err.Error()}
	case c.ProxyAuth && len(authProxies) == 0:
		return &ConfigError{Var: "INSTANT_PROXY_AUTH_PROXIES", Msg: "empty with INSTANT_PROXY_AUTH=true (want the addresses or CIDRs of the authenticating proxies, e.g. 10.0.0.5)"}
	case !c.ProxyAuth && len(authProxies) > 0:
		return &ConfigError{Var: "INSTANT_PROXY_AUTH_PROXIES", Msg: "set without INSTANT_PROXY_AUTH=true (set it to accept the proxies' user headers, or unset this list)"}
	case c.ProxyAuth && c.ProxyUserHeader == "":
		return &ConfigError{Var: "INSTANT_PROXY_USER_HEADER", Msg: "empty (want the header the proxy sets, e.g. X-Forwarded-User)"}
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
