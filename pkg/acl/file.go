package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileError is a bad channels file or a bad channel: where and why.
//
// Its Error reads like
//
//	channels.yaml:7: entry 2 ($billing): level: unknown level "admin" (want one of public, users, groups, staff, superuser)
type FileError struct {
	File    string // the name given to Parse; empty from NewRegistry
	Line    int    // 1-based; 0 when unknown
	Entry   int    // 0-based index in the channels list; -1 when not about one entry
	Channel string // the entry's name, when it has one
	Field   string // name, level, active, groups, publishers; empty for the whole entry or file
	Msg     string
	Err     error // the underlying YAML or JSON syntax error, if any
}

func (e *FileError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Entry >= 0 {
		b.WriteString("entry " + strconv.Itoa(e.Entry))
		if e.Channel != "" {
			b.WriteString(" (" + e.Channel + ")")
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying syntax error, if any.
func (e *FileError) Unwrap() error { return e.Err }

// Parse reads a channels file and builds its registry. name is the file's
// name: its extension chooses the format (.yaml or .yml: YAML, .json: JSON)
// and it is quoted in errors. Errors are *FileError.
func Parse(name string, data []byte) (*Registry, error) {
	fileErr := func(line int, format string, args ...any) error {
		return &FileError{File: name, Line: line, Entry: -1, Msg: fmt.Sprintf(format, args...)}
	}
	var (
		root *yaml.Node
		err  error
	)
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".yaml", ".yml", ".json":
	default:
		return nil, fileErr(0, "unsupported channels file format %q (want .yaml, .yml or .json)", ext)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fileErr(0, "file is empty (want a channels key)")
	}
	if ext == ".json" {
		root, err = jsonRoot(data)
	} else {
		root, err = yamlRoot(data)
	}
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			fe.File = name
		}
		return nil, err
	}
	if root == nil {
		return nil, fileErr(0, "file is empty (want a channels key)")
	}
	chs, lines, ferr := decodeFile(root)
	if ferr == nil {
		var r *Registry
		r, ferr = build(chs, lines.at)
		if ferr == nil {
			return r, nil
		}
	}
	ferr.File = name
	return nil, ferr
}

// yamlRoot parses data as YAML and returns its top-level node, nil if the
// document is empty.
func yamlRoot(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, after
				}
			}
		}
		return nil, &FileError{Line: line, Entry: -1, Msg: "invalid YAML: " + msg, Err: err}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// entryLines records where each entry and its fields are, for errors.
type entryLines []struct {
	line   int
	fields map[string]int
}

func (l entryLines) at(entry int, field string) int {
	if entry < 0 || entry >= len(l) {
		return 0
	}
	if n, ok := l[entry].fields[field]; ok {
		return n
	}
	return l[entry].line
}

var entryKeys = []string{"name", "level", "active", "groups", "publishers"}

// decodeFile walks the top-level node of a channels file.
func decodeFile(root *yaml.Node) ([]Channel, entryLines, *FileError) {
	root = deref(root)
	topErr := func(line int, format string, args ...any) *FileError {
		return &FileError{Line: line, Entry: -1, Msg: fmt.Sprintf(format, args...)}
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, topErr(root.Line, "top level: want a mapping with a channels key, got %s", describe(root))
	}
	var list *yaml.Node
	keyLine := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := deref(root.Content[i]), root.Content[i+1]
		if !isString(k) {
			return nil, nil, topErr(k.Line, "top level: want string keys, got %s", describe(k))
		}
		if k.Value != "channels" {
			return nil, nil, topErr(k.Line, "top level: unknown key %q (want channels)%s", k.Value, suggest(k.Value, []string{"channels"}))
		}
		if list != nil {
			return nil, nil, topErr(k.Line, "top level: duplicate key channels (first at line %d)", keyLine)
		}
		list, keyLine = deref(v), k.Line
	}
	if list == nil {
		return nil, nil, topErr(root.Line, "no channels key")
	}
	switch {
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		return nil, nil, topErr(keyLine, "channels: no value (write channels: [] for no channels)")
	case list.Kind != yaml.SequenceNode:
		return nil, nil, topErr(list.Line, "channels: want a list, got %s", describe(list))
	}
	chs := make([]Channel, len(list.Content))
	lines := make(entryLines, len(list.Content))
	for i, item := range list.Content {
		item = deref(item)
		lines[i].line = item.Line
		lines[i].fields = map[string]int{}
		if err := decodeEntry(item, &chs[i], lines[i].fields); err != nil {
			err.Entry = i
			if err.Line == 0 {
				err.Line = item.Line
			}
			return nil, nil, err
		}
	}
	return chs, lines, nil
}

