package acl_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/instant-go/instant/pkg/acl"
)

// refMayRead is the subscribe rule written out as a plain table of
// questions, independently of the package: the reference model.
func refMayRead(u acl.User, c acl.Channel, registered bool) bool {
	if !registered || !c.Active {
		return false
	}
	loggedIn := u.ID != "" || u.Username != ""
	member := false
	for _, want := range c.Groups {
		if slices.Contains(u.Groups, want) {
			member = true
		}
	}
	level := c.Level
	if level == "" {
		level = acl.LevelSuperuser
	}
	switch level {
	case acl.LevelPublic:
		return true
	case acl.LevelUsers:
		return loggedIn
	case acl.LevelGroups:
		return loggedIn && (member || u.Superuser)
	case acl.LevelStaff:
		return loggedIn && (u.Staff || u.Superuser)
	case acl.LevelSuperuser:
		return loggedIn && u.Superuser
	}
	panic("unknown level " + level)
}

// refPublishCode is the publish rule for one channel: "" when allowed.
func refPublishCode(producer string, c acl.Channel, registered bool) string {
	switch {
	case !registered:
		return acl.CodeUnknownChannel
	case !c.Active:
		return acl.CodeInactiveChannel
	case len(c.Publishers) == 0:
		return ""
	case producer != "" && slices.Contains(c.Publishers, producer):
		return ""
	}
	return acl.CodePublisherDenied
}

var (
	propLevels    = []acl.Level{"", acl.LevelPublic, acl.LevelUsers, acl.LevelGroups, acl.LevelStaff, acl.LevelSuperuser}
	propGroups    = []string{"a", "b", "c", "d"}
	propProducers = []string{"", "shop", "crm", "billing"}
)

func pick[T any](rng *rand.Rand, from []T) []T {
	var out []T
	for _, x := range from {
		if rng.IntN(3) == 0 {
			out = append(out, x)
		}
	}
	return out
}

func randomChannels(rng *rand.Rand) []acl.Channel {
	chs := make([]acl.Channel, rng.IntN(12))
	for i := range chs {
		c := acl.Channel{
			Name:   fmt.Sprintf("ch%d", rng.IntN(1000)*100+i), // unique
			Level:  propLevels[rng.IntN(len(propLevels))],
			Active: rng.IntN(4) != 0,
		}
		if c.Level == acl.LevelGroups {
			c.Groups = pick(rng, propGroups)
			if len(c.Groups) == 0 {
				c.Groups = []string{propGroups[rng.IntN(len(propGroups))]}
			}
		}
		c.Publishers = pick(rng, propProducers[1:])
		chs[i] = c
	}
	return chs
}

func randomUser(rng *rand.Rand) acl.User {
	u := acl.User{Groups: pick(rng, propGroups), Staff: rng.IntN(3) == 0, Superuser: rng.IntN(5) == 0}
	if rng.IntN(4) != 0 {
		u.ID = fmt.Sprint(rng.IntN(100))
	}
	if rng.IntN(2) == 0 {
		u.Username = fmt.Sprintf("u%d", rng.IntN(100))
	}
	return u
}

// TestRuleAgreesWithReference checks the registry against the reference
// model over random registries and users.
func TestRuleAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checked, allowed := 0, 0
	for range 500 {
		chs := randomChannels(rng)
		r, err := acl.NewRegistry(chs)
		if err != nil {
			t.Fatalf("NewRegistry(%+v): %v", chs, err)
		}
		names := []string{"unknown"}
		for _, c := range chs {
			names = append(names, c.Name)
		}
		lookup := func(name string) (acl.Channel, bool) {
			for _, c := range chs {
				if c.Name == name {
					return c, true
				}
			}
			return acl.Channel{}, false
		}
		for range 10 {
			u := randomUser(rng)
			var want []string
			for _, name := range names {
				c, ok := lookup(name)
				w := refMayRead(u, c, ok)
				if w {
					want = append(want, name)
					allowed++
				}
				checked++
				if got := r.CanSubscribe(u, name); got != w {
					t.Fatalf("CanSubscribe(%+v, %+v) = %v, reference says %v", u, c, got, w)
				}
			}
			sort.Strings(want)
			var got []string
			for _, c := range r.ChannelsFor(u) {
				got = append(got, c.Name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("ChannelsFor(%+v) = %q, reference says %q", u, got, want)
			}
		}
		for _, producer := range propProducers {
			for range 5 {
				envelope := pick(rng, names)
				want := ""
				for _, name := range envelope {
					c, ok := lookup(name)
					if code := refPublishCode(producer, c, ok); code != "" {
						want = code
						break
					}
				}
				err := r.CheckPublish(producer, envelope)
				var e *acl.Error
				got := ""
				if errors.As(err, &e) {
					got = e.Code()
				} else if err != nil {
					t.Fatalf("CheckPublish error %T", err)
				}
				if got != want {
					t.Fatalf("CheckPublish(%q, %q) = %v, reference says %q", producer, envelope, err, want)
				}
			}
		}
	}
	// Guard against a generator that only produces refusals.
	if allowed == 0 || allowed == checked {
		t.Fatalf("degenerate sample: %d of %d allowed", allowed, checked)
	}
	t.Logf("%d subscribe decisions, %d allowed", checked, allowed)
}
