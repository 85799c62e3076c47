package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/centrifugal/gocent/v3"
)

// GocentSender is a Sender through gocent v3's Pipe: Centrifugo's legacy
// /api endpoint, one {"method","params"} JSON object per line. gocent has no
// idempotency key option, so Command.IdempotencyKey is not sent.
type GocentSender struct {
	client *gocent.Client
}

var _ Sender = (*GocentSender)(nil)

// NewGocentSender returns a sender to the API at addr (e.g.
// http://127.0.0.1:8000/api) with the API key; httpClient sets the timeout.
func NewGocentSender(addr, key string, httpClient *http.Client) *GocentSender {
	return &GocentSender{client: gocent.New(gocent.Config{Addr: addr, Key: key, HTTPClient: httpClient})}
}

// Send implements Sender.
func (s *GocentSender) Send(ctx context.Context, cmds []Command) ([]Reply, error) {
	pipe := s.client.Pipe()
	for _, c := range cmds {
		if c.Channels != nil {
			_ = pipe.AddBroadcast(c.Channels, c.Data)
		} else {
			_ = pipe.AddPublish(c.Channel, c.Data)
		}
	}
	replies, err := s.client.SendPipe(ctx, pipe)
	if err != nil {
		return nil, gocentError(err)
	}
	out := make([]Reply, len(replies))
	for i, r := range replies {
		out[i] = gocentReply(cmds[i], r)
	}
	return out, nil
}

// Ready implements Sender with the info method.
func (s *GocentSender) Ready(ctx context.Context) error {
	_, err := s.client.Info(ctx)
	return err
}

// gocentError classifies a failed SendPipe: a status code of its own, a
// reply count mismatch (refused: not worth resending), or a transport error.
func gocentError(err error) *RequestError {
	var sc gocent.ErrStatusCode
	if errors.As(err, &sc) {
		return &RequestError{Unavailable: unavailableStatus(sc.Code), HTTPStatus: sc.Code, Err: err}
	}
	if errors.Is(err, gocent.ErrMalformedResponse) {
		return &RequestError{HTTPStatus: http.StatusOK, Err: err}
	}
	return &RequestError{Unavailable: true, Err: err}
}

func gocentReply(c Command, r gocent.Reply) Reply {
	if r.Error != nil {
		return Reply{Err: &ReplyError{Code: uint32(max(r.Error.Code, 0)), Message: r.Error.Message}}
	}
	if c.Channels == nil {
		pr, ok := parsePublishResult(r.Result)
		if !ok {
			if err := json.Unmarshal(r.Result, &pr); err != nil {
				return Reply{Err: &ReplyError{Message: "malformed publish result: " + err.Error()}}
			}
		}
		return Reply{Kind: ReplyPublished, Offset: pr.Offset, Epoch: pr.Epoch}
	}
	var br gocent.BroadcastResult
	if len(r.Result) > 0 {
		if err := json.Unmarshal(r.Result, &br); err != nil {
			return Reply{Err: &ReplyError{Message: "malformed broadcast result: " + err.Error()}}
		}
	}
	per := make([]Reply, len(br.Responses))
	for j, p := range br.Responses {
		switch {
		case p.Error != nil:
			per[j].Err = &ReplyError{Code: uint32(max(p.Error.Code, 0)), Message: p.Error.Message}
		case p.Result != nil:
			per[j].Kind, per[j].Offset, per[j].Epoch = ReplyPublished, p.Result.Offset, p.Result.Epoch
		}
	}
	return Reply{Kind: ReplyBroadcast, PerChannel: per}
}

// parsePublishResult reads Centrifugo's usual publish result, {} or
// {"offset":N,"epoch":"E"} in either order, without encoding/json; ok is
// false for anything else (the caller then falls back to encoding/json).
func parsePublishResult(b []byte) (pr gocent.PublishResult, ok bool) {
	if len(b) == 0 {
		return pr, true
	}
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return pr, false
	}
	rest := b[1 : len(b)-1]
	for len(rest) > 0 {
		switch {
		case bytes.HasPrefix(rest, []byte(`"offset":`)):
			rest = rest[len(`"offset":`):]
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				n++
			}
			v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
			if err != nil {
				return pr, false
			}
			pr.Offset, rest = v, rest[n:]
		case bytes.HasPrefix(rest, []byte(`"epoch":"`)):
			rest = rest[len(`"epoch":"`):]
			end := bytes.IndexByte(rest, '"')
			if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
				return pr, false
			}
			pr.Epoch, rest = string(rest[:end]), rest[end+1:]
		default:
			return pr, false
		}
		if len(rest) > 0 {
			if rest[0] != ',' {
				return pr, false
			}
			rest = rest[1:]
		}
	}
	return pr, true
}
