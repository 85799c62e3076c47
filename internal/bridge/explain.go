package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/confdefaults"
	"github.com/instant-go/instant/pkg/acl"
)

// Explanation is what the bridge would do with one envelope, decided by the
// handle path's own rules (envelopeRules.prepare and the forwarder's size
// check) without sending anything.
type Explanation struct {
	Subject     string `json:"subject"`
	Producer    string `json:"producer"`
	Forwarded   bool   `json:"forwarded"`
	ID          string `json:"id,omitempty"`
	Code        string `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	Rule        string `json:"rule,omitempty"` // where the channel that refused it is written
	PayloadMode string `json:"payload_mode"`
	// Commands are the Centrifugo commands it would send, in order.
	Commands []ExplainedCommand `json:"commands,omitempty"`
}

// ExplainedCommand is one Centrifugo command, as the bridge would send it.
type ExplainedCommand struct {
	Method         string          `json:"method"` // publish or broadcast
	Channels       []string        `json:"channels"`
	IdempotencyKey string          `json:"idempotency_key"`
	Bytes          int             `json:"bytes"`
	Data           json.RawMessage `json:"data"`
}

// LoadExplainConfig reads the configuration like LoadConfig, but checks
// only what explaining needs (no NATS, no Centrifugo).
func LoadExplainConfig() (Config, error) {
	var c Config
	if err := confdefaults.FromEnv(&c, os.LookupEnv); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	if c.ChannelsFile == "" {
		return c, errors.New("INSTANT_CHANNELS_FILE is empty: set it to the channels file (YAML or JSON)")
	}
	return c, checkSubject("INSTANT_SUBJECT", c.Subject)
}

// Explain decides, as a bridge configured with cfg would, what becomes of
// data received on subject.
func Explain(cfg Config, subject string, data []byte) (Explanation, error) {
	rules, err := newEnvelopeRules(cfg, zap.NewNop())
	if err != nil {
		return Explanation{}, err
	}
	return rules.explain(subject, data, time.Now(), cfg.MaxRequestBytes), nil
}

func (r *envelopeRules) explain(subject string, data []byte, recv time.Time, maxRequest int) Explanation {
	e := Explanation{Subject: subject, PayloadMode: r.mode.String()}
	reg := r.channels.Current()
	producer, err := r.producer(subject)
	e.Producer = producer
	var cmds []centrifugo.Command
	if err == nil {
		e.ID, cmds, err = r.prepare(producer, reg, data, recv, "")
	}
	if err == nil {
		err = centrifugo.CheckSize(&centrifugo.Item{Commands: cmds}, maxRequest)
	}
	if err != nil {
		e.Code, e.Message = reasonCode(err), err.Error()
		var ae *acl.Error
		if errors.As(err, &ae) {
			field := map[string]string{acl.CodeInactiveChannel: "active", acl.CodePublisherDenied: "publishers"}[ae.Code()]
			if src, ok := reg.Source(ae.Channel); ok && field != "" {
				e.Rule = src.At(field)
			}
		}
		return e
	}
	e.Forwarded = true
	for _, c := range cmds {
		ec := ExplainedCommand{Method: "publish", Channels: []string{c.Channel}, IdempotencyKey: c.IdempotencyKey, Bytes: len(c.Data), Data: c.Data}
		if c.Channels != nil {
			ec.Method, ec.Channels = "broadcast", c.Channels
		}
		e.Commands = append(e.Commands, ec)
	}
	return e
}

// WriteText prints the explanation for a person: the verdict on the first
// line, then one line per command.
func (e Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	if !e.Forwarded {
		fmt.Fprintf(&b, "rejected: %s", e.Message)
		if e.Rule != "" {
			dir, _ := filepath.Split(e.Rule)
			fmt.Fprintf(&b, " (%s)", strings.TrimPrefix(e.Rule, dir))
		}
		fmt.Fprintf(&b, "\n  subject %s, producer %q\n", e.Subject, e.Producer)
	} else {
		fmt.Fprintf(&b, "forwarded: %d Centrifugo command(s), payload mode %s, envelope id %s\n", len(e.Commands), e.PayloadMode, e.ID)
		fmt.Fprintf(&b, "  subject %s, producer %q\n", e.Subject, e.Producer)
		for _, c := range e.Commands {
			fmt.Fprintf(&b, "  %s %s (%d bytes, idempotency_key %s): %s\n", c.Method, strings.Join(c.Channels, ","), c.Bytes, c.IdempotencyKey, c.Data)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
