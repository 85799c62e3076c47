package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/instant-go/instant/pkg/envelope"
)

// roundTripper answers every request in memory with reply(body).
type roundTripper func(req *http.Request, body []byte) *http.Response

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	return f(req, body), nil
}

func respond(body []byte) *http.Response {
	return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body))}
}

// gocentBody returns the request body gocent's Pipe sends for cmds.
func gocentBody(t testing.TB, cmds []Command) []byte {
	t.Helper()
	var sent []byte
	rt := roundTripper(func(_ *http.Request, body []byte) *http.Response {
		sent = body
		return respond(bytes.Repeat([]byte("{\"result\":{}}\n"), len(cmds)))
	})
	if _, err := NewGocentSender("http://gocent.invalid/api", "k", &http.Client{Transport: rt}).Send(context.Background(), cmds); err != nil {
		t.Fatalf("gocent: %v", err)
	}
	return sent
}

// decoded is a command as Centrifugo decodes it, from either format.
type decoded struct {
	Method         string
	Channel        string
	Channels       []string
	Data           any
	IdempotencyKey string
}

type wireParams struct {
	Channel        string          `json:"channel"`
	Channels       []string        `json:"channels"`
	Data           json.RawMessage `json:"data"`
	IdempotencyKey string          `json:"idempotency_key"`
}

func decodeData(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("data %q: %v", raw, err)
	}
	return v
}

