package acl_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/instant-go/instant/pkg/acl"
)

// testUsers are the kinds of users of the rule table, in column order.
var testUsers = []struct {
	name string
	u    acl.User
}{
	{"anonymous", acl.Anonymous()},
	// Flags of an unauthenticated user are ignored.
	{"anonymous with flags", acl.User{Groups: []string{"g1"}, Staff: true, Superuser: true}},
	{"user", acl.User{ID: "1", Username: "alice"}},
	{"member", acl.User{ID: "2", Username: "bob", Groups: []string{"g0", "g1"}}},
	{"non-member", acl.User{Username: "carol", Groups: []string{"g2"}}},
	{"staff", acl.User{ID: "4", Staff: true}},
	{"superuser", acl.User{ID: "5", Username: "root", Superuser: true}},
}

func ruleRegistry(tb testing.TB) *acl.Registry {
	tb.Helper()
	var chs []acl.Channel
	for _, active := range []bool{true, false} {
		prefix := "on-"
		if !active {
			prefix = "off-"
		}
		chs = append(chs,
			acl.Channel{Name: prefix + "public", Level: acl.LevelPublic, Active: active},
			acl.Channel{Name: prefix + "users", Level: acl.LevelUsers, Active: active},
			acl.Channel{Name: prefix + "groups", Level: acl.LevelGroups, Active: active, Groups: []string{"g1", "g3"}},
			acl.Channel{Name: prefix + "staff", Level: acl.LevelStaff, Active: active},
			acl.Channel{Name: prefix + "superuser", Level: acl.LevelSuperuser, Active: active},
			acl.Channel{Name: prefix + "default", Active: active}, // "" is superuser
		)
	}
	r, err := acl.NewRegistry(chs)
	if err != nil {
		tb.Fatalf("NewRegistry: %v", err)
	}
	return r
}

func TestCanSubscribe(t *testing.T) {
	r := ruleRegistry(t)
	// want has one letter per testUsers entry: Y allowed, n refused.
	tests := []struct {
		channel string
		want    string
	}{
		{"on-public", "YYYYYYY"},
		{"on-users", "nnYYYYY"},
		{"on-groups", "nnnYnnY"},
		{"on-staff", "nnnnnYY"},
		{"on-superuser", "nnnnnnY"},
		{"on-default", "nnnnnnY"},
		{"off-public", "nnnnnnn"},
		{"off-users", "nnnnnnn"},
		{"off-groups", "nnnnnnn"},
		{"off-staff", "nnnnnnn"},
		{"off-superuser", "nnnnnnn"},
		{"unknown", "nnnnnnn"},
		{"", "nnnnnnn"},
	}
	for _, tc := range tests {
		for i, tu := range testUsers {
			t.Run(tc.channel+"/"+tu.name, func(t *testing.T) {
				want := tc.want[i] == 'Y'
				if got := r.CanSubscribe(tu.u, tc.channel); got != want {
					t.Errorf("CanSubscribe(%s, %q) = %v, want %v", tu.name, tc.channel, got, want)
				}
			})
		}
	}
}

