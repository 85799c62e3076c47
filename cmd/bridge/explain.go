package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/instant-go/instant/internal/bridge"
)

// errRejected is explain's "the bridge would reject it": exit status 1, the
// explanation already printed.
var errRejected = errors.New("rejected")

// stdin is where explain reads an envelope given as "-" or not at all.
var stdin io.Reader = os.Stdin

const explainUsage = `Usage: bridge explain [--subject SUBJECT] [--json] [ENVELOPE | -]

Prints what the bridge would do with the envelope (the argument, or stdin),
without sending anything: the reason code and message if it would be
rejected, or the exact Centrifugo commands (method, channels, payload bytes
in INSTANT_PAYLOAD_MODE) if it would be forwarded. It reads the same
INSTANT_* variables and channels file as the bridge. --subject is the NATS
subject it arrives on (default INSTANT_SUBJECT; SUBJECT.<producer> names the
producer). Exit status 0 forwarded, 1 rejected.

`

// explainCommand is "bridge explain".
func explainCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { fmt.Fprint(stdout, explainUsage); fs.PrintDefaults() }
	subject := fs.String("subject", "", "subject the envelope arrives on (default INSTANT_SUBJECT)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	cfg, err := bridge.LoadExplainConfig()
	if err != nil {
		return err
	}
	if *subject == "" {
		*subject = cfg.Subject
	}
	var data []byte
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("explain: give one envelope (quote it), not %d arguments", fs.NArg())
	case fs.NArg() == 1 && fs.Arg(0) != "-":
		data = []byte(fs.Arg(0))
	default:
		// Read one byte more than the limit: the decoder then says too_large.
		if data, err = io.ReadAll(io.LimitReader(stdin, int64(cfg.MaxEnvelopeBytes)+1)); err != nil {
			return fmt.Errorf("explain: read the envelope: %w", err)
		}
	}
	e, err := bridge.Explain(cfg, *subject, data)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(e)
	} else {
		err = e.WriteText(stdout)
	}
	if err == nil && !e.Forwarded {
		err = errRejected
	}
	return err
}
