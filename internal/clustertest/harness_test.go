package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokens"
)

// Names the bridge uses by default; the tests rely on the defaults.
const (
	envelopeStream = "INSTANT"
	consumerName   = "instant-bridge"
	publishSubject = "instant.publish"
	channel        = "$users"
)

const channelsYAML = `channels:
  - name: $users
    level: users
`

// The programs the tests run, built once per test run: ./cmd/bridge, and
// nats-server from the module cache, so that a NATS server can be killed.
var (
	bridgeBinary     = &stack.Binary{Package: stack.BridgePackage}
	natsServerBinary = &stack.Binary{Package: stack.NATSServerPackage, Name: "nats-server"}
)

func TestMain(m *testing.M) {
	code := m.Run()
	_ = bridgeBinary.Close()
	_ = natsServerBinary.Close()
	os.Exit(code)
}

// cluster is the scaled-out stack: 3 nats-server processes, Redis,
// Centrifugo node A (the bridges' first API URL) and node B (the
// subscribers' node).
type cluster struct {
	t            *testing.T
	nats         *stack.NATSProcessCluster
	a, b         *testenv.Centrifugo
	channelsFile string
	signer       *tokens.Signer
	nc           *nats.Conn // the producers' connection, to every server
	js           jetstream.JetStream
}

func newCluster(t *testing.T, centrifugoEnv ...string) *cluster {
	t.Helper()
	testenv.BuildBinary(t, bridgeBinary) // build first, so its time is not counted against the servers
	c := &cluster{t: t, nats: testenv.StartNATSProcessCluster(t, 3, testenv.BuildBinary(t, natsServerBinary))}
	redis := testenv.StartRedis(t)
	key, secret := testenv.Secret(t), testenv.Secret(t)
	node := func() *testenv.Centrifugo {
		return testenv.StartCentrifugo(t, func(o *stack.CentrifugoOptions) {
			o.RedisAddress, o.APIKey, o.HMACSecret, o.Env = redis.URL(), key, secret, centrifugoEnv
		})
	}
	c.a, c.b = node(), node()
	c.channelsFile = filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(c.channelsFile, []byte(channelsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.signer, err = tokens.NewHMAC([]byte(secret)); err != nil {
		t.Fatal(err)
	}
	c.nc, err = nats.Connect(c.nats.URL(), nats.Name("producer"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc, jetstream.WithPublishAsyncTimeout(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	return c
}

// startBridge starts a bridge process on every NATS server, sending to
// Centrifugo A first and B on failure.
func (c *cluster) startBridge(name string, env ...string) *stack.Bridge {
	c.t.Helper()
	vars := []string{
		"INSTANT_NATS_URL=" + c.nats.URL(),
		"INSTANT_NATS_NAME=" + name,
		"INSTANT_CENTRIFUGO_API_URL=" + c.a.APIURL() + "," + c.b.APIURL(),
		"INSTANT_CENTRIFUGO_API_KEY=" + c.a.APIKey,
		"INSTANT_CENTRIFUGO_TIMEOUT=2s",
		"INSTANT_CHANNELS_FILE=" + c.channelsFile,
		"INSTANT_LOG_LEVEL=warn",
		"INSTANT_SHUTDOWN_TIMEOUT=10s",
	}
	return testenv.StartBridge(c.t, stack.BridgeOptions{
		Binary:       testenv.BuildBinary(c.t, bridgeBinary),
		Name:         name,
		Env:          append(vars, env...),
		ReadyTimeout: time.Minute, // the first creates the R3 streams
	})
}

// tokens returns a connection token and a subscription token to channel.
func (c *cluster) tokens() (conn, sub string) {
	c.t.Helper()
	conn, _, err := c.signer.Connection("u", nil, 5*time.Minute)
	if err != nil {
		c.t.Fatal(err)
	}
	sub, _, err = c.signer.Subscription("u", channel, 5*time.Minute)
	if err != nil {
		c.t.Fatal(err)
	}
	return conn, sub
}

// memberWith returns the running NATS server for which has holds.
func (c *cluster) memberWith(what string, has func(*stack.NATSProcess) error) *stack.NATSProcess {
	c.t.Helper()
	var found *stack.NATSProcess
	testenv.Eventually(c.t, 20*time.Second, func() error {
		var errs []error
		for _, m := range c.nats.Members() {
			if m.PID() == 0 {
				continue
			}
			err := has(m)
			if err == nil {
				found = m
				return nil
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("no server is %s: %w", what, errors.Join(errs...))
	})
	return found
}

// connectedTo is a memberWith condition: a client connection named name
// is on the server.
func connectedTo(name string) func(*stack.NATSProcess) error {
	return func(m *stack.NATSProcess) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		names, err := m.ClientNames(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(names, name) {
			return fmt.Errorf("%s has no client %s", m.Name(), name)
		}
		return nil
	}
}

// requireReconnected checks that bridge b, which was on server gone when
// it was killed, is connected to another server and ready again.
func (c *cluster) requireReconnected(b *stack.Bridge, gone *stack.NATSProcess) {
	c.t.Helper()
	on := c.memberWith(b.Name()+"'s new server", connectedTo(b.Name()))
	if on == gone {
		c.t.Fatalf("%s is on %s, the server that was killed", b.Name(), gone.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WaitReady(ctx); err != nil {
		c.t.Fatalf("%s after its server %s was killed: %v", b.Name(), gone.Name(), err)
	}
	c.t.Logf("%s reconnected to %s and is ready", b.Name(), on.Name())
}

// streamMsgs is the number of envelopes left in the envelope stream.
func (c *cluster) streamMsgs() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, envelopeStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// envelope is a publish envelope with a known id.
func envelope(id string) []byte {
	return fmt.Appendf(nil, `{"channel":%q,"message":"m","id":%q}`, channel, id)
}

// makeIDs returns n distinct envelope ids prefix-0 ... prefix-(n-1).
func makeIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}

// receiver is a websocket subscriber counting the envelope ids it receives.
type receiver = testenv.IDCounter

// subscribe connects a websocket client to cf, subscribes it to the
// channel, and counts what it receives until the test ends.
func (c *cluster) subscribe(cf *testenv.Centrifugo) *receiver {
	c.t.Helper()
	conn, sub := c.tokens()
	s := testenv.Connect(c.t, cf.WebsocketURL(), conn)
	s.MustSubscribe(channel, sub)
	return testenv.CountIDs(c.t, s)
}

// waitMore waits until r has n more distinct ids than from.
func waitMore(t *testing.T, r *receiver, from, n int, d time.Duration) {
	t.Helper()
	testenv.Eventually(t, d, func() error {
		if got := r.Distinct() - from; got < n {
			return fmt.Errorf("%d new envelopes received, want %d", got, n)
		}
		return nil
	})
}

// account compares what was received with the ids published.
type account struct {
	missing, unknown  []string
	dupIDs, dupCopies int
}

func tally(ids []string, got map[string]int) account {
	var a account
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
		if got[id] == 0 {
			a.missing = append(a.missing, id)
		}
	}
	for id, n := range got {
		if !known[id] {
			a.unknown = append(a.unknown, id)
		} else if n > 1 {
			a.dupIDs++
			a.dupCopies += n - 1
		}
	}
	sort.Strings(a.missing)
	sort.Strings(a.unknown)
	return a
}

func (a account) String() string {
	return fmt.Sprintf("%d missing, %d unknown ids, %d duplicate copies of %d ids", len(a.missing), len(a.unknown), a.dupCopies, a.dupIDs)
}

func head(s []string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Join(s, ", ")
}