func TestChannelsFor(t *testing.T) {
	r := ruleRegistry(t)
	tests := []struct {
		user int
		want []string
	}{
		{0, []string{"on-public"}},
		{1, []string{"on-public"}},
		{2, []string{"on-public", "on-users"}},
		{3, []string{"on-groups", "on-public", "on-users"}},
		{4, []string{"on-public", "on-users"}},
		{5, []string{"on-public", "on-staff", "on-users"}},
		{6, []string{"on-default", "on-groups", "on-public", "on-staff", "on-superuser", "on-users"}},
	}
	for _, tc := range tests {
		tu := testUsers[tc.user]
		t.Run(tu.name, func(t *testing.T) {
			var got []string
			for _, c := range r.ChannelsFor(tu.u) {
				got = append(got, c.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ChannelsFor(%s) = %q, want %q", tu.name, got, tc.want)
			}
		})
	}
}

// A user in several of a channel's groups gets the channel once.
func TestChannelsForNoDuplicates(t *testing.T) {
	r, err := acl.NewRegistry([]acl.Channel{
		{Name: "b", Level: acl.LevelGroups, Active: true, Groups: []string{"x", "y", "z"}},
		{Name: "a", Level: acl.LevelGroups, Active: true, Groups: []string{"y"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ChannelsFor(acl.Anonymous()); got == nil || len(got) != 0 {
		t.Errorf("ChannelsFor(anonymous) = %#v, want an empty, non-nil list", got)
	}
	u := acl.User{ID: "1", Groups: []string{"x", "y", "z", "y"}}
	var got []string
	for _, c := range r.ChannelsFor(u) {
		got = append(got, c.Name)
	}
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("ChannelsFor = %q, want %q", got, want)
	}
}

func TestNewRegistryErrors(t *testing.T) {
	tests := []struct {
		name string
		chs  []acl.Channel
		want string
	}{
		{"empty name", []acl.Channel{{Level: acl.LevelPublic}}, "entry 0: name: missing or empty"},
		{"space in name", []acl.Channel{{Name: " a", Level: acl.LevelPublic}}, "white space"},
		{"duplicate", []acl.Channel{{Name: "a"}, {Name: "b"}, {Name: "a"}}, `entry 2 (a): name: duplicate name "a" (first defined at entry 0)`},
		{"unknown level", []acl.Channel{{Name: "a", Level: "admin"}}, `entry 0 (a): level: unknown level "admin" (want one of public, users, groups, staff, superuser)`},
		{"upper-case level", []acl.Channel{{Name: "a", Level: "Public"}}, `unknown level "Public"`},
		{"groups without groups", []acl.Channel{{Name: "a", Level: acl.LevelGroups}}, "entry 0 (a): groups: level groups needs a non-empty groups list"},
		{"groups on staff", []acl.Channel{{Name: "a", Level: acl.LevelStaff, Groups: []string{"g"}}}, "groups: groups is only used with level groups, not staff"},
		{"empty group", []acl.Channel{{Name: "a", Level: acl.LevelGroups, Groups: []string{""}}}, "groups: empty group name"},
		{"empty publisher", []acl.Channel{{Name: "a", Publishers: []string{""}}}, "publishers: empty producer name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := acl.NewRegistry(tc.chs)
			if err == nil {
				t.Fatalf("NewRegistry: no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRegistry error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRegistryIsImmutable(t *testing.T) {
	chs := []acl.Channel{{Name: "g", Level: acl.LevelGroups, Active: true, Groups: []string{"g1"}, Publishers: []string{"p"}}}
	r, err := acl.NewRegistry(chs)
	if err != nil {
		t.Fatal(err)
	}
	chs[0].Groups[0] = "evil"
	chs[0].Publishers[0] = "evil"
	c, _ := r.Lookup("g")
	c.Groups[0] = "evil"
	r.Channels()[0].Publishers[0] = "evil"
	r.ChannelsFor(acl.User{ID: "1", Groups: []string{"g1"}})[0].Groups[0] = "evil"

	if !r.CanSubscribe(acl.User{ID: "1", Groups: []string{"g1"}}, "g") {
		t.Error("member refused after callers changed slices they were given")
	}
	if r.CanSubscribe(acl.User{ID: "1", Groups: []string{"evil"}}, "g") {
		t.Error("non-member admitted after callers changed slices they were given")
	}
	if err := r.CheckPublish("p", []string{"g"}); err != nil {
		t.Errorf("CheckPublish(p) = %v after callers changed slices they were given", err)
	}
}

func TestLookupChannelsLen(t *testing.T) {
	r, err := acl.NewRegistry([]acl.Channel{{Name: "b", Level: acl.LevelPublic, Active: true}, {Name: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	c, ok := r.Lookup("a")
	if !ok || c.Level != acl.LevelSuperuser || c.Active {
		t.Errorf("Lookup(a) = %+v, %v; want level superuser (the default), inactive", c, ok)
	}
	if _, ok := r.Lookup("c"); ok {
		t.Error("Lookup(c) found an unregistered channel")
	}
	var names []string
	for _, c := range r.Channels() {
		names = append(names, c.Name)
	}
	if want := []string{"a", "b"}; !slices.Equal(names, want) {
		t.Errorf("Channels = %q, want %q", names, want)
	}
	var nilReg *acl.Registry
	if nilReg.Len() != 0 || nilReg.CanSubscribe(acl.User{Superuser: true, ID: "1"}, "a") || len(nilReg.ChannelsFor(acl.User{})) != 0 {
		t.Error("a nil registry is not empty")
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    acl.Level
		wantErr bool
	}{
		{"", acl.LevelSuperuser, false},
		{"public", acl.LevelPublic, false},
		{"users", acl.LevelUsers, false},
		{"groups", acl.LevelGroups, false},
		{"staff", acl.LevelStaff, false},
		{"superuser", acl.LevelSuperuser, false},
		{"admin", "", true},
		{"Staff", "", true},
	}
	for _, tc := range tests {
		got, err := acl.ParseLevel(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseLevel(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestNewRegistryFromEntries: decoded entries carry where they were
// written, and errors say file, line, entry and field.
func TestNewRegistryFromEntries(t *testing.T) {
	entries := []acl.ChannelEntry{
		{Channel: acl.Channel{Name: "a", Level: acl.LevelPublic, Active: true}, File: "c.yaml", Line: 2, Fields: map[string]int{"name": 2, "level": 3}},
		{Channel: acl.Channel{Name: "b", Level: "admin", Active: true}, File: "c.yaml", Line: 4, Fields: map[string]int{"name": 4, "level": 5}},
	}
	_, err := acl.NewRegistryFromEntries(entries)
	if want := `c.yaml:5: entry 1 (b): level: unknown level "admin"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to contain %q", err, want)
	}
	entries[1].Level, entries[1].Name = acl.LevelUsers, "a"
	_, err = acl.NewRegistryFromEntries(entries)
	if want := `c.yaml:4: entry 1 (a): name: duplicate name "a" (first defined at line 2, entry 0)`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	entries[1].Name = "b"
	r, err := acl.NewRegistryFromEntries(entries)
	if err != nil || r.Len() != 2 || !r.CanSubscribe(acl.User{ID: "1"}, "b") {
		t.Errorf("valid entries: %v, %v", r, err)
	}
}
