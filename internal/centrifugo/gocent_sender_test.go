package centrifugo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"
	"go.uber.org/zap"
)

// fakeAPI is a double of Centrifugo's legacy /api endpoint for faults a real
// server cannot be made to produce on demand. reply decides each command's
// answer line.
type fakeAPI struct {
	*httptest.Server
	requests atomic.Int32
}

type fakeCommand struct {
	Method string `json:"method"`
	Params struct {
		Channel  string          `json:"channel"`
		Channels []string        `json:"channels"`
		Data     json.RawMessage `json:"data"`
	} `json:"params"`
}

func newFakeAPI(t *testing.T, status func(n int32) int, reply func(c fakeCommand) string) *fakeAPI {
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		if code := status(n); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		var lines []string
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var c fakeCommand
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Errorf("fake API: bad command %q: %v", sc.Text(), err)
				return
			}
			lines = append(lines, reply(c))
		}
		_, _ = fmt.Fprint(w, strings.Join(lines, "\n"))
	}))
	t.Cleanup(f.Close)
	return f
}

func okReply(c fakeCommand) string {
	if c.Method == "broadcast" {
		var rs []string
		for range c.Params.Channels {
			rs = append(rs, `{"result":{"offset":1,"epoch":"e"}}`)
		}
		return `{"result":{"responses":[` + strings.Join(rs, ",") + `]}}`
	}
	return `{"result":{"offset":7,"epoch":"ep"}}`
}

func always(code int) func(int32) int { return func(int32) int { return code } }

func newTestGocent(url string) *GocentSender {
	return NewGocentSender(url, "k", &http.Client{Timeout: time.Minute})
}

func TestGocentSenderReplies(t *testing.T) {
	api := newFakeAPI(t, always(200), func(c fakeCommand) string {
		switch {
		case c.Params.Channel == "bad":
			return `{"error":{"code":102,"message":"unknown channel"}}`
		case c.Params.Channel == "odd":
			return `{"result":{"offset": 5, "epoch": "x"}}` // spaces: the encoding/json fallback
		case c.Method == "broadcast":
			return `{"result":{"responses":[{"result":{"offset":1}},{"error":{"code":103,"message":"permission denied"}}]}}`
		}
		return okReply(c)
	})
	got, err := newTestGocent(api.URL).Send(context.Background(), []Command{
		pub("a"), pub("bad"), pub("odd"), {Channels: []string{"x", "y"}, Data: []byte(`{}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Reply{
		{Kind: ReplyPublished, Offset: 7, Epoch: "ep"},
		{Err: &ReplyError{Code: 102, Message: "unknown channel"}},
		{Kind: ReplyPublished, Offset: 5, Epoch: "x"},
		{Kind: ReplyBroadcast, PerChannel: []Reply{{Kind: ReplyPublished, Offset: 1}, {Err: &ReplyError{Code: 103, Message: "permission denied"}}}},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("replies\n got %s\nwant %s", show(got), show(want))
	}
}

// show prints replies with their errors' contents.
func show(rs []Reply) string {
	var b strings.Builder
	for _, r := range rs {
		if r.Err != nil {
			fmt.Fprintf(&b, "[err %d %s]", r.Err.Code, r.Err.Message)
			continue
		}
		fmt.Fprintf(&b, "[%d %s %s]", r.Offset, r.Epoch, show(r.PerChannel))
	}
	return b.String()
}

func TestGocentSenderRequestErrors(t *testing.T) {
	closed := newFakeAPI(t, always(200), okReply)
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name            string
		url             string
		wantUnavailable bool
		wantStatus      int
	}{
		{"503 is unavailable", newFakeAPI(t, always(503), okReply).URL, true, 503},
		{"429 is unavailable", newFakeAPI(t, always(429), okReply).URL, true, 429},
		{"401 is refused", newFakeAPI(t, always(401), okReply).URL, false, 401},
		{"413 is refused", newFakeAPI(t, always(413), okReply).URL, false, 413},
		{"no reply lines is refused", newFakeAPI(t, always(200), func(fakeCommand) string { return "" }).URL, false, 200},
		{"unreachable is unavailable", closedURL, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newTestGocent(tc.url).Send(context.Background(), []Command{pub("a")})
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T), want a *RequestError", err, err)
			}
			if re.Unavailable != tc.wantUnavailable || re.HTTPStatus != tc.wantStatus {
				t.Errorf("got unavailable=%v status=%d, want %v %d (%v)", re.Unavailable, re.HTTPStatus, tc.wantUnavailable, tc.wantStatus, err)
			}
		})
	}
}

// TestGocentForwarder runs the forwarder over the gocent sender end to end:
// retries of a 502 until Centrifugo answers.
func TestGocentForwarder(t *testing.T) {
	api := newFakeAPI(t, func(n int32) int {
		if n < 3 {
			return http.StatusBadGateway
		}
		return 200
	}, okReply)
	f := New(Config{Attempts: 5, Backoff: 5 * time.Millisecond}, newTestGocent(api.URL), zap.NewNop(), nil)
	defer func() { _ = f.Close(context.Background()) }()
	o := wait(t, submit(t, f, pub("a"), Command{Channels: []string{"b", "c"}, Data: []byte(`{}`)}))
	want := []Result{{"a", 7, "ep"}, {"b", 1, "e"}, {"c", 1, "e"}}
	if o.Err != nil || fmt.Sprint(o.Results) != fmt.Sprint(want) {
		t.Fatalf("outcome %+v, want %v", o, want)
	}
	if got := api.requests.Load(); got != 3 {
		t.Errorf("requests %d, want 3", got)
	}
}

func TestParsePublishResult(t *testing.T) {
	cases := []struct {
		in   string
		want gocent.PublishResult
		ok   bool
	}{
		{``, gocent.PublishResult{}, true},
		{`{}`, gocent.PublishResult{}, true},
		{`{"offset":12,"epoch":"Xvbw"}`, gocent.PublishResult{Offset: 12, Epoch: "Xvbw"}, true},
		{`{"epoch":"e","offset":3}`, gocent.PublishResult{Offset: 3, Epoch: "e"}, true},
		{`{"offset":1, "epoch":"e"}`, gocent.PublishResult{}, false}, // spaces: encoding/json's job
		{`{"epoch":"a\"b"}`, gocent.PublishResult{}, false},
		{`{"offset":-1}`, gocent.PublishResult{}, false},
		{`{"other":1}`, gocent.PublishResult{}, false},
		{`[1]`, gocent.PublishResult{}, false},
	}
	for _, tc := range cases {
		got, ok := parsePublishResult([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parsePublishResult(%s) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok {
			var ref gocent.PublishResult
			if tc.in != "" {
				if err := json.Unmarshal([]byte(tc.in), &ref); err != nil || ref != got {
					t.Errorf("%s: encoding/json gives %+v (%v), fast path %+v", tc.in, ref, err, got)
				}
			}
		}
	}
}
