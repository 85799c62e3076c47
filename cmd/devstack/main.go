// Command devstack runs the whole of Instant on one machine for development:
// an embedded NATS server (with JetStream), a real Centrifugo, the bridge and
// the token service, plus a websocket "tail" that prints every message that
// reaches Centrifugo. State and generated secrets live in --dir.
//
//	go run ./cmd/devstack            (or: make run)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/centrifugoproc"
	"github.com/instant-go/instant/internal/logging"
	"github.com/instant-go/instant/internal/tokens"
	"github.com/instant-go/instant/internal/tokensvc"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// DemoPassword is the password of the demo users written to users.yaml.
const DemoPassword = "instant-demo"

const channelsYAML = `# Channels of the development stack; edit me, the bridge and the token
# service reload this file when it changes.
channels:
  - name: public
    level: public
  - name: $users
    level: users
  - name: $group1
    level: groups
    groups: [group1]
  - name: $staff
    level: staff
  - name: $billing
    level: staff
    publishers: [billing]
`

type options struct {
	dir            string
	natsPort       int
	centrifugoPort int
	tokensvcAddr   string
	bridgeHTTP     string
	payloadMode    string
	delivery       string
	siteName       string
	tail           bool
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", ".devstack", "directory for state, generated files and logs")
	flag.IntVar(&o.natsPort, "nats-port", 4222, "NATS client port")
	flag.IntVar(&o.centrifugoPort, "centrifugo-port", 8000, "Centrifugo HTTP port (API, websocket)")
	flag.StringVar(&o.tokensvcAddr, "tokensvc-addr", "127.0.0.1:8090", "token service listen address")
	flag.StringVar(&o.bridgeHTTP, "bridge-http", "127.0.0.1:9090", "bridge metrics and health listen address")
	flag.StringVar(&o.payloadMode, "payload-mode", "object", "publication data format: object or django")
	flag.StringVar(&o.siteName, "site", "site", "site name stamped on messages")
	flag.StringVar(&o.delivery, "delivery", "core", "bridge delivery mode: core or jetstream (stored, dead letters; see bridge dlq --help)")
	flag.BoolVar(&o.tail, "tail", true, "print every message Centrifugo delivers (a superuser websocket subscriber)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "devstack: run NATS, Centrifugo, the bridge and the token service locally.\n\nUsage: devstack [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	log, err := logging.New("info", "console")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	dir, _ := filepath.Abs(o.dir)
	channelsFile, usersFile, err := writeFiles(dir)
	if err != nil {
		return err
	}
	apiKey, hmacKey, sessionKey := secret(), secret(), secret()

	// NATS, embedded, with JetStream.
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: o.natsPort, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true,
	})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats server did not start on port %d (in use?)", o.natsPort)
	}
	defer ns.Shutdown()
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(o.natsPort)

	// Centrifugo, a real process.
	cfDir := filepath.Join(dir, "centrifugo")
	if err := os.MkdirAll(cfDir, 0o700); err != nil {
		return err
	}
	cf, err := centrifugoproc.Start(ctx, centrifugoproc.Options{
		Dir: cfDir, Port: o.centrifugoPort, APIKey: apiKey, HMACSecret: hmacKey, LogLevel: "info",
	})
	if err != nil {
		return fmt.Errorf("centrifugo: %w", err)
	}
	defer func() { _ = cf.Stop() }()

	// The bridge.
	bcfg := bridge.DefaultConfig()
	bcfg.NATSURL, bcfg.CentrifugoAPIURL, bcfg.CentrifugoAPIKey = natsURL, cf.APIURL(), apiKey
	bcfg.ChannelsFile, bcfg.HTTPAddr, bcfg.PayloadMode, bcfg.SiteName = channelsFile, o.bridgeHTTP, o.payloadMode, o.siteName
	bcfg.Delivery = o.delivery
	br, err := bridge.New(bcfg, log)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if err := br.Start(); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = br.Shutdown(sctx)
	}()

	// The token service.
	tcfg := tokensvc.DefaultConfig()
	tcfg.HTTPAddr, tcfg.SiteName, tcfg.ChannelsFile, tcfg.UsersFile = o.tokensvcAddr, o.siteName, channelsFile, usersFile
	tcfg.CentrifugoHMACKey, tcfg.SessionKey, tcfg.Anonymous = hmacKey, sessionKey, true
	tcfg.SessionCookieSecure = false // plain HTTP on localhost
	tcfg.Demo, tcfg.DemoWSURL = true, cf.WebsocketURL()
	ts, err := tokensvc.Start(ctx, tcfg, log)
	if err != nil {
		return fmt.Errorf("token service: %w", err)
	}
	defer func() { _ = ts.Close() }()

	if o.tail {
		if err := tail(cf.WebsocketURL(), hmacKey, channelsFile, out); err != nil {
			return fmt.Errorf("tail: %w", err)
		}
	}
	fmt.Fprintf(out, `
Instant is running (Ctrl-C stops it).

  Live demo: open http://%s/ and log in (alice or admin, password %q)

  NATS            %s
  Centrifugo      %s   (websocket %s)
  token service   http://%s
  bridge metrics  http://%s/metrics

Publish (nats CLI: go install github.com/nats-io/natscli/nats@v0.5.0):
  nats -s %s req instant.publish '{"channel":"$users","message":"hi","event_class":"important"}'
  nats -s %s req instant.publish '{"channel":"$nope","message":"hi"}'     # rejected: unknown_channel
  nats -s %s sub 'instant.rejected.>'                                      # watch rejections

Log in and get tokens (demo users alice and admin, password %q):
  curl -s -c /tmp/instant.cookies -H 'Content-Type: application/json' \
       -d '{"username":"alice","password":"%s"}' http://%s/instant/login/

Files: %s (channels.yaml and users.yaml are reloaded when edited)
`, ts.Addr(), DemoPassword, natsURL, cf.URL(), cf.WebsocketURL(), ts.Addr(), br.HTTPAddr(), natsURL, natsURL, natsURL,
		DemoPassword, DemoPassword, ts.Addr(), dir)
	<-ctx.Done()
	fmt.Fprintln(out, "stopping...")
	return nil
}

