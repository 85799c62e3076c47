package users

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FileError is a bad users file or a bad entry: where and why. It never
// quotes a password hash.
//
// Its Error reads like
//
//	users.yaml:7: entry 1 (bob): staff: want true or false, got string "yes"
type FileError struct {
	File  string // the name given to Parse; empty from New
	Line  int    // 1-based; 0 when unknown
	Entry int    // 0-based index in the users list; -1 when not about one entry
	User  string // the entry's username, when it has one
	Field string // username, password_hash, id, groups, staff, superuser
	Msg   string
	Err   error // the underlying syntax error, if any
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
		if e.User != "" {
			b.WriteString(" (" + e.User + ")")
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

var entryKeys = []string{"username", "password_hash", "id", "groups", "staff", "superuser"}

// Parse reads a users file, YAML (.yaml, .yml) or JSON (.json) by the
// extension of name, which is quoted in errors:
//
//	users:
//	  - username: alice
//	    password_hash: "$2a$12$..."
//	    groups: [group1]
//	    id: "42"           # optional, default the username
//	    staff: false       # optional
//	    superuser: false   # optional
//
// Errors are *FileError.
func Parse(name string, data []byte) (*File, error) {
	top := func(line int, format string, args ...any) error {
		return &FileError{File: name, Line: line, Entry: -1, Msg: fmt.Sprintf(format, args...)}
	}
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".yaml", ".yml":
	case ".json":
		if !json.Valid(data) {
			var v any
			err := json.Unmarshal(data, &v)
			line := 0
			if se, ok := err.(*json.SyntaxError); ok {
				line = 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			}
			return nil, &FileError{File: name, Line: line, Entry: -1, Msg: fmt.Sprintf("invalid JSON: %v", err), Err: err}
		}
	default:
		return nil, top(0, "unsupported users file format %q (want .yaml, .yml or .json)", ext)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, top(0, "file is empty (want a users key)")
	}
	// JSON is read with the YAML parser too (after the check above), for
	// line numbers.
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
		return nil, &FileError{File: name, Line: line, Entry: -1, Msg: "invalid syntax: " + msg, Err: err}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, top(0, "file is empty (want a users key)")
	}
	list, lines, ferr := decodeFile(doc.Content[0])
	if ferr == nil {
		var f *File
		f, ferr = build(list, lines.at)
		if ferr == nil {
			return f, nil
		}
	}
	ferr.File = name
	return nil, ferr
}

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

func decodeFile(root *yaml.Node) ([]User, entryLines, *FileError) {
	root = deref(root)
	top := func(line int, format string, args ...any) *FileError {
		return &FileError{Line: line, Entry: -1, Msg: fmt.Sprintf(format, args...)}
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, top(root.Line, "top level: want a mapping with a users key, got %s", describe(root))
	}
	var list *yaml.Node
	keyLine := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := deref(root.Content[i]), root.Content[i+1]
		if !isString(k) || k.Value != "users" {
			return nil, nil, top(k.Line, "top level: unknown key %s (want users)", describe(k))
		}
		if list != nil {
			return nil, nil, top(k.Line, "top level: duplicate key users (first at line %d)", keyLine)
		}
		list, keyLine = deref(v), k.Line
	}
	switch {
	case list == nil:
		return nil, nil, top(root.Line, "no users key")
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		return nil, nil, top(keyLine, "users: no value (write users: [] for no users)")
	case list.Kind != yaml.SequenceNode:
		return nil, nil, top(list.Line, "users: want a list, got %s", describe(list))
	}
	out := make([]User, len(list.Content))
	lines := make(entryLines, len(list.Content))
	for i, item := range list.Content {
		item = deref(item)
		lines[i].line = item.Line
		lines[i].fields = map[string]int{}
		if err := decodeEntry(item, &out[i], lines[i].fields); err != nil {
			err.Entry = i
			if err.Line == 0 {
				err.Line = item.Line
			}
			return nil, nil, err
		}
	}
	return out, lines, nil
}

func decodeEntry(item *yaml.Node, u *User, lines map[string]int) *FileError {
	if item.Kind != yaml.MappingNode {
		return &FileError{Msg: "want a mapping with username and password_hash, got " + describe(item)}
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		if k, v := deref(item.Content[i]), deref(item.Content[i+1]); isString(k) && k.Value == "username" && isString(v) {
			u.Username = v.Value
		}
	}
	fail := func(n *yaml.Node, field, format string, args ...any) *FileError {
		return &FileError{Line: n.Line, User: u.Username, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := deref(item.Content[i]), deref(item.Content[i+1])
		if !isString(k) {
			return fail(k, "", "want string keys, got %s", describe(k))
		}
		field := k.Value
		known := false
		for _, e := range entryKeys {
			known = known || e == field
		}
		if !known {
			return fail(k, "", "unknown key %q (want one of %s)", field, strings.Join(entryKeys, ", "))
		}
		if first, dup := lines[field]; dup {
			return fail(k, field, "duplicate key (first at line %d)", first)
		}
		lines[field] = v.Line
		switch field {
		case "username", "password_hash":
			if !isString(v) {
				if field == "password_hash" {
					return fail(v, field, "want a string") // never echo what could be a secret
				}
				return fail(v, field, "want a string, got %s", describe(v))
			}
			if field == "password_hash" {
				u.PasswordHash = v.Value
			}
		case "id":
			if !isString(v) && !(v.Kind == yaml.ScalarNode && v.Tag == "!!int") {
				return fail(v, field, "want a string, got %s", describe(v))
			}
			u.ID = v.Value
		case "staff", "superuser":
			var b bool
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
				return fail(v, field, "want true or false, got %s", describe(v))
			}
			if field == "staff" {
				u.Staff = b
			} else {
				u.Superuser = b
			}
		case "groups":
			if v.Kind != yaml.SequenceNode {
				return fail(v, field, "want a list of strings, got %s", describe(v))
			}
			for _, s := range v.Content {
				s = deref(s)
				if !isString(s) {
					return fail(s, field, "want a list of strings, got an item %s", describe(s))
				}
				u.Groups = append(u.Groups, s.Value)
			}
		}
	}
	if _, ok := lines["username"]; !ok {
		return fail(item, "username", "missing")
	}
	if _, ok := lines["password_hash"]; !ok {
		return fail(item, "password_hash", "missing (make one with: tokensvc hash-password)")
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isString(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!str" }

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
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.Tag, n.Value)
	}
	return "nothing"
}
