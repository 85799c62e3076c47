package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// TestStackAsComposed runs the compose stack without Docker: an embedded
// NATS server, the real Centrifugo with config.json, and the bridge and the
// token service in this process, each configured from its environment in
// docker-compose.yml (service host names pointed at the test's servers,
// mounted paths at the host files). A demo user logs in, subscribes with
// the tokens to every channel they were given, and receives an envelope
// published on NATS.
func TestStackAsComposed(t *testing.T) {
	c := loadCompose(t)
	secrets := fakeSecrets(t, c)
	n := testenv.StartNATS(t)
	cf := startComposedCentrifugo(t, c, secrets)
	natsURL, err := url.Parse(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	// Where the test runs what compose reaches by service name.
	hosts := map[string]string{
		"nats:4222":                          natsURL.Host,
		"centrifugo:" + centrifugoPort(t, c): "127.0.0.1:" + strconv.Itoa(cf.Port()),
	}
	env := func(name, addrVar string) map[string]string {
		e := programEnv(t, c, name, secrets)
		for k, v := range e {
			u, err := url.Parse(v)
			if err != nil || u.Host == "" {
				continue
			}
			if h, ok := hosts[u.Host]; ok {
				u.Host = h
				e[k] = u.String()
			} else if _, isService := c.Services[u.Hostname()]; isService {
				t.Fatalf("%s: %s=%s: no test server for %s", name, k, v, u.Host)
			}
		}
		e[addrVar] = "127.0.0.1:0"
		return e
	}
	bcfg, svc := startComposedPrograms(t, env)
	login := loginAlice(t, svc.Addr())

	// Subscribe with the tokens, through the composed Centrifugo.
	sub := testenv.Connect(t, cf.WSURL(), login.WSToken)
	for _, ch := range login.Channels {
		sub.MustSubscribe(ch.Name, ch.Token)
	}
	if err := sub.Subscribe("$staff", ""); err == nil {
		t.Error("alice subscribed to $staff without a token")
	}

	publishComposed(t, c, n.Connect(t), bcfg.Subject, sub)
	if log := cf.Log(t); strings.Contains(log, `"level":"error"`) {
		t.Errorf("centrifugo logged errors:\n%s", log)
	}
}

// startComposedPrograms starts the bridge and the token service in this
// process, each with the environment env gives it; they stop at cleanup.
func startComposedPrograms(t *testing.T, env func(name, addrVar string) map[string]string) (bridge.Config, *tokensvc.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	setEnv(t, env("bridge", "INSTANT_BRIDGE_HTTP_ADDR"))
	bcfg, err := bridge.LoadConfig()
	if err != nil {
		t.Fatalf("bridge configuration: %v", err)
	}
	b, err := bridge.New(bcfg, zaptest.NewLogger(t).Named("bridge"))
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("bridge start: %v", err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := b.Shutdown(sctx); err != nil {
			t.Errorf("bridge shutdown: %v", err)
		}
	})

	setEnv(t, env("tokensvc", "INSTANT_TOKENSVC_HTTP_ADDR"))
	tcfg, err := tokensvc.LoadConfig()
	if err != nil {
		t.Fatalf("tokensvc configuration: %v", err)
	}
	svc, err := tokensvc.Start(ctx, tcfg, zaptest.NewLogger(t).Named("tokensvc"))
	if err != nil {
		t.Fatalf("tokensvc: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return bcfg, svc
}

// composedLogin is the token service's answer to a login.
type composedLogin struct {
	WSToken  string `json:"ws_token"`
	Channels []struct {
		Name  string `json:"name"`
		Token string `json:"token"`
	} `json:"channels"`
}

// loginAlice logs in as alice with the documented demo password and checks
// the channels she gets.
func loginAlice(t *testing.T, addr string) composedLogin {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": "alice", "password": demoPassword(t)})
	resp, err := http.Post("http://"+addr+"/instant/login/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var login composedLogin
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil {
		t.Fatalf("login response: %v", err)
	}
	var names []string
	for _, ch := range login.Channels {
		names = append(names, ch.Name)
	}
	if want := []string{"$group1", "$users", "public"}; !slices.Equal(slices.Sorted(slices.Values(names)), want) {
		t.Fatalf("alice got channels %v, want %v", names, want)
	}
	return login
}

// publishComposed publishes on NATS as a backend does, with a receipt, and
// checks what sub receives, and that the channels example restricts
// $billing to the billing producer.
func publishComposed(t *testing.T, c *composeFile, nc *nats.Conn, subject string, sub *testenv.Subscriber) {
	t.Helper()
	type receipt struct {
		OK    bool `json:"ok"`
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	publish := func(subject, envelope string) receipt {
		t.Helper()
		msg, err := nc.Request(subject, []byte(envelope), 10*time.Second)
		if err != nil {
			t.Fatalf("nats req %s: %v", subject, err)
		}
		var r receipt
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatalf("receipt %s: %v", msg.Data, err)
		}
		return r
	}
	if r := publish(subject, `{"channel":"$group1","message":"hello from compose","event_class":"important"}`); !r.OK {
		t.Fatalf("publish to $group1: receipt %+v", r)
	}
	p := sub.Next(10 * time.Second)
	var got struct {
		Channel    string `json:"channel"`
		Site       string `json:"site"`
		Message    string `json:"message"`
		EventClass string `json:"event_class"`
	}
	if err := json.Unmarshal(p.Data, &got); err != nil {
		t.Fatalf("publication %s: %v", p.Data, err)
	}
	wantSite, _, _ := interpolate(c.mustService(t, "bridge").Environment["INSTANT_SITE_NAME"], noEnv)
	if p.Channel != "$group1" || got.Channel != "$group1" || got.Message != "hello from compose" || got.EventClass != "important" || got.Site != wantSite {
		t.Errorf("publication on %s: %s; want $group1, message, event class and site %q", p.Channel, p.Data, wantSite)
	}

	// The channels example restricts $billing to the billing producer.
	if r := publish(subject, `{"channel":"$billing","message":"x"}`); r.OK || r.Error == nil || r.Error.Code != "publisher_denied" {
		t.Errorf("publish to $billing as no producer: receipt %+v, want publisher_denied", r)
	}
	if r := publish(subject+".billing", `{"channel":"$billing","message":"x"}`); !r.OK {
		t.Errorf("publish to $billing as billing: receipt %+v", r)
	}
}
