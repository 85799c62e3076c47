package tokensvc

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// ErrDenied is explain's answer "denied": the program exits with status 1
// without a message (the explanation was printed).
var ErrDenied = errors.New("denied")

const explainUsage = `Usage: tokensvc explain --user NAME [--channel CH] [--groups g1,g2] [--staff] [--superuser] [--json]
       tokensvc explain --anonymous [--channel CH] [--json]

Says whether the user may subscribe to the channel (every channel without
--channel) and which rule decides, from the files the service reads
(INSTANT_CHANNELS_FILE, INSTANT_USERS_FILE). A user of the users file is
looked up there; --groups, --staff and --superuser describe a user of an
upstream JWT or a proxy instead. Exit status 0 allowed (without --channel:
some channel is), 1 denied.

`

// explainCommand is "tokensvc explain".
func explainCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, explainUsage); fs.PrintDefaults() }
	var q ExplainQuery
	var groups string
	var asJSON bool
	fs.StringVar(&q.User, "user", "", "username (the users file's, or the JWT's or proxy's user)")
	fs.StringVar(&q.Channel, "channel", "", "the channel to decide; empty: every channel")
	fs.StringVar(&groups, "groups", "", "comma-separated groups of an upstream JWT or proxy user")
	fs.BoolVar(&q.Staff, "staff", false, "an upstream JWT user with the staff flag")
	fs.BoolVar(&q.Superuser, "superuser", false, "an upstream JWT user with the superuser flag")
	fs.BoolVar(&q.Anonymous, "anonymous", false, "explain for an anonymous caller")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		q.Attributes = q.Attributes || f.Name == "groups" || f.Name == "staff" || f.Name == "superuser"
	})
	for _, g := range strings.Split(groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			q.Groups = append(q.Groups, g)
		}
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("explain: unexpected argument %q (see tokensvc explain --help)", fs.Arg(0))
	case q.Anonymous == (q.User != ""):
		return errors.New("explain: give --user NAME or --anonymous (see tokensvc explain --help)")
	case q.Anonymous && q.Attributes:
		return errors.New("explain: --anonymous takes no --groups, --staff or --superuser")
	}
	reg, uf, err := loadExplainFiles()
	if err != nil {
		return err
	}
	e := Explain(reg, uf, q)
	if err := writeExplanation(stdout, e, q.Channel != "", asJSON); err != nil {
		return err
	}
	if !e.Allowed {
		return ErrDenied
	}
	return nil
}

// loadExplainFiles reads the channels and users files the service is
// configured with, with the parsers the service uses.
func loadExplainFiles() (*acl.Registry, *users.File, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return nil, nil, err
	}
	if c.ChannelsFile == "" {
		return nil, nil, &ConfigError{Var: "INSTANT_CHANNELS_FILE", Msg: "not set (want the path of the channels file)"}
	}
	data, err := os.ReadFile(c.ChannelsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("INSTANT_CHANNELS_FILE: %w", err)
	}
	reg, err := channelsfile.Parse(c.ChannelsFile, data)
	if err != nil {
		return nil, nil, fmt.Errorf("INSTANT_CHANNELS_FILE: %w", err)
	}
	if c.UsersFile == "" {
		return reg, nil, nil
	}
	if data, err = os.ReadFile(c.UsersFile); err != nil {
		return nil, nil, fmt.Errorf("INSTANT_USERS_FILE: %w", err)
	}
	uf, err := users.Parse(c.UsersFile, data)
	if err != nil {
		return nil, nil, fmt.Errorf("INSTANT_USERS_FILE: %w", err)
	}
	return reg, uf, nil
}

// writeExplanation prints e: JSON, or one line per decision (with, for a
// listing, a first line naming the user).
func writeExplanation(w io.Writer, e Explanation, one, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	}
	var b strings.Builder
	if !one {
		fmt.Fprintf(&b, "%s (%s", e.User, strings.ReplaceAll(e.Source, "_", " "))
		if e.UserSource != "" {
			fmt.Fprintf(&b, ", %s", shortSource(e.UserSource))
		}
		b.WriteString("):\n")
	}
	for _, c := range e.Channels {
		verdict := "denied"
		if c.Allowed {
			verdict = "allowed"
		}
		fmt.Fprintf(&b, "%s: %s\n", verdict, c.Reason)
	}
	if e.Note != "" {
		fmt.Fprintf(&b, "note: %s\n", e.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
