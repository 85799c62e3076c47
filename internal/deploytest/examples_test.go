package deploytest

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/users"
	"github.com/instant-go/instant/pkg/acl"
)

func loadChannels(tb testing.TB) *acl.Registry {
	tb.Helper()
	const rel = "deployments/channels.example.yaml"
	reg, err := channelsfile.Parse(rel, readRepoFile(tb, rel))
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return reg
}

func loadUsers(tb testing.TB) *users.File {
	tb.Helper()
	const rel = "deployments/users.example.yaml"
	f, err := users.Parse(rel, readRepoFile(tb, rel))
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return f
}

// demoPassword is the password the users example documents in its comment.
func demoPassword(tb testing.TB) string {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^#.*demo password "([^"]+)"`).FindSubmatch(readRepoFile(tb, "deployments/users.example.yaml"))
	if m == nil {
		tb.Fatal(`deployments/users.example.yaml: no comment naming the demo password ("... demo password "..."")`)
	}
	return string(m[1])
}

func TestChannelsExample(t *testing.T) {
	reg := loadChannels(t)
	tests := []struct {
		name       string
		level      acl.Level
		groups     []string
		publishers []string
	}{
		{"public", acl.LevelPublic, nil, nil},
		{"$users", acl.LevelUsers, nil, nil},
		{"$group1", acl.LevelGroups, []string{"group1"}, nil},
		{"$staff", acl.LevelStaff, nil, nil},
		{"$billing", acl.LevelStaff, nil, []string{"billing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, ok := reg.Lookup(tc.name)
			if !ok {
				t.Fatalf("channel %s missing", tc.name)
			}
			if ch.Level != tc.level || !ch.Active || !slices.Equal(ch.Groups, tc.groups) || !slices.Equal(ch.Publishers, tc.publishers) {
				t.Errorf("got %+v, want level %s, active, groups %v, publishers %v", ch, tc.level, tc.groups, tc.publishers)
			}
		})
	}
	if err := reg.CheckPublish("", []string{"$billing"}); err == nil {
		t.Error("$billing: any producer may publish, want only billing")
	}
	if err := reg.CheckPublish("billing", []string{"$billing"}); err != nil {
		t.Errorf("$billing: producer billing refused: %v", err)
	}
}

func TestUsersExample(t *testing.T) {
	reg := loadChannels(t)
	f := loadUsers(t)
	pw := demoPassword(t)
	if !strings.Contains(pw, "demo") {
		t.Errorf("demo password %q does not look like one", pw)
	}
	tests := []struct {
		username string
		channels []string // what the ACL gives them from the channels example
	}{
		{"alice", []string{"$group1", "$users", "public"}},
		{"bob", []string{"$billing", "$staff", "$users", "public"}},
		{"admin", []string{"$billing", "$group1", "$staff", "$users", "public"}},
	}
	if f.Len() != len(tests) {
		t.Errorf("%d users, want %d", f.Len(), len(tests))
	}
	checked := map[string]error{} // bcrypt is slow: each distinct hash once
	for _, tc := range tests {
		t.Run(tc.username, func(t *testing.T) {
			u, ok := f.Lookup(tc.username)
			if !ok {
				t.Fatalf("no user %s", tc.username)
			}
			err, done := checked[u.PasswordHash]
			if !done {
				err = bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw))
				checked[u.PasswordHash] = err
			}
			if err != nil {
				t.Fatalf("the documented demo password does not match the hash: %v", err)
			}
			var got []string
			for _, ch := range reg.ChannelsFor(u.ACL()) {
				got = append(got, ch.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.channels) {
				t.Errorf("channels %v, want %v", got, tc.channels)
			}
		})
	}
}