func decodeBatchBody(t testing.TB, body []byte) []decoded {
	t.Helper()
	if !json.Valid(body) || !utf8.Valid(body) {
		t.Fatalf("batch body is not valid UTF-8 JSON: %q", body)
	}
	var v struct {
		Commands []struct {
			Publish   *wireParams `json:"publish"`
			Broadcast *wireParams `json:"broadcast"`
		} `json:"commands"`
		Parallel *bool `json:"parallel"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("batch body %q: %v", body, err)
	}
	if v.Parallel == nil || *v.Parallel {
		t.Fatalf("batch body %q: want \"parallel\":false", body)
	}
	var out []decoded
	for _, c := range v.Commands {
		if c.Publish != nil {
			out = append(out, decoded{"publish", c.Publish.Channel, nil, decodeData(t, c.Publish.Data), c.Publish.IdempotencyKey})
		} else {
			out = append(out, decoded{"broadcast", "", c.Broadcast.Channels, decodeData(t, c.Broadcast.Data), c.Broadcast.IdempotencyKey})
		}
	}
	return out
}

func decodePipeBody(t testing.TB, body []byte) []decoded {
	t.Helper()
	var out []decoded
	d := json.NewDecoder(bytes.NewReader(body))
	for {
		var c struct {
			Method string     `json:"method"`
			Params wireParams `json:"params"`
		}
		if err := d.Decode(&c); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("gocent body %q: %v", body, err)
		}
		out = append(out, decoded{c.Method, c.Params.Channel, c.Params.Channels, decodeData(t, c.Params.Data), ""})
	}
}

// jsonString is what Centrifugo decodes from s as encoding/json writes it.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// checkSameAsGocent checks that the batch body for cmds decodes to the
// commands gocent's pipe sends, plus the idempotency keys gocent cannot send.
func checkSameAsGocent(t testing.TB, cmds []Command) {
	t.Helper()
	got := decodeBatchBody(t, appendBatch(nil, cmds))
	want := decodePipeBody(t, gocentBody(t, cmds))
	for i := range want {
		want[i].IdempotencyKey = jsonString(cmds[i].IdempotencyKey)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("commands %q\nbatch body decodes to %+v\n gocent pipe sends   %+v", cmds, got, want)
	}
}

var modes = []envelope.Mode{envelope.ModeObject, envelope.ModeDjango}

// TestBatchBodyMatchesGocent: for random envelopes, encoded by
// envelope.AppendPayload in each payload mode as the bridge does, the batch
// body decodes to the commands gocent's Pipe sends.
func TestBatchBodyMatchesGocent(t *testing.T) {
	for _, mode := range modes {
		for seed := range uint64(500) {
			checkSameAsGocent(t, randCommands(t, rand.New(rand.NewPCG(seed, uint64(mode))), mode))
		}
	}
}

// FuzzBatchBody is TestBatchBodyMatchesGocent with the fuzzer choosing the
// seed of the random envelopes and one envelope's channel, message, data
// (when envelope.Decode takes it) and id.
func FuzzBatchBody(f *testing.F) {
	f.Add(uint64(1), false, "chat:room", "hi <b>&</b>", `{"a":[1,2,{"b":null}]}`, "id-1")
	f.Add(uint64(2), true, "a\"\\\n\x00\xff", "\u2028é😀", `{ "k\u00e9" : "\ud83d\ude00", "n": 1e400 }`, "\xe2\x80")
	f.Fuzz(func(t *testing.T, seed uint64, django bool, channel, message, data, id string) {
		r := rand.New(rand.NewPCG(seed, 0))
		mode := modes[0]
		if django {
			mode = modes[1]
		}
		env := randEnvelope(t, r)
		switch {
		case channel == "":
		case env.Channels != nil:
			env.Channels[0] = channel
		default:
			env.Channel = channel
		}
		env.HasMessage, env.Message = true, message
		if d, ok := decodedData([]byte(data)); ok {
			env.Data = d
		}
		cmds := envelopeCommands(&env, mode, id, time.UnixMilli(int64(seed>>22)))
		checkSameAsGocent(t, append(cmds, randCommands(t, r, mode)...))
	})
}

func TestAppendBatchExact(t *testing.T) {
	got := string(appendBatch(nil, []Command{
		{Channel: "c", Data: []byte(`{"a":1}`), IdempotencyKey: "k"},
		{Channels: []string{"x", "y"}, Data: []byte(`2`)},
		{Channel: "n"},
	}))
	want := `{"commands":[{"publish":{"channel":"c","data":{"a":1},"idempotency_key":"k"}},` +
		`{"broadcast":{"channels":["x","y"],"data":2}},{"publish":{"channel":"n","data":null}}],"parallel":false}`
	if got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestParseBatchReply(t *testing.T) {
	e102 := &ReplyError{Code: 102, Message: "unknown channel"}
	tests := []struct {
		name string
		body string
		n    int
		want []Reply // nil with wantErr
		err  bool
	}{
		{"publish", `{"replies":[{"publish":{"offset":1,"epoch":"E"}},{"publish":{}}]}`, 2, []Reply{{Kind: ReplyPublished, Offset: 1, Epoch: "E"}, {Kind: ReplyPublished}}, false},
		{"error", `{"replies":[{"error":{"code":102,"message":"unknown channel"}}]}`, 1, []Reply{{Err: e102}}, false},
		{"broadcast", `{"replies":[{"broadcast":{"responses":[{"result":{"offset":3,"epoch":"F"}},{"error":{"code":102,"message":"unknown channel"}}]}}]}`, 1,
			[]Reply{{Kind: ReplyBroadcast, PerChannel: []Reply{{Kind: ReplyPublished, Offset: 3, Epoch: "F"}, {Err: e102}}}}, false},
		{"empty broadcast (no responses: the Forwarder will not take it for success)", `{"replies":[{"broadcast":{}}]}`, 1, []Reply{{Kind: ReplyBroadcast}}, false},
		{"no commands", `{}`, 0, nil, false},
		{"epoch first", `{"replies":[{"publish":{"epoch":"E","offset":18446744073709551615}}]}`, 1, []Reply{{Kind: ReplyPublished, Offset: 1<<64 - 1, Epoch: "E"}}, false},
		{"whitespace (encoding/json)", "{ \"replies\" : [ {\"publish\":{\"offset\": 2}} ] }\n", 1, []Reply{{Kind: ReplyPublished, Offset: 2}}, false},
		{"escaped message (encoding/json)", `{"replies":[{"error":{"code":1,"message":"a \"b\" \u00e9"}}]}`, 1, []Reply{{Err: &ReplyError{Code: 1, Message: `a "b" é`}}}, false},
		{"unknown field (encoding/json)", `{"replies":[{"publish":{"offset":1,"delta":true}}],"x":1}`, 1, []Reply{{Kind: ReplyPublished, Offset: 1}}, false},
		{"count mismatch", `{"replies":[{"publish":{}}]}`, 2, nil, true},
		{"truncated", `{"replies":[{"publish":{"offset":1`, 1, nil, true},
		{"trailing garbage", `{"replies":[{"publish":{}}]}x`, 1, nil, true},
		{"offset overflow", `{"replies":[{"publish":{"offset":18446744073709551616}}]}`, 1, nil, true},
		{"negative code", `{"replies":[{"error":{"code":-1}}]}`, 1, nil, true},
		{"code overflow", `{"replies":[{"error":{"code":4294967296}}]}`, 1, nil, true},
		{"html", `<html>502 Bad Gateway</html>`, 1, nil, true},
		{"replies null", `{"replies":null}`, 1, nil, true},
		{"other object", `{"result":{}}`, 1, nil, true},
		{"empty", ``, 1, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBatchReply([]byte(tc.body), tc.n)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if !tc.err && show(got) != show(tc.want) {
				t.Errorf("replies\n got %s\nwant %s", show(got), show(tc.want))
			}
		})
	}
}

// FuzzParseBatchReply: whatever the hand scanner accepts, encoding/json
// reads the same way.
func FuzzParseBatchReply(f *testing.F) {
	for _, s := range []string{
		`{"replies":[{"publish":{"offset":1,"epoch":"E"}},{"error":{"code":102,"message":"m"}}]}`,
		`{"replies":[{"broadcast":{"responses":[{"result":{"offset":3}},{"error":{"code":1}}]}}]}`,
		`{"replies":[{"error":{"code":1,"message":"a"},"publish":{}}]}`,
		`{"replies":[{"broadcast":{"responses":[{"result":{}}],"responses":[]}}]}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sc := replyScanner{b: body}
		fast, ok := sc.batch(0)
		if !ok {
			return
		}
		slow, err := decodeBatchReply(body)
		if err != nil {
			t.Fatalf("scanner accepted %q, encoding/json refuses it: %v", body, err)
		}
		if len(fast) == 0 && len(slow) == 0 {
			return
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q\nscanner       %s\nencoding/json %s", body, show(fast), show(slow))
		}
	})
}

func TestHTTPSenderRequest(t *testing.T) {
	var gotPath, gotKey, gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotKey, gotBody = r.URL.Path, r.Header.Get("X-API-Key"), string(b)
		_, _ = io.WriteString(w, `{"replies":[{"publish":{"offset":4,"epoch":"E"}}]}`)
	}))
	defer srv.Close()
	got, err := NewHTTPSender(srv.URL+"/api/", "secret", srv.Client()).Send(context.Background(), []Command{{Channel: "c", Data: []byte(`1`), IdempotencyKey: "k"}})
	if err != nil || show(got) != show([]Reply{{Kind: ReplyPublished, Offset: 4, Epoch: "E"}}) {
		t.Fatalf("Send: %s, %v", show(got), err)
	}
	want := `{"commands":[{"publish":{"channel":"c","data":1,"idempotency_key":"k"}}],"parallel":false}`
	if gotPath != "/api/batch" || gotKey != "secret" || gotBody != want {
		t.Errorf("request %s key %q body %s; want /api/batch, the key, %s", gotPath, gotKey, gotBody, want)
	}
}

