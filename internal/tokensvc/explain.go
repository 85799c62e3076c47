package tokensvc

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// ExplainQuery names who to explain. A user of the users file is looked up
// by name, as a login finds them; a user of an upstream JWT or of a proxy
// is described by the attributes the token or the headers would carry.
type ExplainQuery struct {
	User      string
	Channel   string // "": every channel
	Anonymous bool
	// Attributes: the user comes from an upstream JWT or a proxy, with
	// these groups and flags, and is not looked up in the users file.
	Attributes bool
	Groups     []string
	Staff      bool
	Superuser  bool
}

// Explanation is the ACL's answer for one identity: what the token service
// would hand out, and why.
type Explanation struct {
	User       string               `json:"user"`
	Source     string               `json:"source"` // users_file, upstream (JWT or proxy) or anonymous
	UserSource string               `json:"user_source,omitempty"`
	Note       string               `json:"note,omitempty"`
	Allowed    bool                 `json:"allowed"` // the channel (or any channel) may be subscribed to
	Channels   []ChannelExplanation `json:"channels"`
}

// ChannelExplanation is the decision for one channel.
type ChannelExplanation struct {
	Channel       string `json:"channel"`
	Level         string `json:"level,omitempty"`
	Allowed       bool   `json:"allowed"`
	Rule          string `json:"rule"`
	Reason        string `json:"reason"`
	ChannelSource string `json:"channel_source,omitempty"`
	UserSource    string `json:"user_source,omitempty"`
}

// Explain answers q with the registry and users file the service would
// use: the user is resolved as the service resolves them (a users-file
// user's ACL attributes, those of a JWT or proxy identity, or anonymous),
// and each decision is the ACL's own (acl.Registry.ExplainSubscribe, the
// rule behind CanSubscribe and ChannelsFor).
func Explain(reg *acl.Registry, uf *users.File, q ExplainQuery) Explanation {
	u, e := explainIdentity(uf, q)
	names := []string{q.Channel}
	if q.Channel == "" {
		names = names[:0]
		for _, c := range reg.Channels() {
			names = append(names, c.Name)
		}
	}
	e.Channels = []ChannelExplanation{}
	for _, name := range names {
		d := reg.ExplainSubscribe(u, name)
		ce := ChannelExplanation{Channel: name, Level: string(d.Level), Allowed: d.Allowed, Rule: d.Rule.String(), ChannelSource: d.Source.At(d.Field)}
		if e.Source == sourceUsersFile && d.UserField != "" {
			ce.UserSource = uf.Source(e.User, d.UserField)
		}
		ce.Reason = explainReason(d, e.User, u, ce)
		e.Channels = append(e.Channels, ce)
		e.Allowed = e.Allowed || d.Allowed
	}
	return e
}

const (
	sourceUsersFile = "users_file"
	sourceUpstream  = "upstream"
)

// explainIdentity is the user the service would see for q.
func explainIdentity(uf *users.File, q ExplainQuery) (acl.User, Explanation) {
	switch {
	case q.Anonymous:
		return acl.Anonymous(), Explanation{User: "anonymous", Source: sourceAnonymous}
	case q.Attributes:
		u := acl.User{ID: q.User, Username: q.User, Groups: q.Groups, Staff: q.Staff, Superuser: q.Superuser}
		return u, Explanation{User: q.User, Source: sourceUpstream}
	}
	if fu, ok := uf.Lookup(q.User); ok {
		return fu.ACL(), Explanation{User: q.User, Source: sourceUsersFile, UserSource: uf.Source(q.User, "")}
	}
	u := acl.User{ID: q.User, Username: q.User}
	return u, Explanation{User: q.User, Source: sourceUpstream,
		Note: q.User + " is not in the users file: explained as an upstream JWT or proxy user with no groups, not staff, not superuser (give --groups, --staff, --superuser)"}
}

// explainReason is the one-line reason: the channel's half, then the
// user's, each with where it was written.
func explainReason(d acl.Decision, name string, u acl.User, ce ChannelExplanation) string {
	var b strings.Builder
	b.WriteString(d.ChannelReason())
	if ce.ChannelSource != "" {
		fmt.Fprintf(&b, " (%s)", shortSource(ce.ChannelSource))
	}
	if ur := d.UserReason(name, u); ur != "" {
		b.WriteString("; ")
		b.WriteString(ur)
		if ce.UserSource != "" {
			fmt.Fprintf(&b, " (%s)", shortSource(ce.UserSource))
		}
	}
	return b.String()
}

// shortSource is "file:line" with the file's base name.
func shortSource(at string) string {
	dir, _ := filepath.Split(at)
	return strings.TrimPrefix(at, dir)
}
