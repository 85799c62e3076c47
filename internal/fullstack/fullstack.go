// Package fullstack starts a whole Instant for end-to-end tests: an embedded
// NATS and a real Centrifugo (internal/testenv), with the bridge and the token
// service in the test's process. It is apart from testenv so that the
// packages the bridge imports can use testenv in their own tests.
package fullstack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
	"github.com/instant-go/instant/internal/users"
)

// DemoChannels is the channels file of StartInstant: one channel of each
// level the browser tests need.
const DemoChannels = `channels:
  - name: public
    level: public
  - name: $users
    level: users
  - name: $group1
    level: groups
    groups: [group1]
  - name: $staff
    level: staff
`

// DemoPassword is the password of DemoUsers: alice (group1) and bob (staff).
const DemoPassword = "instant-demo"

// Instant is a whole Instant for end-to-end tests: an embedded NATS, a real
// Centrifugo, and the bridge and the token service in this process. All of
// it stops at cleanup.
type Instant struct {
	NATS         *testenv.NATS
	Centrifugo   *testenv.Centrifugo
	Bridge       *bridge.Bridge
	BridgeConfig bridge.Config
	TokenService *tokensvc.Service
	TokenConfig  tokensvc.Config
}

// InstantOptions change what StartInstant starts; every field is optional.
type InstantOptions struct {
	// Bridge and TokenService change the configurations before the start
	// (payload mode, delivery, token lifetimes, demo, origins...).
	Bridge       func(*bridge.Config)
	TokenService func(*tokensvc.Config)
	// Log receives the components' logs; default zaptest's logger.
	Log *zap.Logger
}

// StartInstant starts NATS, Centrifugo, the bridge and the token service
// with DemoChannels and the users alice (group1) and bob (staff), password
// DemoPassword; the token service listens on 127.0.0.1, plain HTTP
// (session cookies not Secure).
func StartInstant(tb testing.TB, o InstantOptions) *Instant {
	tb.Helper()
	log := o.Log
	if log == nil {
		log = zaptest.NewLogger(tb, zaptest.Level(zap.WarnLevel))
	}
	dir := tb.TempDir()
	channels := writeFile(tb, dir, "channels.yaml", DemoChannels)
	usersFile := writeFile(tb, dir, "users.yaml", demoUsers(tb))
	in := &Instant{NATS: testenv.StartNATS(tb), Centrifugo: testenv.StartCentrifugo(tb)}

	bc := bridge.DefaultConfig()
	bc.NATSURL, bc.CentrifugoAPIURL, bc.CentrifugoAPIKey = in.NATS.URL(), in.Centrifugo.APIURL(), in.Centrifugo.APIKey
	bc.ChannelsFile, bc.SiteName, bc.HTTPAddr = channels, "testsite", ""
	if o.Bridge != nil {
		o.Bridge(&bc)
	}
	b, err := bridge.New(bc, log)
	if err != nil {
		tb.Fatalf("bridge: %v", err)
	}
	if err := b.Start(); err != nil {
		tb.Fatalf("bridge: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	in.Bridge, in.BridgeConfig = b, bc

	tc := tokensvc.DefaultConfig()
	tc.HTTPAddr, tc.SiteName, tc.ChannelsFile, tc.UsersFile = "127.0.0.1:0", "testsite", channels, usersFile
	tc.CentrifugoHMACKey, tc.SessionKey = in.Centrifugo.HMACSecret, testenv.Secret(tb)+testenv.Secret(tb)
	tc.SessionCookieSecure = false
	tc.DemoWSURL = in.Centrifugo.WebsocketURL()
	if o.TokenService != nil {
		o.TokenService(&tc)
	}
	ts, err := tokensvc.Start(context.Background(), tc, log)
	if err != nil {
		tb.Fatalf("token service: %v", err)
	}
	tb.Cleanup(func() { _ = ts.Close() })
	in.TokenService, in.TokenConfig = ts, tc
	return in
}

// TokenURL is the token service's base URL, http://127.0.0.1:port.
func (in *Instant) TokenURL() string { return "http://" + in.TokenService.Addr() }

// Publish sends an envelope with a request and fails the test unless the
// bridge's receipt says ok (core mode).
func (in *Instant) Publish(tb testing.TB, nc *nats.Conn, envelope string) {
	tb.Helper()
	msg, err := nc.Request(in.BridgeConfig.Subject, []byte(envelope), 10*time.Second)
	if err != nil {
		tb.Fatalf("publish %s: %v", envelope, err)
	}
	var r struct{ OK bool }
	if err := json.Unmarshal(msg.Data, &r); err != nil || !r.OK {
		tb.Fatalf("publish %s: receipt %s", envelope, msg.Data)
	}
}

func demoUsers(tb testing.TB) string {
	tb.Helper()
	h, err := users.HashPassword([]byte(DemoPassword), 4) // the lowest cost: tests log in often
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf(`users:
  - username: alice
    password_hash: %q
    groups: [group1]
  - username: bob
    password_hash: %q
    staff: true
`, h, h)
}

func writeFile(tb testing.TB, dir, name, data string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
