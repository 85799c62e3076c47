package acl_test

import (
	"math/rand/v2"
	"testing"

	"github.com/instant-go/instant/pkg/acl"
)

// TestExplainAgreesWithReference: ExplainSubscribe gives the decision of the
// reference model (and so of CanSubscribe) for random registries and users.
func TestExplainAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		chs := randomChannels(rng)
		r, err := acl.NewRegistry(chs)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			u := randomUser(rng)
			if d := r.ExplainSubscribe(u, "unknown"); d.Allowed || d.Rule != acl.RuleUnknownChannel {
				t.Fatalf("unknown channel: %+v", d)
			}
			for _, c := range chs {
				d := r.ExplainSubscribe(u, c.Name)
				if want := refMayRead(u, c, true); d.Allowed != want || d.Rule.Allowed() != want {
					t.Fatalf("ExplainSubscribe(%+v, %+v) = %+v, reference says %v", u, c, d, want)
				}
			}
		}
	}
}

// TestExplainReasons: each rule, its code, the channel's field and line, and
// the user's half of the reason.
func TestExplainReasons(t *testing.T) {
	fields := func(line int) map[string]int {
		return map[string]int{"name": line, "level": line + 1, "active": line + 2, "groups": line + 3}
	}
	r, err := acl.NewRegistryFromEntries([]acl.ChannelEntry{
		{Channel: acl.Channel{Name: "public", Level: acl.LevelPublic, Active: true}, File: "channels.yaml", Line: 2, Fields: fields(2)},
		{Channel: acl.Channel{Name: "$staff", Level: acl.LevelStaff, Active: true}, File: "channels.yaml", Line: 10, Fields: fields(10)},
		{Channel: acl.Channel{Name: "$g", Level: acl.LevelGroups, Groups: []string{"g1", "g2"}, Active: true}, File: "channels.yaml", Line: 20, Fields: fields(20)},
		{Channel: acl.Channel{Name: "$old", Level: acl.LevelUsers}, File: "channels.yaml", Line: 30, Fields: fields(30)},
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := acl.User{Username: "alice", Groups: []string{"g2", "g9"}}
	boss := acl.User{Username: "boss", Superuser: true}
	for _, tc := range []struct {
		name       string
		u          acl.User
		channel    string
		rule       string
		at         string
		chanReason string
		userReason string
	}{
		{"public", acl.Anonymous(), "public", "public", "channels.yaml:3", "public has level public", "everyone may subscribe"},
		{"anonymous", acl.Anonymous(), "$staff", "not_authenticated", "channels.yaml:11", "$staff has level staff", "alice is anonymous (only public channels)"},
		{"not staff", alice, "$staff", "not_staff", "channels.yaml:11", "$staff has level staff", "alice is not staff"},
		{"superuser", boss, "$staff", "superuser", "channels.yaml:11", "$staff has level staff", "alice is a superuser (every active channel)"},
		{"in group", alice, "$g", "in_group", "channels.yaml:23", "$g has level groups [g1, g2]", "alice is in g2"},
		{"not in group", acl.User{Username: "x", Groups: []string{"g7"}}, "$g", "not_in_group", "channels.yaml:23", "$g has level groups [g1, g2]", "alice is in none of them (alice's groups: g7)"},
		{"inactive", boss, "$old", "inactive_channel", "channels.yaml:32", "$old is inactive (nobody may subscribe)", ""},
		{"unknown", boss, "$nope", "unknown_channel", "", "$nope is not in the channels file", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.ExplainSubscribe(tc.u, tc.channel)
			if got := d.Rule.String(); got != tc.rule {
				t.Errorf("rule %s, want %s", got, tc.rule)
			}
			if d.Allowed != r.CanSubscribe(tc.u, tc.channel) {
				t.Errorf("Allowed %v differs from CanSubscribe", d.Allowed)
			}
			if got := d.Source.At(d.Field); got != tc.at {
				t.Errorf("at %q, want %q", got, tc.at)
			}
			if got := d.ChannelReason(); got != tc.chanReason {
				t.Errorf("channel reason %q, want %q", got, tc.chanReason)
			}
			if got := d.UserReason("alice", tc.u); got != tc.userReason {
				t.Errorf("user reason %q, want %q", got, tc.userReason)
			}
		})
	}
}
