package tokensvc

import (
	"encoding/json"
	"slices"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// accessState is what the service hands access out from: the ACL and the
// users file (nil when there is none).
type accessState struct {
	reg   *acl.Registry
	users *users.File
}

// revocationPlan is what a reload takes away, found by comparing the state
// before with the state after.
type revocationPlan struct {
	// disconnect: the ids of users-file users removed, whose password
	// changed, or whose id changed (the old id): all their sessions end.
	disconnect []string
	// unsubscribe: each users-file user still there, from each channel the
	// old ACL let them subscribe to and the new one does not.
	unsubscribe []centrifugo.Unsubscribe
	// stricter: channels that were open to someone and changed (removed,
	// made inactive, another level or other groups): users who do not come
	// from the users file are found there with presence.
	stricter []string
	// fileUsers: the ids of every users-file user, before and after; the
	// presence step leaves them to the exact rules above.
	fileUsers map[string]bool
}

// planRevocations compares two states with the ACL's own rule.
func planRevocations(old, cur accessState) revocationPlan {
	p := revocationPlan{fileUsers: map[string]bool{}}
	for _, u := range cur.users.Users() {
		p.fileUsers[u.ID] = true
	}
	for _, uo := range old.users.Users() {
		p.fileUsers[uo.ID] = true
		un, ok := cur.users.Lookup(uo.Username)
		if !ok || un.PasswordHash != uo.PasswordHash || un.ID != uo.ID {
			p.disconnect = append(p.disconnect, uo.ID)
			continue
		}
		for _, c := range old.reg.ChannelsFor(uo.ACL()) {
			if !cur.reg.CanSubscribe(un.ACL(), c.Name) {
				p.unsubscribe = append(p.unsubscribe, centrifugo.Unsubscribe{Channel: c.Name, User: un.ID})
			}
		}
	}
	slices.Sort(p.disconnect)
	for _, c := range old.reg.Channels() {
		if !c.Active {
			continue
		}
		n, ok := cur.reg.Lookup(c.Name)
		if !ok || !n.Active || n.Level != c.Level || !slices.Equal(n.Groups, c.Groups) {
			p.stricter = append(p.stricter, c.Name)
		}
	}
	return p
}

// connACL is the "acl" object of a connection token's info: the user's
// attributes when the token was signed, so that revocation can check a
// connection listed by presence against a new ACL. Empty fields are left
// out: a token without them stands for a user with no groups, not staff,
// not superuser.
type connACL struct {
	Groups    []string `json:"groups,omitempty"`
	Staff     bool     `json:"staff,omitempty"`
	Superuser bool     `json:"superuser,omitempty"`
}

// connInfoACL is the "acl" of a connection info.
const connInfoACL = "acl"

// presenceUser is the ACL user of a connection listed by presence: its id,
// and the attributes of its connection token's info.
func presenceUser(ci centrifugo.ClientInfo) acl.User {
	if ci.User == "" {
		return acl.Anonymous()
	}
	var info struct {
		Username string  `json:"username"`
		ACL      connACL `json:"acl"`
	}
	_ = json.Unmarshal(ci.ConnInfo, &info) // unreadable: the least privileged authenticated user
	return acl.User{ID: ci.User, Username: info.Username, Groups: info.ACL.Groups, Staff: info.ACL.Staff, Superuser: info.ACL.Superuser}
}