func TestHTTPSenderRequestErrors(t *testing.T) {
	server := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name            string
		url             string
		wantUnavailable bool
		wantStatus      int
	}{
		{"503 is unavailable", server(503, "busy"), true, 503},
		{"429 is unavailable", server(429, ""), true, 429},
		{"401 is refused", server(401, "Unauthorized"), false, 401},
		{"413 is refused", server(413, ""), false, 413},
		// A 200 whose reply cannot be read says nothing of what Centrifugo
		// did: sent again (idempotency keys make that safe).
		{"malformed reply is sent again", server(200, "<html>"), true, 200},
		{"reply count mismatch is sent again", server(200, `{"replies":[]}`), true, 200},
		{"oversized reply is sent again", server(200, `{"replies":[`+strings.Repeat(" ", 1<<20)), true, 200},
		{"unreachable is unavailable", closed.URL, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewHTTPSender(tc.url, "secret-key", &http.Client{Timeout: 10 * time.Second})
			_, err := s.Send(context.Background(), []Command{pub("a")})
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want a *RequestError", err, err)
			}
			if re.Unavailable != tc.wantUnavailable || re.HTTPStatus != tc.wantStatus {
				t.Errorf("got unavailable=%v status=%d, want %v %d (%v)", re.Unavailable, re.HTTPStatus, tc.wantUnavailable, tc.wantStatus, err)
			}
			if strings.Contains(err.Error(), "secret-key") {
				t.Errorf("error %q shows the API key", err)
			}
		})
	}
}

