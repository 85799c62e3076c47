package acl

import (
	"go.yaml.in/yaml/v3"

	"github.com/instant-go/instant/internal/yamlfile"
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
	return (&yamlfile.Error{File: e.File, Line: e.Line, Entry: e.Entry, Label: e.Channel, Field: e.Field, Msg: e.Msg}).Error()
}

// Unwrap returns the underlying syntax error, if any.
func (e *FileError) Unwrap() error { return e.Err }

// Parse reads a channels file and builds its registry. name is the file's
// name: its extension chooses the format (.yaml or .yml: YAML, .json: JSON)
// and it is quoted in errors. Errors are *FileError.
func Parse(name string, data []byte) (*Registry, error) {
	format := &yamlfile.Format{
		Key:    "channels",
		Fields: []string{"name", "level", "active", "groups", "publishers"},
		Label:  "name",
		Needs:  "name and level",
		Hints:  true,
	}
	chs, lines, err := yamlfile.Decode(format, name, data, decodeEntry)
	if err != nil {
		return nil, &FileError{File: err.File, Line: err.Line, Entry: err.Entry, Channel: err.Label, Field: err.Field, Msg: err.Msg, Err: err.Err}
	}
	r, ferr := build(chs, lines.At)
	if ferr != nil {
		ferr.File = name
		return nil, ferr
	}
	return r, nil
}

// decodeEntry decodes one entry of the channels list into c.
func decodeEntry(c *Channel, e *yamlfile.Entry) *yamlfile.Error {
	c.Name, c.Active = e.Label, true
	return e.Fields(func(field string, v *yaml.Node) *yamlfile.Error {
		var err *yamlfile.Error
		switch field {
		case "name", "level":
			if !yamlfile.IsString(v) {
				return e.Fail(v, field, "want a string, got %s", e.Describe(v))
			}
			if field == "level" {
				if _, perr := ParseLevel(v.Value); perr != nil {
					return e.Fail(v, field, "%s", perr)
				}
				c.Level = Level(v.Value)
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
