package acl

import "strconv"

// FileError is a bad channels file or a bad channel: where and why.
//
// Its Error reads like
//
//	channels.yaml:7: entry 2 ($billing): level: unknown level "admin" (want one of public, users, groups, staff, superuser)
type FileError struct {
	File    string // the file's name; empty from NewRegistry
	Line    int    // 1-based; 0 when unknown
	Entry   int    // 0-based index in the channels list; -1 when not about one entry
	Channel string // the entry's name, when it has one
	Field   string // name, level, active, groups, publishers; empty for the whole entry or file
	Msg     string
	Err     error // the underlying YAML or JSON syntax error, if any
}

func (e *FileError) Error() string {
	b := make([]byte, 0, 64+len(e.Msg))
	if e.File != "" {
		b = append(b, e.File...)
		if e.Line > 0 {
			b = strconv.AppendInt(append(b, ':'), int64(e.Line), 10)
		}
		b = append(b, ": "...)
	} else if e.Line > 0 {
		b = append(strconv.AppendInt(append(b, "line "...), int64(e.Line), 10), ": "...)
	}
	if e.Entry >= 0 {
		b = strconv.AppendInt(append(b, "entry "...), int64(e.Entry), 10)
		if e.Channel != "" {
			b = append(append(append(b, " ("...), e.Channel...), ')')
		}
		b = append(b, ": "...)
	}
	if e.Field != "" {
		b = append(append(b, e.Field...), ": "...)
	}
	return string(append(b, e.Msg...))
}

// Unwrap returns the underlying syntax error, if any.
func (e *FileError) Unwrap() error { return e.Err }
