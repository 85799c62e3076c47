// Package natsbus connects to NATS with the options Instant's programs share:
// credentials, TLS, endless reconnects, and logged connection events.
package natsbus

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/logging"
)

// Config is how to reach and authenticate to NATS. At most one of
// CredsFile, NKeyFile, User/Password and Token may be set.
type Config struct {
	URL       string
	Name      string
	CredsFile string
	NKeyFile  string
	User      string
	Password  string
	Token     string
	TLSCA     string
	TLSCert   string
	TLSKey    string
}

// Validate checks the combination of options; names are the INSTANT_ variables.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("INSTANT_NATS_URL is empty: set it to the NATS server URL, e.g. nats://127.0.0.1:4222")
	}
	for _, u := range strings.Split(c.URL, ",") {
		if err := checkServerURL(strings.TrimSpace(u)); err != nil {
			return fmt.Errorf("INSTANT_NATS_URL=%q: %w; want nats://host:4222, or several comma-separated", RedactURLs(c.URL), err)
		}
	}
	n := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeyFile != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("set only one of INSTANT_NATS_CREDS, INSTANT_NATS_NKEY, INSTANT_NATS_USER/INSTANT_NATS_PASSWORD, INSTANT_NATS_TOKEN")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("INSTANT_NATS_USER and INSTANT_NATS_PASSWORD must be set together")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("INSTANT_NATS_TLS_CERT and INSTANT_NATS_TLS_KEY must be set together")
	}
	return nil
}

// checkServerURL checks one server of a NATS URL list as nats.go reads it:
// host:port, or a URL with scheme nats, tls, ws or wss.
func checkServerURL(s string) error {
	if s == "" {
		return errors.New("an empty server URL in the list")
	}
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("server %q is not a URL", RedactURLs(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("server %q: scheme %q, want nats, tls, ws or wss", RedactURLs(s), u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("server %q has no host", RedactURLs(s))
	}
	return nil
}

// Options turns the config into nats.go options, with handlers that log to
// log and call onErr for asynchronous errors (slow consumers among them).
//
// onClosed, when not nil, is called once the connection is closed.
func (c Config) Options(log *zap.Logger, onErr func(*nats.Subscription, error), onClosed func()) ([]nats.Option, error) {
	servers := RedactURLs(c.URL)
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(32 << 20),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			log.Warn("nats disconnected", zap.String(logging.FieldServer, servers), zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", zap.String(logging.FieldServer, nc.ConnectedUrlRedacted()))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Info("nats connection closed", zap.String(logging.FieldServer, servers))
			if onClosed != nil {
				onClosed()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if onErr != nil {
				onErr(sub, err)
				return
			}
			log.Warn("nats async error", zap.Error(err))
		}),
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("INSTANT_NATS_NKEY %s: %w", c.NKeyFile, err)
		}
		opts = append(opts, o)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// Connect dials NATS. With RetryOnFailedConnect it returns at once even when
// the server is not up yet; the connection comes up in the background.
func Connect(c Config, log *zap.Logger, onErr func(*nats.Subscription, error)) (*nats.Conn, error) {
	opts, err := c.Options(log, onErr, nil)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", c.URL, err)
	}
	return nc, nil
}

// RedactURLs returns the comma-separated server URLs without credentials,
// for logs.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
