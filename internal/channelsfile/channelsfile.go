// Package channelsfile reads the channels file, YAML or JSON, into an
// acl.Registry, with errors that say file, line, entry and field. It keeps
// pkg/acl free of the file formats: acl only sees decoded entries.
package channelsfile

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/instant-go/instant/internal/yamlfile"
	"github.com/instant-go/instant/pkg/acl"
)

// format is the channels file's layout: a channels key holding the list.
var format = &yamlfile.Format{
	Key:    "channels",
	Fields: []string{"name", "level", "active", "groups", "publishers"},
	Label:  "name",
	Needs:  "name and level",
	Hints:  true,
}

// Parse reads a channels file and builds its registry. name is the file's
// name: its extension chooses the format (.yaml or .yml: YAML, .json: JSON)
// and it is quoted in errors. The format is described in the pkg/acl
// documentation. Errors are *acl.FileError.
func Parse(name string, data []byte) (*acl.Registry, error) {
	chs, lines, err := yamlfile.Decode(format, name, data, decodeEntry)
	if err != nil {
		return nil, &acl.FileError{File: err.File, Line: err.Line, Entry: err.Entry, Channel: err.Label, Field: err.Field, Msg: err.Msg, Err: err.Err}
	}
	entries := make([]acl.ChannelEntry, len(chs))
	for i, c := range chs {
		e := acl.ChannelEntry{Channel: c, File: name, Line: lines.At(i, ""), Fields: map[string]int{}}
		for _, f := range format.Fields {
			e.Fields[f] = lines.At(i, f)
		}
		entries[i] = e
	}
	return acl.NewRegistryFromEntries(entries)
}

// decodeEntry decodes one entry of the channels list into c.
func decodeEntry(c *acl.Channel, e *yamlfile.Entry) *yamlfile.Error {
	c.Name, c.Active = e.Label, true
	return e.Fields(func(field string, v *yaml.Node) *yamlfile.Error {
		var err *yamlfile.Error
		switch field {
		case "name", "level":
			if !yamlfile.IsString(v) {
				return e.Fail(v, field, "want a string, got %s", e.Describe(v))
			}
			if field == "name" && strings.HasPrefix(v.Value, acl.CanaryPrefix) {
				return e.Fail(v, field, "names starting with %q are reserved for the bridge's canary", acl.CanaryPrefix)
			}
			if field == "level" {
				if _, perr := acl.ParseLevel(v.Value); perr != nil {
					return e.Fail(v, field, "%s", perr)
				}
				c.Level = acl.Level(v.Value)
			}
		case "active":
			c.Active, err = e.Bool(field, v)
		case "groups":
			c.Groups, err = e.Strings(field, v)
		case "publishers":
			c.Publishers, err = e.Strings(field, v)
		}
		return err
	})
}