// decodeEntry decodes one entry of the channels list into c, recording the
// line of each field.
func decodeEntry(item *yaml.Node, c *Channel, lines map[string]int) *FileError {
	if item.Kind != yaml.MappingNode {
		return &FileError{Msg: "want a mapping with name and level, got " + describe(item)}
	}
	// The name first, to label errors about the other fields.
	for i := 0; i+1 < len(item.Content); i += 2 {
		if k, v := deref(item.Content[i]), deref(item.Content[i+1]); isString(k) && k.Value == "name" && isString(v) {
			c.Name = v.Value
		}
	}
	c.Active = true
	fail := func(n *yaml.Node, field, format string, args ...any) *FileError {
		return &FileError{Line: n.Line, Channel: c.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := deref(item.Content[i]), deref(item.Content[i+1])
		if !isString(k) {
			return fail(k, "", "want string keys, got %s", describe(k))
		}
		field := k.Value
		if !contains(entryKeys, field) {
			return fail(k, "", "unknown key %q (want one of %s)%s", field, strings.Join(entryKeys, ", "), suggest(field, entryKeys))
		}
		if first, dup := lines[field]; dup {
			return fail(k, field, "duplicate key (first at line %d)", first)
		}
		lines[field] = v.Line
		switch field {
		case "name", "level":
			if !isString(v) {
				return fail(v, field, "want a string, got %s", describe(v))
			}
			if field == "level" {
				if _, err := ParseLevel(v.Value); err != nil {
					return fail(v, field, "%s", err)
				}
				c.Level = Level(v.Value)
			}
		case "active":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				return fail(v, field, "want true or false, got %s", describe(v))
			}
			if err := v.Decode(&c.Active); err != nil {
				return fail(v, field, "want true or false, got %s", describe(v))
			}
		case "groups", "publishers":
			if v.Kind != yaml.SequenceNode {
				return fail(v, field, "want a list of strings, got %s", describe(v))
			}
			list := make([]string, 0, len(v.Content))
			for _, s := range v.Content {
				s = deref(s)
				if !isString(s) {
					return fail(s, field, "want a list of strings, got an item %s", describe(s))
				}
				list = append(list, s.Value)
			}
			if field == "groups" {
				c.Groups = list
			} else {
				c.Publishers = list
			}
		}
	}
	if _, ok := lines["name"]; !ok {
		return fail(item, "name", "missing")
	}
	return nil
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isString(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!str" }

// describe names what n is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int", "!!float":
			return "number " + n.Value + " (quote it to make it a string)"
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.Tag, n.Value)
	}
	return "nothing"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean "x"?)` when s is a likely typo of one of
// known.
func suggest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(s), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance between two short strings.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 64
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// jsonRoot parses data as JSON into the same node tree as YAML, with lines.
func jsonRoot(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := jsonParser{dec: dec, data: data}
	root, err := p.value()
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return root, nil
		} else if err == nil {
			err = errors.New("unexpected data after the top-level value")
		}
	}
	return nil, p.fail(err)
}

type jsonParser struct {
	dec  *json.Decoder
	data []byte
}

// line returns the line of the next token.
func (p *jsonParser) line() int {
	off := int(p.dec.InputOffset())
	for off < len(p.data) && strings.IndexByte(" \t\r\n:,", p.data[off]) >= 0 {
		off++
	}
	return 1 + bytes.Count(p.data[:min(off, len(p.data))], []byte("\n"))
}

func (p *jsonParser) fail(err error) error {
	line := p.line()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line = 1 + bytes.Count(p.data[:min(int(se.Offset), len(p.data))], []byte("\n"))
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = io.ErrUnexpectedEOF
	}
	return &FileError{Line: line, Entry: -1, Msg: "invalid JSON: " + err.Error(), Err: err}
}

func (p *jsonParser) value() (*yaml.Node, error) {
	line := p.line()
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Line: line}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			for p.dec.More() {
				k, err := p.value()
				if err != nil {
					return nil, err
				}
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k, v)
			}
		case '[':
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			for p.dec.More() {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
		default:
			return nil, fmt.Errorf("unexpected %q", t)
		}
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.Tag, n.Value = "!!str", t
	case json.Number:
		n.Tag, n.Value = "!!int", t.String()
		if strings.ContainsAny(n.Value, ".eE") {
			n.Tag = "!!float"
		}
	case bool:
		n.Tag, n.Value = "!!bool", strconv.FormatBool(t)
	case nil:
		n.Tag, n.Value = "!!null", "null"
	}
	return n, nil
}
