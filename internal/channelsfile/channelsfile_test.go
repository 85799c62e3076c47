package channelsfile_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/yamlfile"
	"github.com/instant-go/instant/pkg/acl"
)

const exampleYAML = `channels:
  - name: public
    level: public
  - name: $group1
    level: groups
    groups: [group1]
  - name: $billing
    level: staff
    active: false          # optional, default true
    publishers: [billing]  # optional, default: any producer
`

const exampleJSON = `{
  "channels": [
    {"name": "public", "level": "public"},
    {"name": "$group1", "level": "groups", "groups": ["group1"]},
    {"name": "$billing", "level": "staff", "active": false, "publishers": ["billing"]}
  ]
}`

func TestParseValid(t *testing.T) {
	want := []acl.Channel{
		{Name: "$billing", Level: acl.LevelStaff, Active: false, Publishers: []string{"billing"}},
		{Name: "$group1", Level: acl.LevelGroups, Active: true, Groups: []string{"group1"}},
		{Name: "public", Level: acl.LevelPublic, Active: true},
	}
	for _, tc := range []struct{ name, data string }{
		{"channels.yaml", exampleYAML},
		{"channels.yml", exampleYAML},
		{"/etc/instant/CHANNELS.YAML", exampleYAML},
		{"channels.json", exampleJSON},
		{"bom.json", "\ufeff" + exampleJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := channelsfile.Parse(tc.name, []byte(tc.data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := r.Channels(); !reflect.DeepEqual(got, want) {
				t.Errorf("Channels =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseDefaultsAndEmptyList(t *testing.T) {
	r, err := channelsfile.Parse("c.yaml", []byte("channels:\n  - name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Lookup("x"); c.Level != acl.LevelSuperuser || !c.Active {
		t.Errorf("defaults: got %+v, want level superuser, active", c)
	}
	for _, tc := range []struct{ name, data string }{
		{"c.yaml", "channels: []\n"},
		{"c.json", `{"channels": []}`},
	} {
		r, err := channelsfile.Parse(tc.name, []byte(tc.data))
		if err != nil || r.Len() != 0 {
			t.Errorf("Parse(%s, %q) = %v, %v; want an empty registry", tc.name, tc.data, r, err)
		}
	}
	// YAML anchors and aliases work.
	r, err = channelsfile.Parse("c.yaml", []byte("channels:\n  - name: a\n    level: groups\n    groups: &g [x]\n  - name: b\n    level: groups\n    groups: *g\n"))
	if err != nil || !r.CanSubscribe(acl.User{ID: "1", Groups: []string{"x"}}, "b") {
		t.Errorf("aliases: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, data string
		line             int    // want FileError.Line
		field            string // want FileError.Field
		want             string // want in Error()
	}{
		// YAML
		{"empty", "c.yaml", "", 0, "", "c.yaml: file is empty (want a channels key)"},
		{"comments only", "c.yaml", "# nothing\n\n", 0, "", "c.yaml: file is empty"},
		{"no channels key", "c.yaml", "{}\n", 1, "", "c.yaml:1: no channels key"},
		{"typo in channels", "c.yaml", "chanels: []\n", 1, "", `c.yaml:1: top level: unknown key "chanels" (want channels) (did you mean "channels"?)`},
		{"channels without value", "c.yaml", "\nchannels:\n", 2, "", "c.yaml:2: channels: no value (write channels: [] for no channels)"},
		{"channels not a list", "c.yaml", "channels:\n  name: a\n", 2, "", "c.yaml:2: channels: want a list, got a mapping"},
		{"top level list", "c.yaml", "- name: a\n", 1, "", "top level: want a mapping with a channels key, got a list"},
		{"syntax", "c.yaml", "channels:\n  - name: a\n    level: public: x\n", 3, "", "c.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"tab", "c.yaml", "channels:\n\t- name: a\n", 2, "", "c.yaml:2: invalid YAML: "},
		{"entry not a mapping", "c.yaml", "channels:\n  - public\n", 2, "", `c.yaml:2: entry 0: want a mapping with name and level, got string "public"`},
		{"missing name", "c.yaml", "channels:\n  - name: a\n  - level: public\n", 3, "name", "c.yaml:3: entry 1: name: missing"},
		{"empty name", "c.yaml", "channels:\n  - name: ''\n", 2, "name", "c.yaml:2: entry 0: name: missing or empty"},
		{"duplicate name", "c.yaml", "channels:\n  - name: a\n  - name: b\n  - name: a\n", 4, "name", `c.yaml:4: entry 2 (a): name: duplicate name "a" (first defined at line 2, entry 0)`},
		{"unknown level", "channels.yaml", strings.Replace(exampleYAML, "level: staff", "level: admin", 1), 8, "level", `channels.yaml:8: entry 2 ($billing): level: unknown level "admin" (want one of public, users, groups, staff, superuser)`},
		{"unknown key", "c.yaml", "channels:\n  - name: a\n    levle: public\n", 3, "", `c.yaml:3: entry 0 (a): unknown key "levle" (want one of name, level, active, groups, publishers) (did you mean "level"?)`},
		{"duplicate key", "c.yaml", "channels:\n  - name: a\n    level: public\n    level: users\n", 4, "level", "c.yaml:4: entry 0 (a): level: duplicate key (first at line 3)"},
		{"name not a string", "c.yaml", "channels:\n  - name: 123\n", 2, "name", "c.yaml:2: entry 0: name: want a string, got number 123 (quote it to make it a string)"},
		{"level not a string", "c.yaml", "channels:\n  - name: a\n    level: [public]\n", 3, "level", "level: want a string, got a list"},
		{"active not a boolean", "c.yaml", "channels:\n  - name: a\n    active: yes\n", 3, "active", `c.yaml:3: entry 0 (a): active: want true or false, got string "yes"`},
		{"groups not a list", "c.yaml", "channels:\n  - name: a\n    level: groups\n    groups: g1\n", 4, "groups", `groups: want a list of strings, got string "g1"`},
		{"group not a string", "c.yaml", "channels:\n  - name: a\n    level: groups\n    groups:\n      - g1\n      - 7\n", 6, "groups", "c.yaml:6: entry 0 (a): groups: want a list of strings, got an item number 7"},
		{"groups level without groups", "c.yaml", "channels:\n  - name: a\n  - name: b\n    level: groups\n", 3, "groups", "c.yaml:3: entry 1 (b): groups: level groups needs a non-empty groups list"},
		{"groups level with empty groups", "c.yaml", "channels:\n  - name: b\n    level: groups\n    groups: []\n", 4, "groups", "groups: level groups needs a non-empty groups list"},
		{"groups on another level", "c.yaml", "channels:\n  - name: b\n    level: users\n    groups: [g]\n", 4, "groups", "groups: groups is only used with level groups, not users"},
		{"publishers not a list", "c.yaml", "channels:\n  - name: a\n    publishers: billing\n", 3, "publishers", "publishers: want a list of strings"},
		// JSON
		{"json empty", "c.json", " \n", 0, "", "c.json: file is empty"},
		{"json syntax", "c.json", "{\n  \"channels\": [\n    {\"name\": \"a\",}\n  ]\n}", 3, "", "c.json:3: invalid JSON: "},
		{"json truncated", "c.json", "{\"channels\": [", 1, "", "c.json:1: invalid JSON: unexpected EOF"},
		{"json trailing data", "c.json", "{\"channels\": []}\n{}", 2, "", "c.json:2: invalid JSON: unexpected data after the top-level value"},
		{"json no channels key", "c.json", "{}", 1, "", "c.json:1: no channels key"},
		{"json null channels", "c.json", `{"channels": null}`, 1, "", "channels: no value"},
		{"json missing name", "c.json", "{\"channels\": [\n  {\"name\": \"a\"},\n  {\"level\": \"public\"}\n]}", 3, "name", "c.json:3: entry 1: name: missing"},
		{"json duplicate name", "c.json", "{\"channels\": [\n  {\"name\": \"a\"},\n  {\"name\": \"a\"}\n]}", 3, "name", `c.json:3: entry 1 (a): name: duplicate name "a" (first defined at line 2, entry 0)`},
		{"json unknown level", "channels.json", strings.Replace(exampleJSON, `"level": "staff"`, `"level": "admin"`, 1), 5, "level", `channels.json:5: entry 2 ($billing): level: unknown level "admin" (want one of public, users, groups, staff, superuser)`},
		{"json unknown key", "c.json", "{\"channels\": [\n  {\"name\": \"a\", \"levle\": \"public\"}\n]}", 2, "", `c.json:2: entry 0 (a): unknown key "levle"`},
		{"json active as string", "c.json", "{\"channels\": [\n  {\"name\": \"a\",\n   \"active\": \"false\"}\n]}", 3, "active", `c.json:3: entry 0 (a): active: want true or false, got string "false"`},
		{"json name as number", "c.json", `{"channels": [{"name": 1.5}]}`, 1, "name", "name: want a string, got number 1.5"},
		{"json groups without groups", "c.json", `{"channels": [{"name": "a", "level": "groups"}]}`, 1, "groups", "c.json:1: entry 0 (a): groups: level groups needs a non-empty groups list"},
		{"json entry not an object", "c.json", `{"channels": [null]}`, 1, "", "entry 0: want a mapping with name and level, got null"},
		// other
		{"unknown format", "channels.toml", "channels = []", 0, "", `channels.toml: unsupported channels file format ".toml" (want .yaml, .yml or .json)`},
		{"no extension", "channels", "channels: []", 0, "", `unsupported channels file format ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := channelsfile.Parse(tc.file, []byte(tc.data))
			if err == nil {
				t.Fatalf("Parse = %v, nil; want error %q", r, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tc.want)
			}
			var fe *acl.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error is %T, want *acl.FileError", err)
			}
			if fe.File != tc.file || fe.Line != tc.line || fe.Field != tc.field {
				t.Errorf("FileError File %q Line %d Field %q, want %q %d %q", fe.File, fe.Line, fe.Field, tc.file, tc.line, tc.field)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("c.yaml", []byte(exampleYAML))
	f.Add("c.json", []byte(exampleJSON))
	f.Add("c.yaml", []byte("channels: [{name: a, level: groups, groups: &g [x]}, {name: b, level: groups, groups: *g}]"))
	f.Add("c.json", []byte(`{"channels": [{"name": "a"}], "x": 1}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		r, err := channelsfile.Parse(name, data)
		if err != nil {
			var fe *acl.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error is %T, want *acl.FileError: %v", err, err)
			}
			return
		}
		// What Parse accepts, NewRegistry accepts as well, unchanged.
		r2, err := acl.NewRegistry(r.Channels())
		if err != nil {
			t.Fatalf("NewRegistry refuses what Parse accepted: %v", err)
		}
		if !reflect.DeepEqual(r.Channels(), r2.Channels()) {
			t.Fatal("NewRegistry(Parse(x).Channels()) differs")
		}
	})
}

// TestErrorFormatMatchesYAMLFile: acl.FileError, which pkg/acl formats
// itself, reads like the yamlfile.Error the users file's errors are.
func TestErrorFormatMatchesYAMLFile(t *testing.T) {
	for _, e := range []yamlfile.Error{
		{File: "c.yaml", Line: 7, Entry: 2, Label: "$billing", Field: "level", Msg: "bad"},
		{File: "c.yaml", Entry: -1, Msg: "file is empty"},
		{Line: 3, Entry: 0, Field: "name", Msg: "missing"},
		{Entry: 1, Label: "a", Msg: "want a mapping"},
		{Entry: -1, Msg: "m"},
	} {
		fe := acl.FileError{File: e.File, Line: e.Line, Entry: e.Entry, Channel: e.Label, Field: e.Field, Msg: e.Msg}
		if got, want := fe.Error(), e.Error(); got != want {
			t.Errorf("acl.FileError %q, yamlfile.Error %q", got, want)
		}
	}
}
