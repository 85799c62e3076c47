package acl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Rule is the part of the subscribe rule that decided whether a user may
// subscribe to a channel. Its String is a stable code.
type Rule int

// The rules, in the order the subscribe rule asks its questions.
const (
	RuleUnknownChannel   Rule = iota // not in the channels file: nobody
	RuleInactive                     // active: false: nobody
	RulePublic                       // level public: everyone
	RuleNotAuthenticated             // any other level, anonymous user
	RuleSuperuser                    // superusers: every active channel
	RuleAuthenticated                // level users, an authenticated user
	RuleInGroup                      // level groups, the user is in one of them
	RuleNotInGroup                   // level groups, the user is in none
	RuleStaff                        // level staff, a staff user
	RuleNotStaff                     // level staff, not a staff user
	RuleNotSuperuser                 // level superuser, not a superuser
)

var ruleCodes = [...]string{
	RuleUnknownChannel: "unknown_channel", RuleInactive: "inactive_channel", RulePublic: "public",
	RuleNotAuthenticated: "not_authenticated", RuleSuperuser: "superuser", RuleAuthenticated: "authenticated",
	RuleInGroup: "in_group", RuleNotInGroup: "not_in_group", RuleStaff: "staff", RuleNotStaff: "not_staff",
	RuleNotSuperuser: "not_superuser",
}

// String is the rule's stable code, e.g. not_staff.
func (r Rule) String() string {
	if r < 0 || int(r) >= len(ruleCodes) {
		return "rule(" + strconv.Itoa(int(r)) + ")"
	}
	return ruleCodes[r]
}

// Allowed reports whether the rule lets the user subscribe.
func (r Rule) Allowed() bool {
	switch r {
	case RulePublic, RuleSuperuser, RuleAuthenticated, RuleInGroup, RuleStaff:
		return true
	}
	return false
}

// subscribeRule is the subscribe rule of the package documentation, the
// only place it is written: CanSubscribe, ChannelsFor and ExplainSubscribe
// all ask it.
func subscribeRule(u User, c *Channel) Rule {
	if !c.Active {
		return RuleInactive
	}
	if c.Level == LevelPublic {
		return RulePublic
	}
	if !u.Authenticated() {
		return RuleNotAuthenticated
	}
	if u.Superuser {
		return RuleSuperuser
	}
	switch c.Level {
	case LevelUsers:
		return RuleAuthenticated
	case LevelGroups:
		if u.inAnyGroup(c.Groups) {
			return RuleInGroup
		}
		return RuleNotInGroup
	case LevelStaff:
		if u.Staff {
			return RuleStaff
		}
		return RuleNotStaff
	}
	return RuleNotSuperuser
}

// Source is where a channel was written: the file, the entry's line and
// the line of each field (name, level, active, groups, publishers).
type Source struct {
	File   string
	Line   int
	Fields map[string]int
}

// At is "file:line" of field (of the entry when the field is not known), or
// "" when the registry was not read from a file.
func (s Source) At(field string) string {
	line := s.Line
	if n, ok := s.Fields[field]; ok && n > 0 {
		line = n
	}
	switch {
	case s.File == "":
		return ""
	case line <= 0:
		return s.File
	}
	return s.File + ":" + strconv.Itoa(line)
}

// Source returns where the channel named name was written; ok is false for
// an unknown channel or a registry not read from a file.
func (r *Registry) Source(name string) (Source, bool) {
	if r == nil {
		return Source{}, false
	}
	s, ok := r.sources[name]
	return s, ok
}

// Decision is whether a user may subscribe to a channel, and why.
type Decision struct {
	Channel string
	Allowed bool
	Rule    Rule
	Level   Level    // the channel's level; "" for an unknown channel
	Groups  []string // the channel's groups (level groups)
	// Matched are the user's groups that admit them (RuleInGroup).
	Matched []string
	// Field is the channel entry's field that decided (active, level or
	// groups); "" for an unknown channel.
	Field string
	// UserField is the user attribute that decided: groups, staff or
	// superuser; "" when no attribute of the user mattered.
	UserField string
	Source    Source // where the channel was written, when known
}

// ExplainSubscribe is CanSubscribe with its reason: the same rule, and
// which question of it decided.
func (r *Registry) ExplainSubscribe(u User, channel string) Decision {
	var c *Channel
	if r != nil {
		c = r.byName[channel]
	}
	if c == nil {
		return Decision{Channel: channel, Rule: RuleUnknownChannel}
	}
	rule := subscribeRule(u, c)
	d := Decision{Channel: channel, Allowed: rule.Allowed(), Rule: rule, Level: c.Level, Groups: slices.Clone(c.Groups), Field: "level"}
	d.Source, _ = r.Source(channel)
	switch rule {
	case RuleInactive:
		d.Field = "active"
	case RuleInGroup, RuleNotInGroup:
		d.Field, d.UserField = "groups", "groups"
		for _, g := range u.Groups {
			if slices.Contains(c.Groups, g) {
				d.Matched = append(d.Matched, g)
			}
		}
	case RuleSuperuser, RuleNotSuperuser:
		d.UserField = "superuser"
	case RuleStaff, RuleNotStaff:
		d.UserField = "staff"
	}
	return d
}

// ChannelReason is the channel's half of the reason, e.g. "$staff has
// level staff" or "$old is inactive".
func (d Decision) ChannelReason() string {
	switch {
	case d.Rule == RuleUnknownChannel:
		return fmt.Sprintf("%s is not in the channels file", d.Channel)
	case d.Rule == RuleInactive:
		return fmt.Sprintf("%s is inactive (nobody may subscribe)", d.Channel)
	case d.Level == LevelGroups:
		return fmt.Sprintf("%s has level groups [%s]", d.Channel, strings.Join(d.Groups, ", "))
	}
	return fmt.Sprintf("%s has level %s", d.Channel, d.Level)
}

// UserReason is the user's half of the reason, naming the user name, e.g.
// "alice is not staff"; "" when the user did not matter (unknown or
// inactive channel).
func (d Decision) UserReason(name string, u User) string {
	if name == "" {
		name = "the user"
	}
	switch d.Rule {
	case RulePublic:
		return "everyone may subscribe"
	case RuleNotAuthenticated:
		return name + " is anonymous (only public channels)"
	case RuleSuperuser:
		return name + " is a superuser (every active channel)"
	case RuleAuthenticated:
		return name + " is authenticated"
	case RuleInGroup:
		return name + " is in " + strings.Join(d.Matched, ", ")
	case RuleNotInGroup:
		if len(u.Groups) == 0 {
			return name + " is in no group"
		}
		return fmt.Sprintf("%s is in none of them (%s's groups: %s)", name, name, strings.Join(u.Groups, ", "))
	case RuleStaff:
		return name + " is staff"
	case RuleNotStaff:
		return name + " is not staff"
	case RuleNotSuperuser:
		return name + " is not a superuser"
	}
	return ""
}
