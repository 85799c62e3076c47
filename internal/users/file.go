package users

import (
	"go.yaml.in/yaml/v3"

	"github.com/instant-go/instant/internal/yamlfile"
)

// FileError is a bad users file or a bad entry: where and why; its Label
// is the entry's username and its Field one of username, password_hash, id,
// groups, staff, superuser. It never quotes a password hash.
//
// Its Error reads like
//
//	users.yaml:7: entry 1 (bob): staff: want true or false, got string "yes"
type FileError = yamlfile.Error

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
	format := &yamlfile.Format{
		Key:    "users",
		Fields: []string{"username", "password_hash", "id", "groups", "staff", "superuser"},
		Label:  "username",
		Needs:  "username and password_hash",
	}
	list, lines, err := yamlfile.Decode(format, name, data, decodeEntry)
	if err == nil {
		var f *File
		if f, err = build(list, lines.At); err == nil {
			f.name = name
			return f, nil
		}
		err.File = name
	}
	return nil, err
}

// decodeEntry decodes one entry of the users list into u.
func decodeEntry(u *User, e *yamlfile.Entry) *yamlfile.Error {
	u.Username = e.Label
	err := e.Fields(func(field string, v *yaml.Node) *yamlfile.Error {
		var err *yamlfile.Error
		switch field {
		case "username":
			if !yamlfile.IsString(v) {
				return e.Fail(v, field, "want a string, got %s", e.Describe(v))
			}
		case "password_hash":
			if !yamlfile.IsString(v) {
				return e.Fail(v, field, "want a string") // never echo what could be a secret
			}
			u.PasswordHash = v.Value
		case "id":
			if !yamlfile.IsString(v) && !(v.Kind == yaml.ScalarNode && v.Tag == "!!int") {
				return e.Fail(v, field, "want a string, got %s", e.Describe(v))
			}
			u.ID = v.Value
		case "staff":
			u.Staff, err = e.Bool(field, v)
		case "superuser":
			u.Superuser, err = e.Bool(field, v)
		case "groups":
			var list []string
			list, err = e.Strings(field, v)
			u.Groups = append(u.Groups, list...) // stays nil for an empty list
		}
		return err
	})
	if err == nil && !e.Has("password_hash") {
		err = e.Fail(e.Node, "password_hash", "missing (make one with: tokensvc hash-password)")
	}
	return err
}
