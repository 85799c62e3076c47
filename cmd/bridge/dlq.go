package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"

	"github.com/instant-go/instant/internal/dlq"
	"github.com/instant-go/instant/internal/natsbus"
)

// dlqConfig is the part of Config the dlq commands need.
type dlqConfig struct {
	NATSURL     string `envconfig:"INSTANT_NATS_URL" default:"nats://127.0.0.1:4222"`
	NATSCreds   string `envconfig:"INSTANT_NATS_CREDS"`
	NATSNKey    string `envconfig:"INSTANT_NATS_NKEY"`
	NATSUser    string `envconfig:"INSTANT_NATS_USER"`
	NATSPass    string `envconfig:"INSTANT_NATS_PASSWORD"`
	NATSToken   string `envconfig:"INSTANT_NATS_TOKEN"`
	NATSTLSCA   string `envconfig:"INSTANT_NATS_TLS_CA"`
	NATSTLSCert string `envconfig:"INSTANT_NATS_TLS_CERT"`
	NATSTLSKey  string `envconfig:"INSTANT_NATS_TLS_KEY"`
	DLQ         string `envconfig:"INSTANT_DLQ" default:"INSTANT_DLQ"`
}

const dlqUsage = `Usage: bridge dlq <command> [flags]

Operate the dead-letter stream of the jetstream delivery mode (INSTANT_DLQ),
with the same INSTANT_NATS_* settings as the bridge.

Commands:
  list     [--code C] [--from N] [--to M] [--limit N] [--json]   list dead letters and their reasons
  show     SEQ                                                  one dead letter with headers and body
  replay   (--all | --code C | --from N [--to M])               publish them back to their subject, then delete them
  purge    (--all | --code C | --from N [--to M])               delete them

Replay after fixing the cause (channel file, Centrifugo); a replayed envelope
is stored in the envelope stream again and forwarded by the bridges. Running
the same replay twice does not duplicate: replayed dead letters are deleted,
and each replay carries a Nats-Msg-Id that JetStream deduplicates.
`

// dlqArgs is a parsed `bridge dlq` command line.
type dlqArgs struct {
	cmd    string
	filter dlq.Filter
	all    bool
	limit  int
	asJSON bool
	rest   []string
}

// parseDLQArgs parses `bridge dlq <command> [flags]`; ok is false for help.
func parseDLQArgs(args []string) (a dlqArgs, ok bool, err error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return a, false, nil
	}
	a.cmd = args[0]
	fs := flag.NewFlagSet("bridge dlq "+a.cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.filter.Code, "code", "", "reason code")
	fs.Uint64Var(&a.filter.From, "from", 0, "first dead-letter sequence")
	fs.Uint64Var(&a.filter.To, "to", 0, "last dead-letter sequence")
	fs.BoolVar(&a.all, "all", false, "every dead letter")
	fs.IntVar(&a.limit, "limit", 1000, "most dead letters to list (0: all)")
	fs.BoolVar(&a.asJSON, "json", false, "one JSON object per line")
	if err := fs.Parse(args[1:]); err != nil {
		return a, true, fmt.Errorf("%w\n\n%s", err, dlqUsage)
	}
	a.rest = fs.Args()
	switch a.cmd {
	case "list":
	case "show":
		if len(a.rest) != 1 {
			return a, true, errors.New("usage: bridge dlq show SEQ")
		}
	case "replay", "purge":
		if !a.all && a.filter == (dlq.Filter{}) {
			return a, true, errors.New("say which dead letters: --all, --code C, or --from N [--to M]")
		}
		if a.all && a.filter != (dlq.Filter{}) {
			return a, true, errors.New("--all selects everything: do not combine it with --code, --from or --to")
		}
	default:
		return a, true, fmt.Errorf("unknown dlq command %q\n\n%s", a.cmd, dlqUsage)
	}
	return a, true, nil
}

// dlqCommand runs `bridge dlq ...`: the arguments are handled here, the
// operations are internal/dlq's.
func dlqCommand(ctx context.Context, args []string, stdout io.Writer) error {
	a, ok, err := parseDLQArgs(args)
	if err != nil {
		return err
	}
	if !ok {
		_, err := fmt.Fprint(stdout, dlqUsage)
		return err
	}
	var cfg dlqConfig
	if err := envconfig.Process("", &cfg); err != nil {
		return err
	}
	nc, err := natsbus.Connect(natsbus.Config{
		URL: cfg.NATSURL, Name: "instant-bridge-dlq", CredsFile: cfg.NATSCreds, NKeyFile: cfg.NATSNKey,
		User: cfg.NATSUser, Password: cfg.NATSPass, Token: cfg.NATSToken,
		TLSCA: cfg.NATSTLSCA, TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey,
	}, zap.NewNop(), nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	store, err := dlq.Open(ctx, nc, cfg.DLQ)
	if err != nil {
		return err
	}
	return a.run(ctx, store, stdout)
}

func (a dlqArgs) run(ctx context.Context, store *dlq.Store, stdout io.Writer) error {
	switch a.cmd {
	case "list":
		letters, err := store.List(ctx, a.filter, a.limit)
		if err != nil {
			return err
		}
		return printLetters(stdout, letters, a.asJSON)
	case "show":
		seq, err := strconv.ParseUint(a.rest[0], 10, 64)
		if err != nil {
			return fmt.Errorf("SEQ %q: %w", a.rest[0], err)
		}
		l, err := store.Get(ctx, seq)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(letterJSON(l))
	case "replay":
		seqs, kept, err := store.Replay(ctx, a.filter)
		fmt.Fprintf(stdout, "replayed %d dead letters\n", len(seqs))
		if len(kept) > 0 {
			fmt.Fprintf(stdout, "kept %d truncated dead letters (%v): only the start of their envelope was stored; see bridge dlq show, purge them when handled\n", len(kept), kept)
		}
		return err
	default: // purge
		n, err := store.Purge(ctx, a.filter)
		fmt.Fprintf(stdout, "purged %d dead letters\n", n)
		return err
	}
}

func printLetters(w io.Writer, letters []dlq.Letter, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, l := range letters {
			if err := enc.Encode(letterJSON(l)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCODE\tDELIVERIES\tSUBJECT\tID\tREASON")
	for _, l := range letters {
		reason := l.Reason
		if l.Truncated > 0 {
			reason = fmt.Sprintf("[truncated: %d of %d bytes kept] %s", len(l.Data), l.Truncated, reason)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", l.Seq, l.Time.UTC().Format(time.RFC3339), l.Code, l.Deliveries, l.OriginalSubject, l.EnvelopeID, reason)
	}
	return tw.Flush()
}

type letterOut struct {
	Seq              uint64              `json:"seq"`
	Time             time.Time           `json:"time"`
	Code             string              `json:"code"`
	Reason           string              `json:"reason"`
	Deliveries       int                 `json:"deliveries"`
	OriginalSubject  string              `json:"original_subject"`
	OriginalSequence uint64              `json:"original_sequence"`
	EnvelopeID       string              `json:"envelope_id,omitempty"`
	Truncated        int                 `json:"truncated_from_bytes,omitempty"`
	Headers          map[string][]string `json:"headers"`
	Envelope         string              `json:"envelope"`
}

func letterJSON(l dlq.Letter) letterOut {
	return letterOut{
		Seq: l.Seq, Time: l.Time, Code: l.Code, Reason: l.Reason, Deliveries: l.Deliveries,
		OriginalSubject: l.OriginalSubject, OriginalSequence: l.OriginalSequence, EnvelopeID: l.EnvelopeID,
		Truncated: l.Truncated, Headers: l.Header, Envelope: string(l.Data),
	}
}
