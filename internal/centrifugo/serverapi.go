package centrifugo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// ServerAPI calls the methods of Centrifugo's server API that take access
// away, for the token service's live revocation: unsubscribe, disconnect,
// and presence (who is subscribed). It speaks the same HTTP JSON API as
// HTTPSender (POST <api>/<method>, X-API-Key), unbatched for presence and
// as one /api/batch request for the others.
//
// With several nodes (the API URLs of one Centrifugo whose nodes share a
// broker such as Redis, so that any node unsubscribes, disconnects and
// lists presence for all of them), a call goes to one node, and to the next
// ones in turn while a node is unavailable (not reached, no answer in time,
// 5xx or 429); a refusal or a reply is final. The first node tried is the
// one that answered last, so a node that is down costs its timeout once,
// not on every call.
type ServerAPI struct {
	bases  []string
	key    string
	client *http.Client
	last   atomic.Int32 // index of the node that answered last
}

// NewServerAPI returns a client of the API at apiURLs (e.g.
// http://127.0.0.1:8000/api), preferred in that order, with the API key;
// httpClient sets the timeout of each request to a node.
func NewServerAPI(apiURLs []string, key string, httpClient *http.Client) *ServerAPI {
	bases := make([]string, len(apiURLs))
	for i, u := range apiURLs {
		bases[i] = strings.TrimRight(u, "/")
	}
	return &ServerAPI{bases: bases, key: key, client: httpClient}
}

// Unsubscribe is an unsubscribe command: User (every connection of the
// user) or, for an anonymous connection, User "" and its Client id.
type Unsubscribe struct {
	Channel string `json:"channel"`
	User    string `json:"user"`
	Client  string `json:"client,omitempty"`
}

// Disconnect is a disconnect command: every connection of User is closed
// with Code and Reason (3500-3999 and 4500-4999: clients do not reconnect).
type Disconnect struct {
	User   string
	Code   uint32
	Reason string
}

// AdminCommand is one command of a Revoke batch: exactly one field is set.
type AdminCommand struct {
	Unsubscribe *Unsubscribe
	Disconnect  *Disconnect
}

// MarshalJSON writes the command in /api/batch's form.
func (c AdminCommand) MarshalJSON() ([]byte, error) {
	if c.Disconnect != nil {
		type disconnect struct {
			Code   uint32 `json:"code"`
			Reason string `json:"reason"`
		}
		return json.Marshal(map[string]any{"disconnect": map[string]any{
			"user": c.Disconnect.User, "disconnect": disconnect{c.Disconnect.Code, c.Disconnect.Reason},
		}})
	}
	return json.Marshal(map[string]any{"unsubscribe": c.Unsubscribe})
}

// Revoke sends cmds in one batch request, applied in parallel. It returns
// one error per command (nil when Centrifugo applied it), or a request-level
// *RequestError.
func (a *ServerAPI) Revoke(ctx context.Context, cmds []AdminCommand) ([]error, error) {
	var reply struct {
		Replies []struct {
			Error *ReplyError `json:"error"`
		} `json:"replies"`
	}
	if err := a.call(ctx, "batch", map[string]any{"commands": cmds, "parallel": true}, &reply); err != nil {
		return nil, err
	}
	if len(reply.Replies) != len(cmds) {
		return nil, &RequestError{Err: fmt.Errorf("centrifugo batch: %d replies to %d commands", len(reply.Replies), len(cmds))}
	}
	errs := make([]error, len(cmds))
	for i, r := range reply.Replies {
		if r.Error != nil {
			errs[i] = r.Error
		}
	}
	return errs, nil
}

// ClientInfo is a connection subscribed to a channel, as presence lists it.
type ClientInfo struct {
	User     string          `json:"user"`
	Client   string          `json:"client"`
	ConnInfo json.RawMessage `json:"conn_info,omitempty"`
}

// ErrCodeNotAvailable is Centrifugo's error code when presence is not
// enabled in the channel's namespace.
const ErrCodeNotAvailable = 108

// Presence lists the connections subscribed to channel. Where the
// channel's namespace has no presence, the error is a *ReplyError with
// ErrCodeNotAvailable.
func (a *ServerAPI) Presence(ctx context.Context, channel string) ([]ClientInfo, error) {
	var reply struct {
		Error  *ReplyError `json:"error"`
		Result struct {
			Presence map[string]ClientInfo `json:"presence"`
		} `json:"result"`
	}
	if err := a.call(ctx, "presence", map[string]string{"channel": channel}, &reply); err != nil {
		return nil, err
	}
	if reply.Error != nil {
		return nil, reply.Error
	}
	out := make([]ClientInfo, 0, len(reply.Result.Presence))
	for _, ci := range reply.Result.Presence {
		out = append(out, ci)
	}
	return out, nil
}

// call posts body to <api>/<method> on the first node that answers and
// decodes the answer into reply.
func (a *ServerAPI) call(ctx context.Context, method string, body, reply any) error {
	if len(a.bases) == 0 {
		return &RequestError{Err: errNoNodes}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return &RequestError{Err: fmt.Errorf("centrifugo %s: %w", method, err)}
	}
	first := int(a.last.Load())
	var errs []error
	for i := range a.bases {
		n := (first + i) % len(a.bases)
		err := a.post(ctx, a.bases[n], method, b, reply)
		if err == nil {
			a.last.Store(int32(n))
			return nil
		}
		var re *RequestError
		if !errors.As(err, &re) || !re.Unavailable || ctx.Err() != nil {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", a.bases[n], err))
	}
	return allFailed(errs)
}

// post sends one request to the node at base.
func (a *ServerAPI) post(ctx context.Context, base, method string, body []byte, reply any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+method, bytes.NewReader(body))
	if err != nil {
		return &RequestError{Err: fmt.Errorf("centrifugo %s: %w", method, err)}
	}
	req.Header.Set("X-API-Key", a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return &RequestError{Unavailable: true, Err: err} // names the URL, never the key
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &RequestError{Unavailable: true, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("centrifugo %s: read reply: %w", method, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return &RequestError{Unavailable: unavailableStatus(resp.StatusCode), HTTPStatus: resp.StatusCode,
			Err: fmt.Errorf("centrifugo %s: status %d: %.512s", method, resp.StatusCode, bytes.TrimSpace(data))}
	}
	if err := json.Unmarshal(data, reply); err != nil {
		return &RequestError{HTTPStatus: resp.StatusCode, Err: fmt.Errorf("centrifugo %s: %w", method, err)}
	}
	return nil
}
