package yamlfile

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Entry is one entry of the list, a mapping, as Decode hands it over.
type Entry struct {
	Index int        // 0-based index in the list
	Node  *yaml.Node // the mapping
	Label string     // the value of the Format.Label field, if a string

	format *Format
	lines  map[string]int // field: line, of the fields seen so far
}

// Fields calls field for each key of the entry, in order, with its value
// (aliases followed), once it has checked that the key is a string, one of
// the Format's Fields and not a repeat. Then it checks that the entry has
// its Label field. It returns the first error.
func (e *Entry) Fields(field func(key string, v *yaml.Node) *Error) *Error {
	f := e.format
	for i := 0; i+1 < len(e.Node.Content); i += 2 {
		k, v := Deref(e.Node.Content[i]), Deref(e.Node.Content[i+1])
		if !IsString(k) {
			return e.Fail(k, "", "want string keys, got %s", f.Describe(k))
		}
		key := k.Value
		if !slices.Contains(f.Fields, key) {
			hint := ""
			if f.Hints {
				hint = suggest(key, f.Fields)
			}
			return e.Fail(k, "", "unknown key %q (want one of %s)%s", key, strings.Join(f.Fields, ", "), hint)
		}
		if first, dup := e.lines[key]; dup {
			return e.Fail(k, key, "duplicate key (first at line %d)", first)
		}
		e.lines[key] = v.Line
		if err := field(key, v); err != nil {
			return err
		}
	}
	if !e.Has(f.Label) {
		return e.Fail(e.Node, f.Label, "missing")
	}
	return nil
}

// Has reports whether Fields has seen field.
func (e *Entry) Has(field string) bool {
	_, ok := e.lines[field]
	return ok
}

// Fail returns an error about field of the entry, at the line of n.
func (e *Entry) Fail(n *yaml.Node, field, format string, args ...any) *Error {
	return &Error{Line: n.Line, Entry: e.Index, Label: e.Label, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Describe names what n is, for "want X, got Y" messages.
func (e *Entry) Describe(n *yaml.Node) string { return e.format.Describe(n) }

// Bool decodes v, the value of field, as true or false.
func (e *Entry) Bool(field string, v *yaml.Node) (bool, *Error) {
	var b bool
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
		return false, e.Fail(v, field, "want true or false, got %s", e.Describe(v))
	}
	return b, nil
}

// Strings decodes v, the value of field, as a list of strings (never nil).
func (e *Entry) Strings(field string, v *yaml.Node) ([]string, *Error) {
	if v.Kind != yaml.SequenceNode {
		return nil, e.Fail(v, field, "want a list of strings, got %s", e.Describe(v))
	}
	list := make([]string, 0, len(v.Content))
	for _, s := range v.Content {
		s = Deref(s)
		if !IsString(s) {
			return nil, e.Fail(s, field, "want a list of strings, got an item %s", e.Describe(s))
		}
		list = append(list, s.Value)
	}
	return list, nil
}