// discardTransport reads and drops each request body and answers reply.
type discardTransport []byte

func (reply discardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, err := io.Copy(io.Discard, req.Body)
	_ = req.Body.Close()
	return respond(reply), err
}

// benchCommands is a batch like the bridge's: 100 publishes of a 200-byte
// envelope payload, 10 of them broadcasts to 3 channels.
func benchCommands() []Command {
	data := []byte(`{"id":"01J9Z3K4M5N6P7Q8R9S0T1V2W3","type":"message.created","ts":1730000000000,"payload":{"room":"lobby","text":"hello world, this is a chat message","user":{"id":"u-42","name":"Ada"}}}`)
	cmds := make([]Command, 100)
	for i := range cmds {
		cmds[i] = Command{Channel: fmt.Sprintf("chat:room-%d", i%20), Data: data, IdempotencyKey: fmt.Sprintf("01J9Z3K4M5N6P7Q8R9S0T1V%03d", i)}
		if i%10 == 0 {
			cmds[i].Channel, cmds[i].Channels = "", []string{"chat:a", "chat:b", "chat:c"}
		}
	}
	return cmds
}

// BenchmarkSender measures a sender's own cost per command: encoding the
// request and reading the reply, over an in-memory transport that answers
// as Centrifugo does.
func BenchmarkSender(b *testing.B) {
	cmds := benchCommands()
	var pipeReply, batchReply strings.Builder
	batchReply.WriteString(`{"replies":[`)
	for i, c := range cmds {
		if i > 0 {
			batchReply.WriteByte(',')
		}
		if c.Channels == nil {
			fmt.Fprintf(&pipeReply, `{"result":{"offset":%d,"epoch":"xFgTbqPL"}}`+"\n", 1000+i)
			fmt.Fprintf(&batchReply, `{"publish":{"offset":%d,"epoch":"xFgTbqPL"}}`, 1000+i)
			continue
		}
		r := `{"responses":[{"result":{"offset":7,"epoch":"aBcDeFgH"}},{"result":{"offset":8,"epoch":"aBcDeFgH"}},{"result":{"offset":9,"epoch":"aBcDeFgH"}}]}`
		pipeReply.WriteString(`{"result":` + r + "}\n")
		batchReply.WriteString(`{"broadcast":` + r + `}`)
	}
	batchReply.WriteString(`]}`)
	answer := func(body string) *http.Client {
		return &http.Client{Transport: discardTransport([]byte(body))}
	}
	for _, s := range []struct {
		name   string
		sender Sender
	}{
		{"gocent", NewGocentSender("http://centrifugo.invalid/api", "k", answer(pipeReply.String()))},
		{"http", NewHTTPSender("http://centrifugo.invalid/api", "k", answer(batchReply.String()))},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.sender.Send(context.Background(), cmds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(cmds)), "ns/cmd")
		})
	}
}

// TestHTTPSenderReusesConnectionAfterError: an error response's body is
// drained, so the next request goes over the same connection.
func TestHTTPSenderReusesConnectionAfterError(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Repeat("busy ", 2000)) // 10 KB, past the 512 bytes kept for the error
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := NewHTTPSender(srv.URL, "k", srv.Client())
	for range 3 {
		if _, err := s.Send(context.Background(), []Command{pub("a")}); err == nil {
			t.Fatal("Send: want an error for status 503")
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("got %d connections for 3 requests, want 1 (the error body must be drained)", got)
	}
}
