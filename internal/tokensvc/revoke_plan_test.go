package tokensvc

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/centrifugo"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

// TestPlanRevocations: what a change of the files takes away, by the ACL's
// own rule.
func TestPlanRevocations(t *testing.T) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	h1, h2 := hash("one"), hash("two")
	mkUsers := func(list ...users.User) *users.File {
		f, err := users.New(list)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	mkReg := func(chs ...acl.Channel) *acl.Registry {
		r, err := acl.NewRegistry(chs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	g1 := acl.Channel{Name: "$g1", Level: acl.LevelGroups, Groups: []string{"g1"}, Active: true}
	pub := acl.Channel{Name: "public", Level: acl.LevelPublic, Active: true}
	staff := acl.Channel{Name: "$staff", Level: acl.LevelStaff, Active: true}
	old := accessState{
		reg: mkReg(g1, pub, staff),
		users: mkUsers(
			users.User{Username: "ann", PasswordHash: h1, Groups: []string{"g1"}},
			users.User{Username: "ben", PasswordHash: h1, Staff: true},
			users.User{Username: "cid", PasswordHash: h1, ID: "7"},
			users.User{Username: "dee", PasswordHash: h1},
		),
	}
	cur := accessState{
		reg: mkReg(g1, acl.Channel{Name: "public", Level: acl.LevelUsers, Active: true}, staff),
		users: mkUsers(
			users.User{Username: "ann", PasswordHash: h1},              // left g1
			users.User{Username: "ben", PasswordHash: h2, Staff: true}, // new password
			users.User{Username: "cid", PasswordHash: h1, ID: "8"},     // new id
		), // dee removed
	}
	p := planRevocations(old, cur)
	if want := []string{"7", "ben", "dee"}; !slices.Equal(p.disconnect, want) {
		t.Errorf("disconnect %v, want %v", p.disconnect, want)
	}
	if want := []centrifugo.Unsubscribe{{Channel: "$g1", User: "ann"}}; !slices.Equal(p.unsubscribe, want) {
		t.Errorf("unsubscribe %+v, want %+v", p.unsubscribe, want)
	}
	if want := []string{"public"}; !slices.Equal(p.stricter, want) {
		t.Errorf("changed channels %v, want %v", p.stricter, want)
	}
	for _, id := range []string{"ann", "ben", "7", "8", "dee"} {
		if !p.fileUsers[id] {
			t.Errorf("%s is a users-file user, left to the exact rules", id)
		}
	}
	if p := planRevocations(cur, cur); len(p.disconnect)+len(p.unsubscribe)+len(p.stricter) != 0 {
		t.Errorf("no change, plan %+v", p)
	}
}

// TestPresenceUser: the connection info the service signs reads back as the
// ACL user it was signed for.
func TestPresenceUser(t *testing.T) {
	info, _ := json.Marshal(map[string]any{"username": "gina", "site": "s", connInfoACL: connACL{Groups: []string{"g2"}, Staff: true}})
	u := presenceUser(centrifugo.ClientInfo{User: "u-7", ConnInfo: info})
	if u.ID != "u-7" || u.Username != "gina" || !slices.Equal(u.Groups, []string{"g2"}) || !u.Staff || u.Superuser {
		t.Errorf("got %+v", u)
	}
	if u := presenceUser(centrifugo.ClientInfo{User: "", Client: "c"}); u.Authenticated() {
		t.Errorf("anonymous connection read as %+v", u)
	}
	if u := presenceUser(centrifugo.ClientInfo{User: "x", ConnInfo: []byte(`nonsense`)}); !u.Authenticated() || u.Staff || len(u.Groups) > 0 {
		t.Errorf("unreadable info: %+v, want the least privileged authenticated user", u)
	}
}

// TestRevokeSettle: a run with requests to retry keeps the base, so the
// next run plans the same revocations again, until runs have failed for
// longer than the retry window (the token lifetimes and Centrifugo's grace);
// a complete run moves the base and forgets the failures.
func TestRevokeSettle(t *testing.T) {
	reg := func() *acl.Registry {
		r, err := acl.NewRegistry(nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	oldState, newState := accessState{reg: reg()}, accessState{reg: reg()}
	r := &revoker{log: zap.NewNop(), base: oldState, retryWindow: time.Minute}
	failed, ok := revokeStats{errors: 1, retry: 1}, revokeStats{}

	if r.settle(time.Now(), newState, failed) || r.base.reg != oldState.reg {
		t.Fatal("a failed run moved the base")
	}
	if r.settle(time.Now(), newState, failed) || r.base.reg != oldState.reg {
		t.Fatal("a second failed run within the window moved the base")
	}
	r.failedSince = time.Now().Add(-2 * time.Minute)
	if !r.settle(time.Now(), newState, failed) || r.base.reg != newState.reg || !r.failedSince.IsZero() {
		t.Error("failing for longer than the window: not given up")
	}
	r.base = oldState
	if !r.settle(time.Now(), newState, ok) || r.base.reg != newState.reg {
		t.Error("a complete run did not move the base")
	}
}
