package yamlfile_test

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/instant-go/instant/internal/yamlfile"
)

type thing struct {
	Name string
	Size string
	On   bool
	Tags []string
}

func format(hints bool) *yamlfile.Format {
	return &yamlfile.Format{
		Key:    "things",
		Fields: []string{"name", "size", "on", "tags"},
		Label:  "name",
		Needs:  "name and size",
		Hints:  hints,
	}
}

func decodeThing(t *thing, e *yamlfile.Entry) *yamlfile.Error {
	t.Name = e.Label
	err := e.Fields(func(field string, v *yaml.Node) *yamlfile.Error {
		var err *yamlfile.Error
		switch field {
		case "name", "size":
			if !yamlfile.IsString(v) {
				return e.Fail(v, field, "want a string, got %s", e.Describe(v))
			}
			if field == "size" {
				t.Size = v.Value
			}
		case "on":
			t.On, err = e.Bool(field, v)
		case "tags":
			t.Tags, err = e.Strings(field, v)
		}
		return err
	})
	if err == nil && !e.Has("size") {
		err = e.Fail(e.Node, "size", "missing")
	}
	return err
}

const thingsYAML = `things:
  - name: a
    size: big
    on: true
    tags: &t [x, y]
  - size: small
    tags: *t
    name: b
`

const thingsJSON = `{"things": [
  {"name": "a", "size": "big", "on": true, "tags": ["x", "y"]},
  {"size": "small",
   "tags": ["x", "y"], "name": "b"}
]}`

func TestDecode(t *testing.T) {
	want := []thing{
		{Name: "a", Size: "big", On: true, Tags: []string{"x", "y"}},
		{Name: "b", Size: "small", Tags: []string{"x", "y"}},
	}
	for _, tc := range []struct {
		name, file, data string
		nameLine         int // want Lines.At(1, "name")
	}{
		{"yaml", "t.yaml", thingsYAML, 8},
		{"yml upper case", "T.YML", thingsYAML, 8},
		{"yaml with a BOM", "t.yaml", "\ufeff" + thingsYAML, 8},
		{"json", "t.json", thingsJSON, 4},
		{"json with a BOM", "t.json", "\ufeff" + thingsJSON, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, lines, err := yamlfile.Decode(format(false), tc.file, []byte(tc.data), decodeThing)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if l := lines.At(1, "name"); l != tc.nameLine {
				t.Errorf("Lines.At(1, name) = %d, want %d", l, tc.nameLine)
			}
		})
	}
}

func TestDecodeEmptyList(t *testing.T) {
	for _, file := range []string{"t.yaml", "t.json"} {
		got, lines, err := yamlfile.Decode(format(true), file, []byte(`{"things": []}`), decodeThing)
		if err != nil || len(got) != 0 || len(lines) != 0 {
			t.Errorf("%s: got %v, %v, %v; want no entries and no error", file, got, lines, err)
		}
	}
}

