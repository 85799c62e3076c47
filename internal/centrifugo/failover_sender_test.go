package centrifugo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/stack"
	"github.com/instant-go/instant/internal/testenv"
)

// redisNodes starts Redis and two Centrifugo nodes on it with the same
// keys; mod may change their other options.
func redisNodes(t *testing.T, mod ...func(*stack.CentrifugoOptions)) (a, b *testenv.Centrifugo) {
	t.Helper()
	r := testenv.StartRedis(t)
	key, secret := testenv.Secret(t), testenv.Secret(t)
	start := func() *testenv.Centrifugo {
		return testenv.StartCentrifugo(t, append(mod, func(o *stack.CentrifugoOptions) {
			o.RedisAddress, o.APIKey, o.HMACSecret = r.URL(), key, secret
		})...)
	}
	return start(), start()
}

func history(t *testing.T, cf *testenv.Centrifugo, channel string) []string {
	t.Helper()
	api := gocent.New(gocent.Config{Addr: cf.APIURL(), Key: cf.APIKey})
	h, err := api.History(context.Background(), channel, gocent.WithLimit(100))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range h.Publications {
		got = append(got, string(p.Data))
	}
	return got
}

// TestIdempotencyAcrossRedisNodes: with the Redis engine, a batch applied by
// one node and sent again, with the same idempotency keys, to another node
// is not applied again: the second node answers the first one's offsets,
// and each channel's history (read on either node) holds one publication.
// This is what makes a failover retry safe.
func TestIdempotencyAcrossRedisNodes(t *testing.T) {
	a, b := redisNodes(t)
	client := &http.Client{Timeout: 10 * time.Second}
	batch := []Command{
		{Channel: "x-a", Data: []byte(`{"n":1}`), IdempotencyKey: "env-1"},
		{Channels: []string{"x-b", "x-c"}, Data: []byte(`{"n":2}`), IdempotencyKey: "env-2"},
	}
	first, err := NewHTTPSender(a.APIURL(), a.APIKey, client).Send(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewHTTPSender(b.APIURL(), b.APIKey, client).Send(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if show(again) != show(first) {
		t.Errorf("node B answered %s, want node A's answers %s", show(again), show(first))
	}
	for _, cf := range []*testenv.Centrifugo{a, b} {
		for ch, want := range map[string]string{"x-a": `[{"n":1}]`, "x-b": `[{"n":2}]`, "x-c": `[{"n":2}]`} {
			if got := fmt.Sprint(history(t, cf, ch)); got != want {
				t.Errorf("history of %s on %s: %s, want %s", ch, cf.URL(), got, want)
			}
		}
	}
}

// TestFailoverSender: requests go to the first node; while it is stopped,
// refuses the key or hangs, the same request goes to the second node within
// one Send, and the first is used again once the re-check finds it back.
func TestFailoverSender(t *testing.T) {
	a, b := redisNodes(t)
	client := &http.Client{Timeout: 500 * time.Millisecond}
	nodeA := FailoverNode{Name: "A", Sender: NewHTTPSender(a.APIURL(), a.APIKey, client)}
	nodeB := FailoverNode{Name: "B", Sender: NewHTTPSender(b.APIURL(), b.APIKey, client)}
	s := NewFailoverSender(FailoverConfig{Recheck: 100 * time.Millisecond, ProbeTimeout: 300 * time.Millisecond}, zap.NewNop(), nodeA, nodeB)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	n := 0
	send := func(what string) {
		t.Helper()
		n++
		cmd := Command{Channel: "fo", Data: fmt.Appendf(nil, `{"n":%d}`, n), IdempotencyKey: fmt.Sprint("k", n)}
		if _, err := s.Send(ctx, []Command{cmd}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wantDown := func(want ...string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			if got := s.Down(); !slices.Equal(got, want) {
				return fmt.Errorf("nodes down: %v, want %v", got, want)
			}
			return nil
		})
	}
	send("both up")
	wantDown()

	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	send("A stopped")
	wantDown("A")
	send("A marked down")
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	wantDown() // the re-check found it

	if err := syscall.Kill(a.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(a.PID(), syscall.SIGCONT) })
	start := time.Now()
	send("A hangs")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failover from a hung node took %v, want about the client timeout (500ms)", d)
	}
	wantDown("A")
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	start = time.Now()
	err := s.Ready(rctx)
	cancel()
	if d := time.Since(start); err != nil || d > 2*time.Second {
		t.Errorf("Ready with A hung and B up: %v after %v, want nil on B's answer, not after A's 5 s", err, d)
	}
	if err := syscall.Kill(a.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wantDown()

	if got, want := history(t, b, "fo"), 4; len(got) != want {
		t.Errorf("history of fo: %v, want %d publications (each send once)", got, want)
	}
}

// TestFailoverSenderRefusals: a node that refuses the API key is passed
// over; when no node takes the request the error is unavailable and keeps
// the last node's status, so the Forwarder retries it and reports a refused
// key as such.
func TestFailoverSenderRefusals(t *testing.T) {
	a, b := redisNodes(t)
	client := &http.Client{Timeout: 2 * time.Second}
	cmds := []Command{{Channel: "r", Data: []byte(`{}`)}}
	badA := FailoverNode{Name: "A", Sender: NewHTTPSender(a.APIURL(), "wrong key", client)}
	goodB := FailoverNode{Name: "B", Sender: NewHTTPSender(b.APIURL(), b.APIKey, client)}
	s := NewFailoverSender(FailoverConfig{}, zap.NewNop(), badA, goodB)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Send(context.Background(), cmds); err != nil {
		t.Fatalf("A refuses the key, B takes it: %v", err)
	}
	if got := s.Down(); !slices.Equal(got, []string{"A"}) {
		t.Errorf("down: %v, want [A]", got)
	}

	badB := FailoverNode{Name: "B", Sender: NewHTTPSender(b.APIURL(), "wrong key", client)}
	none := NewFailoverSender(FailoverConfig{}, zap.NewNop(), badA, badB)
	t.Cleanup(func() { _ = none.Close() })
	_, err := none.Send(context.Background(), cmds)
	var re *RequestError
	if !errors.As(err, &re) || !re.Unavailable || re.HTTPStatus != http.StatusUnauthorized {
		t.Errorf("no node takes it: %v, want an unavailable request error with status 401", err)
	}
	if err := none.Ready(context.Background()); err == nil {
		t.Error("Ready with no node answering: nil, want an error")
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Errorf("Ready with B answering: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(context.Background()); err == nil {
		t.Error("Ready after Close: nil, want an error")
	}
	if _, err := s.Send(context.Background(), cmds); err != nil {
		t.Errorf("Send after Close: %v, want it to work (only the re-check stops)", err)
	}
}
