package acl

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Channel is a registered channel.
//
// Active is false in the zero value: a Channel built in Go code must set
// Active to true to be usable (the channels file defaults it to true).
type Channel struct {
	Name   string
	Level  Level
	Active bool
	// Groups are the groups admitted to a channel of level groups; it must
	// be empty for the other levels.
	Groups []string
	// Publishers are the producers allowed to publish to the channel; empty
	// means any producer.
	Publishers []string
}

func (c Channel) clone() Channel {
	c.Groups = slices.Clone(c.Groups)
	c.Publishers = slices.Clone(c.Publishers)
	return c
}

// Registry is the set of registered channels. It is immutable once built and
// safe for concurrent use. A nil *Registry behaves as an empty one.
type Registry struct {
	byName map[string]*Channel
	sorted []Channel // by name; the values byName points to
	// sources says where each channel was written, by name; empty for a
	// registry built by NewRegistry.
	sources map[string]Source
}

// ChannelEntry is a channel as decoded from a file, with where it was
// written, for error messages. A reader of the channels file decodes the
// entries (the format is in the package documentation) and builds the
// registry with NewRegistryFromEntries.
type ChannelEntry struct {
	Channel
	File   string         // the file's name
	Line   int            // 1-based line of the entry; 0 when unknown
	Fields map[string]int // line of each field written (name, level, active, groups, publishers)
}

// line is the line of field in the entry, or of the entry.
func (e *ChannelEntry) line(field string) int {
	if n, ok := e.Fields[field]; ok {
		return n
	}
	return e.Line
}

// NewRegistry validates chs and builds a registry from a copy of them. An
// empty Level is LevelSuperuser. It returns a *FileError (with no File or
// Line) naming the first bad entry by its index.
func NewRegistry(chs []Channel) (*Registry, error) {
	entries := make([]ChannelEntry, len(chs))
	for i, c := range chs {
		entries[i].Channel = c
	}
	return NewRegistryFromEntries(entries)
}

// NewRegistryFromEntries is NewRegistry for channels decoded from a file:
// its *FileError also names the file and the line of the bad field.
func NewRegistryFromEntries(entries []ChannelEntry) (*Registry, error) {
	r, ferr := build(entries)
	if ferr != nil {
		return nil, ferr
	}
	return r, nil
}

// build validates the entries and builds the registry.
func build(entries []ChannelEntry) (*Registry, *FileError) {
	chs := make([]Channel, len(entries))
	for i := range entries {
		chs[i] = entries[i].Channel
	}
	line := func(i int, field string) int { return entries[i].line(field) }
	fail := func(i int, field, format string, args ...any) *FileError {
		return &FileError{
			File:    entries[i].File,
			Line:    line(i, field),
			Entry:   i,
			Channel: chs[i].Name,
			Field:   field,
			Msg:     fmt.Sprintf(format, args...),
		}
	}
	r := &Registry{
		byName: make(map[string]*Channel, len(chs)),
		sorted: make([]Channel, 0, len(chs)),
	}
	first := make(map[string]int, len(chs))
	for i, c := range chs {
		switch {
		case c.Name == "":
			return nil, fail(i, "name", "missing or empty")
		case strings.TrimSpace(c.Name) != c.Name:
			return nil, fail(i, "name", "%q has leading or trailing white space", c.Name)
		}
		if j, dup := first[c.Name]; dup {
			where := fmt.Sprintf("entry %d", j)
			if l := line(j, "name"); l > 0 {
				where = fmt.Sprintf("line %d, %s", l, where)
			}
			return nil, fail(i, "name", "duplicate name %q (first defined at %s)", c.Name, where)
		}
		first[c.Name] = i
		lvl, err := ParseLevel(string(c.Level))
		if err != nil {
			return nil, fail(i, "level", "%s", err)
		}
		c.Level = lvl
		if lvl == LevelGroups && len(c.Groups) == 0 {
			return nil, fail(i, "groups", "level groups needs a non-empty groups list")
		}
		if lvl != LevelGroups && len(c.Groups) > 0 {
			return nil, fail(i, "groups", "groups is only used with level groups, not %s", lvl)
		}
		for _, g := range c.Groups {
			if g == "" {
				return nil, fail(i, "groups", "empty group name")
			}
		}
		for _, p := range c.Publishers {
			if p == "" {
				return nil, fail(i, "publishers", "empty producer name")
			}
		}
		r.sorted = append(r.sorted, c.clone())
		if e := &entries[i]; e.File != "" || e.Line > 0 {
			if r.sources == nil {
				r.sources = make(map[string]Source, len(chs))
			}
			r.sources[c.Name] = Source{File: e.File, Line: e.Line, Fields: maps.Clone(e.Fields)}
		}
	}
	slices.SortFunc(r.sorted, func(a, b Channel) int { return strings.Compare(a.Name, b.Name) })
	for i := range r.sorted {
		r.byName[r.sorted[i].Name] = &r.sorted[i]
	}
	return r, nil
}

// Lookup returns the channel named name.
func (r *Registry) Lookup(name string) (Channel, bool) {
	if r == nil {
		return Channel{}, false
	}
	c, ok := r.byName[name]
	if !ok {
		return Channel{}, false
	}
	return c.clone(), true
}

// Channels returns every channel, sorted by name.
func (r *Registry) Channels() []Channel {
	if r == nil {
		return nil
	}
	out := make([]Channel, len(r.sorted))
	for i, c := range r.sorted {
		out[i] = c.clone()
	}
	return out
}

// Len returns the number of channels.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.sorted)
}

// CanSubscribe reports whether u may subscribe to channel, by the rule of the
// package documentation.
func (r *Registry) CanSubscribe(u User, channel string) bool {
	if r == nil {
		return false
	}
	c, ok := r.byName[channel]
	return ok && canSubscribe(u, c)
}

// ChannelsFor returns the channels u may subscribe to, sorted by name, each
// once. It never returns nil, so that it encodes to a JSON list.
func (r *Registry) ChannelsFor(u User) []Channel {
	out := []Channel{}
	if r == nil {
		return out
	}
	for i := range r.sorted {
		if canSubscribe(u, &r.sorted[i]) {
			out = append(out, r.sorted[i].clone())
		}
	}
	return out
}

// canSubscribe is the subscribe rule (see subscribeRule).
func canSubscribe(u User, c *Channel) bool { return subscribeRule(u, c).Allowed() }
