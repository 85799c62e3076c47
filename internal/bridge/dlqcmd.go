package bridge

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

// DLQCommand runs `bridge dlq ...`.
func DLQCommand(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		_, err := fmt.Fprint(stdout, dlqUsage)
		return err
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("bridge dlq "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		f       dlq.Filter
		all     bool
		limit   int
		asJSON  bool
		fromSeq uint64
		toSeq   uint64
	)
	fs.StringVar(&f.Code, "code", "", "reason code")
	fs.Uint64Var(&fromSeq, "from", 0, "first dead-letter sequence")
	fs.Uint64Var(&toSeq, "to", 0, "last dead-letter sequence")
	fs.BoolVar(&all, "all", false, "every dead letter")
	fs.IntVar(&limit, "limit", 1000, "most dead letters to list (0: all)")
	fs.BoolVar(&asJSON, "json", false, "one JSON object per line")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w\n\n%s", err, dlqUsage)
	}
	f.From, f.To = fromSeq, toSeq

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

	selective := func() error {
		if !all && f == (dlq.Filter{}) {
			return errors.New("say which dead letters: --all, --code C, or --from N [--to M]")
		}
		if all && f != (dlq.Filter{}) {
			return errors.New("--all selects everything: do not combine it with --code, --from or --to")
		}
		return nil
	}
	switch cmd {
	case "list":
		letters, err := store.List(ctx, f, limit)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			for _, l := range letters {
				if err := enc.Encode(letterJSON(l)); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tCODE\tDELIVERIES\tSUBJECT\tID\tREASON")
		for _, l := range letters {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", l.Seq, l.Time.UTC().Format(time.RFC3339), l.Code, l.Deliveries, l.OriginalSubject, l.EnvelopeID, l.Reason)
		}
		return tw.Flush()
	case "show":
		if fs.NArg() != 1 {
			return errors.New("usage: bridge dlq show SEQ")
		}
		seq, err := strconv.ParseUint(fs.Arg(0), 10, 64)
		if err != nil {
			return fmt.Errorf("SEQ %q: %w", fs.Arg(0), err)
		}
		l, err := store.Get(ctx, seq)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(letterJSON(l))
	case "replay":
		if err := selective(); err != nil {
			return err
		}
		seqs, err := store.Replay(ctx, f)
		fmt.Fprintf(stdout, "replayed %d dead letters\n", len(seqs))
		return err
	case "purge":
		if err := selective(); err != nil {
			return err
		}
		n, err := store.Purge(ctx, f)
		fmt.Fprintf(stdout, "purged %d dead letters\n", n)
		return err
	default:
		return fmt.Errorf("unknown dlq command %q\n\n%s", cmd, dlqUsage)
	}
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
	Headers          map[string][]string `json:"headers"`
	Envelope         string              `json:"envelope"`
}

func letterJSON(l dlq.Letter) letterOut {
	return letterOut{
		Seq: l.Seq, Time: l.Time, Code: l.Code, Reason: l.Reason, Deliveries: l.Deliveries,
		OriginalSubject: l.OriginalSubject, OriginalSequence: l.OriginalSequence, EnvelopeID: l.EnvelopeID,
		Headers: l.Header, Envelope: string(l.Data),
	}
}
