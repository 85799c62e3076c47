// Package dlq owns the dead letters of the bridge's jetstream mode and the
// failure headers they share with rejection notices: it writes them (stream
// creation, headers, truncation to the server's payload limit), lists and
// shows them with their reasons, replays them into the envelope stream once
// the cause is fixed, and purges them.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Letter is one dead letter.
type Letter struct {
	Seq              uint64
	Time             time.Time
	Subject          string
	Code             string
	Reason           string
	Deliveries       int
	OriginalSubject  string
	OriginalSequence uint64
	EnvelopeID       string
	// Truncated is the original size of an envelope too large to be kept
	// whole with its headers; Data is then only its start. 0: not truncated.
	Truncated int
	Header    nats.Header
	Data      []byte
}

// Filter selects dead letters. Zero values select everything.
type Filter struct {
	Code     string // reason code
	From, To uint64 // dead-letter sequence range, inclusive (0: open)
}

func (f Filter) match(l *Letter) bool {
	if f.Code != "" && l.Code != f.Code {
		return false
	}
	if f.From != 0 && l.Seq < f.From {
		return false
	}
	if f.To != 0 && l.Seq > f.To {
		return false
	}
	return true
}

// Store is the dead-letter stream.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
}

// Open finds the dead-letter stream name.
func Open(ctx context.Context, nc *nats.Conn, name string) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s (INSTANT_DLQ): %w", name, err)
	}
	return &Store{js: js, stream: st, name: name}, nil
}

// List returns the dead letters that match f, in sequence order, at most
// limit (0: no limit).
func (s *Store) List(ctx context.Context, f Filter, limit int) ([]Letter, error) {
	var out []Letter
	err := s.each(ctx, f, func(l Letter) (bool, error) {
		out = append(out, l)
		return limit == 0 || len(out) < limit, nil
	})
	return out, err
}

// Get returns one dead letter.
func (s *Store) Get(ctx context.Context, seq uint64) (Letter, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return Letter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return letter(m), nil
}

// each calls fn for every matching letter until fn returns false.
func (s *Store) each(ctx context.Context, f Filter, fn func(Letter) (bool, error)) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return err
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	if f.From > first {
		first = f.From
	}
	if f.To != 0 && f.To < last {
		last = f.To
	}
	if len(info.Config.Subjects) == 0 {
		return fmt.Errorf("dead-letter stream %s has no subjects", s.name)
	}
	subject := info.Config.Subjects[0]
	if f.Code != "" && strings.HasSuffix(subject, ">") {
		// Dead letters are stored on <prefix>.<code>; let the server skip
		// the others.
		subject = strings.TrimSuffix(subject, ">") + f.Code
	}
	for seq := first; seq <= last && seq != 0; {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // nothing at or after seq
		}
		if err != nil {
			return err
		}
		if m.Sequence > last {
			return nil
		}
		l := letter(m)
		if f.match(&l) {
			more, err := fn(l)
			if err != nil || !more {
				return err
			}
		}
		seq = m.Sequence + 1
	}
	return nil
}

func letter(m *jetstream.RawStreamMsg) Letter {
	h := m.Header
	l := Letter{
		Seq: m.Sequence, Time: m.Time, Subject: m.Subject, Header: h, Data: m.Data,
		Code: h.Get(HeaderErrorCode), Reason: h.Get(HeaderError),
		OriginalSubject: h.Get(HeaderOriginalSubject), EnvelopeID: h.Get(HeaderEnvelopeID),
	}
	l.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeliveries))
	l.Truncated, _ = strconv.Atoi(h.Get(HeaderTruncated))
	l.OriginalSequence, _ = strconv.ParseUint(h.Get(HeaderOriginalSequence), 10, 64)
	return l
}

// Replay publishes the matching dead letters back to their original
// subject (so the envelope stream stores them again, with their original
// headers but without the bridge's), waits for JetStream to store each, and
// then deletes the dead letter. Each replay carries Nats-Msg-Id
// "instant-replay-<stream>-<seq>", so if a replay is interrupted between
// storing and deleting, running it again is deduplicated by JetStream
// (within the envelope stream's duplicate window, 2 minutes by default).
// It returns the sequences replayed, and those it kept because their
// envelope was truncated (Letter.Truncated): replaying the start of an
// envelope could only fail, and would delete the one record of it.
func (s *Store) Replay(ctx context.Context, f Filter) (done, kept []uint64, err error) {
	err = s.each(ctx, f, func(l Letter) (bool, error) {
		if l.Truncated > 0 {
			kept = append(kept, l.Seq)
			return true, nil
		}
		if l.OriginalSubject == "" {
			return false, fmt.Errorf("dead letter %d has no %s header: not written by the bridge", l.Seq, HeaderOriginalSubject)
		}
		m := &nats.Msg{Subject: l.OriginalSubject, Data: l.Data, Header: nats.Header{}}
		for k, v := range l.Header {
			if k != HeaderEnvelopeID && Reserved(k) {
				continue
			}
			m.Header[k] = v // the envelope id stays, so the replayed copy keeps it
		}
		m.Header.Set(HeaderReplayedFrom, strconv.FormatUint(l.Seq, 10))
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("instant-replay-%s-%d", s.name, l.Seq))
		if _, err := s.js.PublishMsg(ctx, m); err != nil {
			return false, fmt.Errorf("replay dead letter %d to %s: %w", l.Seq, l.OriginalSubject, err)
		}
		if err := s.stream.DeleteMsg(ctx, l.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, fmt.Errorf("delete replayed dead letter %d: %w", l.Seq, err)
		}
		done = append(done, l.Seq)
		return true, nil
	})
	return done, kept, err
}

// Purge deletes the matching dead letters and returns how many.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	if f == (Filter{}) {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int(info.State.Msgs), s.stream.Purge(ctx)
	}
	n := 0
	err := s.each(ctx, f, func(l Letter) (bool, error) {
		if err := s.stream.DeleteMsg(ctx, l.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, fmt.Errorf("delete dead letter %d: %w", l.Seq, err)
		}
		n++
		return true, nil
	})
	return n, err
}