func TestLinesAt(t *testing.T) {
	_, lines, err := yamlfile.Decode(format(true), "t.yaml", []byte("things:\n  - name: a\n\n    size: s\n"), decodeThing)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		entry int
		field string
		want  int
	}{
		{0, "name", 2},
		{0, "size", 4},
		{0, "tags", 2}, // not there: the entry's line
		{1, "name", 0}, // no such entry
		{-1, "name", 0},
	} {
		if got := lines.At(tc.entry, tc.field); got != tc.want {
			t.Errorf("At(%d, %q) = %d, want %d", tc.entry, tc.field, got, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	const (
		plain = iota // without Hints
		hints
	)
	tests := []struct {
		name  string
		mode  int
		file  string
		data  string
		line  int
		entry int
		field string
		want  string // the whole Error()
	}{
		{"unsupported format", plain, "t.toml", "things = []", 0, -1, "", `t.toml: unsupported things file format ".toml" (want .yaml, .yml or .json)`},
		{"empty", plain, "t.yaml", " \n", 0, -1, "", "t.yaml: file is empty (want a things key)"},
		{"comments only", plain, "t.yaml", "# x\n", 0, -1, "", "t.yaml: file is empty (want a things key)"},
		{"bom only", plain, "t.json", "\ufeff", 0, -1, "", "t.json: file is empty (want a things key)"},
		{"yaml syntax", plain, "t.yaml", "things: [\n", 1, -1, "", "t.yaml:1: invalid YAML: did not find expected node content"},
		{"json truncated", plain, "t.json", "{\"things\": [\n\n", 3, -1, "", "t.json:3: invalid JSON: unexpected EOF"},
		{"json trailing data", plain, "t.json", "{\"things\": []}\n{}", 2, -1, "", "t.json:2: invalid JSON: unexpected data after the top-level value"},
		{"top level not a mapping", hints, "t.yaml", "- a\n", 1, -1, "", "t.yaml:1: top level: want a mapping with a things key, got a list"},
		{"top level number", hints, "t.yaml", "7\n", 1, -1, "", "t.yaml:1: top level: want a mapping with a things key, got number 7 (quote it to make it a string)"},
		{"top level number without hints", plain, "t.yaml", "7\n", 1, -1, "", "t.yaml:1: top level: want a mapping with a things key, got number 7"},
		{"typo in key", hints, "t.yaml", "thigns: []\n", 1, -1, "", `t.yaml:1: top level: unknown key "thigns" (want things) (did you mean "things"?)`},
		{"other key", hints, "t.yaml", "things: []\nstuff: 1\n", 2, -1, "", `t.yaml:2: top level: unknown key "stuff" (want things)`},
		{"typo in key without hints", plain, "t.yaml", "thigns: []\n", 1, -1, "", `t.yaml:1: top level: unknown key string "thigns" (want things)`},
		{"number key", hints, "t.yaml", "1: []\n", 1, -1, "", "t.yaml:1: top level: want string keys, got number 1 (quote it to make it a string)"},
		{"number key without hints", plain, "t.yaml", "1: []\n", 1, -1, "", "t.yaml:1: top level: unknown key number 1 (want things)"},
		{"duplicate key", plain, "t.yaml", "things: []\n\nthings: []\n", 3, -1, "", "t.yaml:3: top level: duplicate key things (first at line 1)"},
		{"no key", plain, "t.json", "{\n}", 1, -1, "", "t.json:1: no things key"},
		{"no value", plain, "t.yaml", "\nthings:\n", 2, -1, "", "t.yaml:2: things: no value (write things: [] for no things)"},
		{"json null", plain, "t.json", `{"things": null}`, 1, -1, "", "t.json:1: things: no value (write things: [] for no things)"},
		{"not a list", plain, "t.yaml", "things:\n  name: a\n", 2, -1, "", "t.yaml:2: things: want a list, got a mapping"},
		{"alias to a non-list", plain, "t.yaml", "things: &x 3\n", 1, -1, "", "t.yaml:1: things: want a list, got number 3"},
		{"entry not a mapping", plain, "t.yaml", "things:\n  - a\n", 2, 0, "", `t.yaml:2: entry 0: want a mapping with name and size, got string "a"`},
		{"entry null", plain, "t.json", "{\"things\": [\n{\"name\": \"a\", \"size\": \"s\"},\nnull]}", 3, 1, "", "t.json:3: entry 1: want a mapping with name and size, got null"},
		{"entry key not a string", plain, "t.yaml", "things:\n  - name: a\n    [x]: 1\n", 3, 0, "", "t.yaml:3: entry 0 (a): want string keys, got a list"},
		{"entry unknown key", hints, "t.yaml", "things:\n  - name: a\n    szie: s\n", 3, 0, "", `t.yaml:3: entry 0 (a): unknown key "szie" (want one of name, size, on, tags) (did you mean "size"?)`},
		{"entry unknown key without hints", plain, "t.yaml", "things:\n  - name: a\n    szie: s\n", 3, 0, "", `t.yaml:3: entry 0 (a): unknown key "szie" (want one of name, size, on, tags)`},
		{"entry unknown key, no close match", hints, "t.yaml", "things:\n  - name: a\n    colour: red\n", 3, 0, "", `t.yaml:3: entry 0 (a): unknown key "colour" (want one of name, size, on, tags)`},
		{"entry duplicate key", plain, "t.yaml", "things:\n  - name: a\n    size: s\n    size: m\n", 4, 0, "size", "t.yaml:4: entry 0 (a): size: duplicate key (first at line 3)"},
		{"label used before its line", plain, "t.yaml", "things:\n  - size: 3\n    name: a\n", 2, 0, "size", "t.yaml:2: entry 0 (a): size: want a string, got number 3"},
		{"label missing", plain, "t.yaml", "things:\n  - name: a\n    size: s\n  - size: s\n", 4, 1, "name", "t.yaml:4: entry 1: name: missing"},
		{"label missing before the caller's check", plain, "t.yaml", "things:\n  - on: true\n", 2, 0, "name", "t.yaml:2: entry 0: name: missing"},
		{"caller's check", plain, "t.yaml", "things:\n  - name: a\n", 2, 0, "size", "t.yaml:2: entry 0 (a): size: missing"},
		{"bool", plain, "t.yaml", "things:\n  - name: a\n    on: yes\n", 3, 0, "on", `t.yaml:3: entry 0 (a): on: want true or false, got string "yes"`},
		{"bool tagged but not one", plain, "t.yaml", "things:\n  - name: a\n    on: !!bool maybe\n", 3, 0, "on", `t.yaml:3: entry 0 (a): on: want true or false, got boolean maybe`},
		{"json bool as string", plain, "t.json", `{"things": [{"name": "a", "on": "true"}]}`, 1, 0, "on", `t.json:1: entry 0 (a): on: want true or false, got string "true"`},
		{"strings not a list", plain, "t.yaml", "things:\n  - name: a\n    tags: x\n", 3, 0, "tags", `t.yaml:3: entry 0 (a): tags: want a list of strings, got string "x"`},
		{"strings item", hints, "t.yaml", "things:\n  - name: a\n    tags:\n      - x\n      - 1.5\n", 5, 0, "tags", "t.yaml:5: entry 0 (a): tags: want a list of strings, got an item number 1.5 (quote it to make it a string)"},
		{"json float", plain, "t.json", `{"things": [{"name": 1e3}]}`, 1, 0, "name", "t.json:1: entry 0: name: want a string, got number 1e3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := format(tc.mode == hints)
			got, _, err := yamlfile.Decode(f, tc.file, []byte(tc.data), decodeThing)
			if err == nil {
				t.Fatalf("Decode = %+v, nil; want error %q", got, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\nwant    %q", err, tc.want)
			}
			if err.File != tc.file || err.Line != tc.line || err.Entry != tc.entry || err.Field != tc.field {
				t.Errorf("Error File %q Line %d Entry %d Field %q, want %q %d %d %q", err.File, err.Line, err.Entry, err.Field, tc.file, tc.line, tc.entry, tc.field)
			}
		})
	}
}

func TestSyntaxErrorsUnwrap(t *testing.T) {
	_, _, err := yamlfile.Decode(format(false), "t.yaml", []byte("things: [\n"), decodeThing)
	if err == nil || errors.Unwrap(err) == nil {
		t.Fatalf("got %v, want an error wrapping the YAML error", err)
	}
	_, _, err = yamlfile.Decode(format(false), "t.json", []byte("{"), decodeThing)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want an error wrapping io.ErrUnexpectedEOF", err)
	}
	_, _, err = yamlfile.Decode(format(false), "t.yaml", []byte("things:\n  - a\n"), decodeThing)
	if err == nil || errors.Unwrap(err) != nil {
		t.Errorf("got %v, want an error wrapping nothing", err)
	}
}

func TestStringsNeverNil(t *testing.T) {
	got, _, err := yamlfile.Decode(format(false), "t.yaml", []byte("things:\n  - {name: a, size: s, tags: []}\n"), decodeThing)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Tags == nil || len(got[0].Tags) != 0 {
		t.Errorf("Tags = %#v, want an empty, non-nil list", got[0].Tags)
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  yamlfile.Error
		want string
	}{
		{yamlfile.Error{File: "f.yaml", Line: 3, Entry: 1, Label: "a", Field: "x", Msg: "bad"}, "f.yaml:3: entry 1 (a): x: bad"},
		{yamlfile.Error{File: "f.yaml", Entry: -1, Msg: "bad"}, "f.yaml: bad"},
		{yamlfile.Error{Line: 3, Entry: 0, Msg: "bad"}, "line 3: entry 0: bad"},
		{yamlfile.Error{Entry: 2, Label: "a", Field: "x", Msg: "bad"}, "entry 2 (a): x: bad"},
		{yamlfile.Error{Entry: -1, Field: "x", Msg: "bad"}, "x: bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v: Error() = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDeref(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: &x [1]\nb: *x\nc: &y s\n"), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0].Content
	if n := yamlfile.Deref(m[3]); n != m[1] {
		t.Errorf("Deref(*x) = %+v, want the anchored list", n)
	}
	if n := yamlfile.Deref(m[5]); n != m[5] || !yamlfile.IsString(n) {
		t.Errorf("Deref of a plain string changed it: %+v", n)
	}
	loop := &yaml.Node{Kind: yaml.AliasNode}
	loop.Alias = loop
	if n := yamlfile.Deref(loop); n != loop {
		t.Errorf("Deref of a self-alias = %+v, want it back", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("t.yaml", []byte(thingsYAML), false)
	f.Add("t.json", []byte(thingsJSON), true)
	f.Add("t.yaml", []byte("things: [{name: a, size: s, tags: &g [x]}, {name: b, size: s, tags: *g}]"), true)
	f.Add("t.json", []byte("\ufeff{\"things\": [null, 1, \"x\", {\"name\": 2}]}"), false)
	f.Fuzz(func(t *testing.T, name string, data []byte, hints bool) {
		got, lines, err := yamlfile.Decode(format(hints), name, data, decodeThing)
		if err != nil {
			if got != nil || lines != nil {
				t.Fatalf("got entries %v and lines %v with error %v", got, lines, err)
			}
			if err.File != name {
				t.Fatalf("error File %q, want %q", err.File, name)
			}
			if !strings.HasPrefix(err.Error(), name) {
				t.Fatalf("error %q does not start with the file name %q", err, name)
			}
			return
		}
		if len(got) != len(lines) {
			t.Fatalf("%d entries, %d lines", len(got), len(lines))
		}
		for i, th := range got {
			if th.Name == "" && lines.At(i, "name") == 0 {
				t.Fatalf("entry %d has no name and no line", i)
			}
		}
	})
}