func writeFiles(dir string) (channelsFile, usersFile string, err error) {
	channelsFile = filepath.Join(dir, "channels.yaml")
	if _, err := os.Stat(channelsFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(channelsFile, []byte(channelsYAML), 0o600); err != nil {
			return "", "", err
		}
	}
	usersFile = filepath.Join(dir, "users.yaml")
	if _, err := os.Stat(usersFile); errors.Is(err, os.ErrNotExist) {
		hash, err := users.HashPassword([]byte(DemoPassword), 10)
		if err != nil {
			return "", "", err
		}
		body := fmt.Sprintf(`# Demo users of the development stack; password %q for both.
# Make a hash with: go run ./cmd/tokensvc hash-password
users:
  - username: alice
    password_hash: %q
    groups: [group1]
  - username: admin
    password_hash: %q
    staff: true
    superuser: true
`, DemoPassword, hash, hash)
		if err := os.WriteFile(usersFile, []byte(body), 0o600); err != nil {
			return "", "", err
		}
	}
	return channelsFile, usersFile, nil
}

// tail subscribes to every channel as a superuser and prints what arrives.
func tail(wsURL, hmacKey, channelsFile string, out io.Writer) error {
	data, err := os.ReadFile(channelsFile)
	if err != nil {
		return err
	}
	reg, err := acl.Parse(channelsFile, data)
	if err != nil {
		return err
	}
	signer, err := tokens.NewHMAC([]byte(hmacKey))
	if err != nil {
		return err
	}
	const who = "devstack-tail"
	conn, _, err := signer.Connection(who, nil, 24*time.Hour)
	if err != nil {
		return err
	}
	client := centrifuge.NewJsonClient(wsURL, centrifuge.Config{Token: conn})
	for _, ch := range reg.Channels() {
		if !ch.Active {
			continue
		}
		tok, _, err := signer.Subscription(who, ch.Name, 24*time.Hour)
		if err != nil {
			return err
		}
		sub, err := client.NewSubscription(ch.Name, centrifuge.SubscriptionConfig{Token: tok})
		if err != nil {
			return err
		}
		name := ch.Name
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			fmt.Fprintf(out, "tail: [%s] offset %d: %s\n", name, e.Offset, e.Data)
		})
		if err := sub.Subscribe(); err != nil {
			return err
		}
	}
	return client.Connect()
}

func secret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
