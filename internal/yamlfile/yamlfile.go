// Package yamlfile reads the project's list files, YAML or JSON made of one
// top-level key holding a list of mappings (the channels file, the users
// file), with errors that say file, line, entry and field.
//
// It is pure, like the packages that use it: no I/O, no logging, no globals.
package yamlfile

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a bad file or a bad entry: where and why.
//
// Its Error reads like
//
//	channels.yaml:7: entry 2 ($billing): level: unknown level "admin"
type Error struct {
	File  string // the name given to Decode
	Line  int    // 1-based; 0 when unknown
	Entry int    // 0-based index in the list; -1 when not about one entry
	Label string // the entry's label (its Format.Label field), when it has one
	Field string // the entry's field; empty for the whole entry or file
	Msg   string
	Err   error // the underlying YAML or JSON syntax error, if any
}

func (e *Error) Error() string {
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
		if e.Label != "" {
			b.WriteString(" (" + e.Label + ")")
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
func (e *Error) Unwrap() error { return e.Err }

// Format describes one kind of list file.
type Format struct {
	Key    string   // the top-level key, which also names the file in errors: "channels"
	Fields []string // the keys an entry may have, in the order errors list them
	Label  string   // the required field whose string value labels errors about its entry: "name"
	Needs  string   // what an entry needs, for "want a mapping with ...": "name and level"

	// Hints makes errors more helpful: they suggest the likely key for a
	// misspelt one, say that a number can be quoted to make it a string, and
	// say "want string keys" for a top-level key that is not a string.
	Hints bool
}

// Lines says where each entry of the list, and each of its fields, is.
type Lines []struct {
	line   int
	fields map[string]int
}

// At returns the line of field in entry, the entry's line if the field is
// not there, and 0 for no such entry.
func (l Lines) At(entry int, field string) int {
	if entry < 0 || entry >= len(l) {
		return 0
	}
	if n, ok := l[entry].fields[field]; ok {
		return n
	}
	return l[entry].line
}

// Decode reads data, the contents of the file called name, whose extension
// chooses the syntax (.yaml or .yml: YAML, .json: JSON, read with a JSON
// decoder into the same node tree, with lines; a UTF-8 byte order mark is
// dropped first). It checks the top
// level and that each entry is a mapping, then calls decode for each entry,
// in order, to fill the entry's T (usually with [Entry.Fields]). It returns
// the entries and their lines, or the first error, with File set to name.
func Decode[T any](f *Format, name string, data []byte, decode func(t *T, e *Entry) *Error) ([]T, Lines, *Error) {
	root, err := f.root(name, data)
	if err == nil {
		var (
			out   []T
			lines Lines
		)
		out, lines, err = decodeList(f, root, decode)
		if err == nil {
			return out, lines, nil
		}
	}
	err.File = name
	return nil, nil, err
}

// root parses data and returns its top-level node.
func (f *Format) root(name string, data []byte) (*yaml.Node, *Error) {
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".yaml", ".yml", ".json":
	default:
		return nil, topError(0, "unsupported %s file format %q (want .yaml, .yml or .json)", f.Key, ext)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	empty := topError(0, "file is empty (want a %s key)", f.Key)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, empty
	}
	var (
		root *yaml.Node
		err  *Error
	)
	if ext == ".json" {
		root, err = jsonRoot(data)
	} else {
		root, err = yamlRoot(data)
	}
	if err == nil && root == nil {
		err = empty
	}
	return root, err
}

func topError(line int, format string, args ...any) *Error {
	return &Error{Line: line, Entry: -1, Msg: fmt.Sprintf(format, args...)}
}

// yamlRoot parses data as YAML and returns its top-level node, nil if the
// document is empty.
func yamlRoot(data []byte) (*yaml.Node, *Error) {
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
		return nil, &Error{Line: line, Entry: -1, Msg: "invalid YAML: " + msg, Err: err}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// decodeList walks the top-level node: a mapping whose only key is f.Key,
// holding a list of entries.
func decodeList[T any](f *Format, root *yaml.Node, decode func(t *T, e *Entry) *Error) ([]T, Lines, *Error) {
	root = Deref(root)
	if root.Kind != yaml.MappingNode {
		return nil, nil, topError(root.Line, "top level: want a mapping with a %s key, got %s", f.Key, f.Describe(root))
	}
	var list *yaml.Node
	keyLine := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := Deref(root.Content[i]), root.Content[i+1]
		switch {
		case !f.Hints && (!IsString(k) || k.Value != f.Key):
			return nil, nil, topError(k.Line, "top level: unknown key %s (want %s)", f.Describe(k), f.Key)
		case !IsString(k):
			return nil, nil, topError(k.Line, "top level: want string keys, got %s", f.Describe(k))
		case k.Value != f.Key:
			return nil, nil, topError(k.Line, "top level: unknown key %q (want %s)%s", k.Value, f.Key, suggest(k.Value, []string{f.Key}))
		}
		if list != nil {
			return nil, nil, topError(k.Line, "top level: duplicate key %s (first at line %d)", f.Key, keyLine)
		}
		list, keyLine = Deref(v), k.Line
	}
	switch {
	case list == nil:
		return nil, nil, topError(root.Line, "no %s key", f.Key)
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		return nil, nil, topError(keyLine, "%s: no value (write %[1]s: [] for no %[1]s)", f.Key)
	case list.Kind != yaml.SequenceNode:
		return nil, nil, topError(list.Line, "%s: want a list, got %s", f.Key, f.Describe(list))
	}
	out := make([]T, len(list.Content))
	lines := make(Lines, len(list.Content))
	for i, item := range list.Content {
		item = Deref(item)
		lines[i].line = item.Line
		lines[i].fields = map[string]int{}
		if err := decodeEntry(f, i, item, lines[i].fields, &out[i], decode); err != nil {
			err.Entry = i
			if err.Line == 0 {
				err.Line = item.Line
			}
			return nil, nil, err
		}
	}
	return out, lines, nil
}

func decodeEntry[T any](f *Format, i int, item *yaml.Node, lines map[string]int, t *T, decode func(t *T, e *Entry) *Error) *Error {
	if item.Kind != yaml.MappingNode {
		return &Error{Msg: "want a mapping with " + f.Needs + ", got " + f.Describe(item)}
	}
	e := &Entry{Index: i, Node: item, format: f, lines: lines}
	// The label first, to label errors about the other fields.
	for i := 0; i+1 < len(item.Content); i += 2 {
		if k, v := Deref(item.Content[i]), Deref(item.Content[i+1]); IsString(k) && k.Value == f.Label && IsString(v) {
			e.Label = v.Value
		}
	}
	return decode(t, e)
}
