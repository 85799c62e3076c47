package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// HTTPSender is the hot-path Sender. It speaks Centrifugo v6's server API
// over HTTP JSON, writing and reading the bodies itself:
//
//	POST <api>/batch   X-API-Key: <key>
//	{"commands":[{"publish":{"channel":"c","data":<raw>,"idempotency_key":"k"}},
//	             {"broadcast":{"channels":["a","b"],"data":<raw>}}],"parallel":false}
//	→ {"replies":[{"publish":{"offset":1,"epoch":"E"}},{"error":{"code":102,"message":"..."}},
//	              {"broadcast":{"responses":[{"result":{...}},{"error":{...}}]}}]}
//
// Why /api/batch rather than the legacy /api pipe (one {"method","params"}
// line per command, what gocent v3 sends): it is the current API, it takes
// idempotency_key, each reply names its kind, and "parallel":false makes
// Centrifugo apply the commands in order, which the Forwarder's per-channel
// order relies on. Why HTTP JSON rather than gRPC: the payloads are already
// JSON and go in as raw bytes, never re-encoded, over the same port and key
// the deployment already configures, with no protobuf dependency.
type HTTPSender struct {
	batchURL string
	infoURL  string
	key      string
	client   *http.Client
}

var _ Sender = (*HTTPSender)(nil)

// NewHTTPSender returns a sender to the API at apiURL (e.g.
// http://127.0.0.1:8000/api) with the API key; httpClient sets the timeout.
func NewHTTPSender(apiURL, key string, httpClient *http.Client) *HTTPSender {
	base := strings.TrimRight(apiURL, "/")
	return &HTTPSender{batchURL: base + "/batch", infoURL: base + "/info", key: key, client: httpClient}
}

// Send implements Sender.
func (s *HTTPSender) Send(ctx context.Context, cmds []Command) ([]Reply, error) {
	body := getBuf()
	size := 32 // {"commands":[...],"parallel":false}
	for i := range cmds {
		size += cmds[i].encodedSize()
	}
	// Sized once: growing a body of megabytes by doubling would allocate
	// twice its size, in steps.
	body.b = appendBatch(slices.Grow(body.b, size), cmds)
	resp, err := s.post(ctx, s.batchURL, body)
	body.release() // the transport holds its own reference until it closes the body
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	rb := getBuf()
	defer rb.release()
	rb.b, err = readBody(rb.b, resp.Body, maxReplyBytes(cmds))
	// A reply that cannot be read (cut off, too large, not Centrifugo's
	// shape) says nothing of what Centrifugo did: sending the request again
	// is the safe answer, since every command carries its idempotency key.
	if err != nil {
		return nil, &RequestError{Unavailable: true, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("centrifugo batch: read reply: %w", err)}
	}
	replies, err := parseBatchReply(rb.b, len(cmds))
	if err != nil {
		return nil, &RequestError{Unavailable: true, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("centrifugo batch: %w", err)}
	}
	return replies, nil
}

// Ready implements Sender with the info method.
func (s *HTTPSender) Ready(ctx context.Context) error {
	body := getBuf()
	body.b = append(body.b, "{}"...)
	resp, err := s.post(ctx, s.infoURL, body)
	body.release()
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}

// post sends body and returns a 200 response, or a *RequestError.
func (s *HTTPSender) post(ctx context.Context, url string, body *pooledBuf) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, &RequestError{Err: fmt.Errorf("centrifugo request: %w", err)}
	}
	req.Body = body.newReader()
	req.GetBody = func() (io.ReadCloser, error) { return body.newReader(), nil } // only called within Do
	req.ContentLength = int64(len(body.b))
	req.Header.Set("X-API-Key", s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, &RequestError{Unavailable: true, Err: err} // names the URL, never the key
	}
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drained, the connection can be reused
		_ = resp.Body.Close()
		return nil, &RequestError{
			Unavailable: unavailableStatus(resp.StatusCode),
			HTTPStatus:  resp.StatusCode,
			Err:         fmt.Errorf("centrifugo %s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(snippet)),
		}
	}
	return resp, nil
}

// pooledBuf is a pooled byte buffer shared by Send and the request bodies the
// transport reads, which may outlive Do: it returns to the pool when the last
// of them releases it.
type pooledBuf struct {
	b    []byte
	refs atomic.Int32
}

const maxPooledBuf = 4 << 20

var bufPool = sync.Pool{New: func() any { return &pooledBuf{b: make([]byte, 0, 16<<10)} }}

func getBuf() *pooledBuf {
	p := bufPool.Get().(*pooledBuf)
	p.b = p.b[:0]
	p.refs.Store(1)
	return p
}

func (p *pooledBuf) release() {
	if p.refs.Add(-1) == 0 && cap(p.b) <= maxPooledBuf {
		bufPool.Put(p)
	}
}

// newReader returns a request body over p that releases it when closed.
func (p *pooledBuf) newReader() io.ReadCloser {
	p.refs.Add(1)
	r := &bufReader{buf: p}
	r.Reset(p.b)
	return r
}

type bufReader struct {
	bytes.Reader
	buf  *pooledBuf
	once sync.Once
}

func (r *bufReader) Close() error {
	r.once.Do(r.buf.release)
	return nil
}

// maxReplyBytes bounds the reply to a batch: generous per command and
// channel, so only a broken or hostile upstream reaches it.
func maxReplyBytes(cmds []Command) int {
	n := 0
	for _, c := range cmds {
		n += 1 + len(c.Channels)
	}
	return 64<<10 + 512*n
}

var errReplyTooLarge = errors.New("reply too large")

// readBody appends r to dst, failing past limit bytes.
func readBody(dst []byte, r io.Reader, limit int) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, fmt.Errorf("%w: over %d bytes", errReplyTooLarge, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// appendBatch writes the batch request for cmds. Data goes in as is: it is
// valid JSON by Command's contract (nil becomes null).
func appendBatch(b []byte, cmds []Command) []byte {
	b = append(b, `{"commands":[`...)
	for i, c := range cmds {
		if i > 0 {
			b = append(b, ',')
		}
		if c.Channels == nil {
			b = append(b, `{"publish":{"channel":`...)
			b = appendString(b, c.Channel)
		} else {
			b = append(b, `{"broadcast":{"channels":[`...)
			for j, ch := range c.Channels {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, ch)
			}
			b = append(b, ']')
		}
		b = append(b, `,"data":`...)
		if len(c.Data) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, c.Data...)
		}
		if c.IdempotencyKey != "" {
			b = append(b, `,"idempotency_key":`...)
			b = appendString(b, c.IdempotencyKey)
		}
		b = append(b, "}}"...)
	}
	return append(b, `],"parallel":false}`...)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does, minus
// its HTML escaping: control characters, quote and backslash escaped,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// parseBatchReply reads the reply to n commands: a hand scanner for the
// shape Centrifugo writes, encoding/json for anything else.
func parseBatchReply(body []byte, n int) ([]Reply, error) {
	sc := replyScanner{b: body}
	replies, ok := sc.batch(n)
	if !ok {
		var err error
		if replies, err = decodeBatchReply(body); err != nil {
			return nil, fmt.Errorf("malformed reply: %w", err)
		}
	}
	if len(replies) != n {
		return nil, fmt.Errorf("%d replies to %d commands", len(replies), n)
	}
	return replies, nil
}

// replyScanner reads {"replies":[...]} exactly as Centrifugo writes it: no
// whitespace, known keys only. Any surprise returns false, never a guess.
type replyScanner struct {
	b     []byte
	i     int
	epoch string // the last epoch read, shared by the replies that repeat it
}

func (s *replyScanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

func (s *replyScanner) batch(n int) ([]Reply, bool) {
	if s.lit("{}") {
		return nil, s.i == len(s.b)
	}
	if !s.lit(`{"replies":[`) {
		return nil, false
	}
	out := make([]Reply, 0, n)
	for {
		var r Reply
		if !s.reply(&r) {
			return nil, false
		}
		out = append(out, r)
		if s.lit(",") {
			continue
		}
		return out, s.lit("]}") && s.i == len(s.b)
	}
}

// object reads {"key":value,...}, calling field for each key; field reads
// the value and reports whether it knew the key.
func (s *replyScanner) object(field func(key []byte) bool) bool {
	if !s.lit("{") {
		return false
	}
	if s.lit("}") {
		return true
	}
	for {
		if !s.lit(`"`) {
			return false
		}
		end := bytes.IndexByte(s.b[s.i:], '"')
		if end < 0 {
			return false
		}
		key := s.b[s.i : s.i+end]
		s.i += end + 1
		if !s.lit(":") || !field(key) {
			return false
		}
		if s.lit("}") {
			return true
		}
		if !s.lit(",") {
			return false
		}
	}
}

// reply reads one reply. A reply with more than one key (an error and a
// result) is not Centrifugo's shape: encoding/json decides.
func (s *replyScanner) reply(r *Reply) bool {
	keys := 0
	return s.object(func(key []byte) bool {
		if keys++; keys > 1 {
			return false
		}
		switch string(key) {
		case "error":
			r.Err = &ReplyError{}
			return s.replyError(r.Err)
		case "publish":
			r.Kind = ReplyPublished
			return s.publish(r)
		case "broadcast":
			r.Kind = ReplyBroadcast
			return s.object(func(key []byte) bool { return string(key) == "responses" && s.responses(r) })
		}
		return false
	})
}

func (s *replyScanner) responses(r *Reply) bool {
	r.PerChannel = nil // a repeated key replaces, as in encoding/json
	if !s.lit("[") {
		return false
	}
	if s.lit("]") {
		return true
	}
	for {
		var pr Reply
		keys := 0
		ok := s.object(func(key []byte) bool {
			if keys++; keys > 1 {
				return false
			}
			switch string(key) {
			case "error":
				pr.Err = &ReplyError{}
				return s.replyError(pr.Err)
			case "result":
				pr.Kind = ReplyPublished
				return s.publish(&pr)
			}
			return false
		})
		if !ok {
			return false
		}
		r.PerChannel = append(r.PerChannel, pr)
		if s.lit("]") {
			return true
		}
		if !s.lit(",") {
			return false
		}
	}
}

func (s *replyScanner) publish(r *Reply) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "offset":
			v, ok := s.uint(math.MaxUint64)
			r.Offset = v
			return ok
		case "epoch":
			e, ok := s.str()
			if ok && e != nil {
				if string(e) != s.epoch {
					s.epoch = string(e)
				}
				r.Epoch = s.epoch
			}
			return ok && e != nil
		}
		return false
	})
}

func (s *replyScanner) replyError(e *ReplyError) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "code":
			v, ok := s.uint(math.MaxUint32)
			e.Code = uint32(v)
			return ok
		case "message":
			m, ok := s.str()
			e.Message = string(m)
			return ok && m != nil
		}
		return false
	})
}

// uint reads a JSON unsigned integer up to max.
func (s *replyScanner) uint(limit uint64) (uint64, bool) {
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
		s.i++
	}
	digits := s.i - start
	return v, digits > 0 && (digits == 1 || s.b[start] != '0')
}

// str reads a string of printable ASCII without escapes; anything else is
// left to encoding/json (nil result).
func (s *replyScanner) str() ([]byte, bool) {
	if !s.lit(`"`) {
		return nil, false
	}
	for j := s.i; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			v := s.b[s.i:j:j]
			s.i = j + 1
			return v, true
		}
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return nil, false
		}
	}
	return nil, false
}

// decodeBatchReply is the encoding/json reading of a batch reply.
func decodeBatchReply(body []byte) ([]Reply, error) {
	type jsonError struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
	}
	type jsonPublish struct {
		Offset uint64 `json:"offset"`
		Epoch  string `json:"epoch"`
	}
	var v struct {
		Replies []struct {
			Error     *jsonError   `json:"error"`
			Publish   *jsonPublish `json:"publish"`
			Broadcast *struct {
				Responses []struct {
					Error  *jsonError   `json:"error"`
					Result *jsonPublish `json:"result"`
				} `json:"responses"`
			} `json:"broadcast"`
		} `json:"replies"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	if v.Replies == nil && !bytes.Equal(bytes.TrimSpace(body), []byte("{}")) {
		return nil, errors.New("no replies")
	}
	out := make([]Reply, len(v.Replies))
	for i, r := range v.Replies {
		switch {
		case r.Error != nil:
			out[i].Err = &ReplyError{Code: r.Error.Code, Message: r.Error.Message}
		case r.Publish != nil:
			out[i].Kind, out[i].Offset, out[i].Epoch = ReplyPublished, r.Publish.Offset, r.Publish.Epoch
		case r.Broadcast != nil:
			out[i].Kind = ReplyBroadcast
			for _, pr := range r.Broadcast.Responses {
				var p Reply
				if pr.Error != nil {
					p.Err = &ReplyError{Code: pr.Error.Code, Message: pr.Error.Message}
				} else if pr.Result != nil {
					p.Kind, p.Offset, p.Epoch = ReplyPublished, pr.Result.Offset, pr.Result.Epoch
				}
				out[i].PerChannel = append(out[i].PerChannel, p)
			}
		}
	}
	return out, nil
}
