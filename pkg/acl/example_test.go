package acl_test

import (
	"errors"
	"fmt"

	"github.com/instant-go/instant/pkg/acl"
)

func ExampleRegistry_ChannelsFor() {
	r, err := acl.NewRegistry([]acl.Channel{
		{Name: "public", Level: acl.LevelPublic, Active: true},
		{Name: "$users", Level: acl.LevelUsers, Active: true},
		{Name: "$group1", Level: acl.LevelGroups, Active: true, Groups: []string{"group1"}},
		{Name: "$staff", Level: acl.LevelStaff, Active: true},
	})
	if err != nil {
		panic(err)
	}
	for _, u := range []acl.User{
		acl.Anonymous(),
		{ID: "7", Username: "alice", Groups: []string{"group1"}},
		{ID: "8", Username: "bob", Staff: true},
	} {
		fmt.Printf("%q:", u.Username)
		for _, c := range r.ChannelsFor(u) {
			fmt.Printf(" %s(%s)", c.Name, c.Level)
		}
		fmt.Println()
	}
	// Output:
	// "": public(public)
	// "alice": $group1(groups) $users(users) public(public)
	// "bob": $staff(staff) $users(users) public(public)
}

func ExampleParse() {
	r, err := acl.Parse("channels.yaml", []byte(`channels:
  - name: public
    level: public
  - name: $billing
    level: staff
    publishers: [billing]
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Len(), "channels")
	fmt.Println(r.CheckPublish("billing", []string{"$billing", "public"}))
	fmt.Println(r.CheckPublish("shop", []string{"public", "$billing"}))

	_, err = acl.Parse("channels.yaml", []byte(`channels:
  - name: $billing
    levle: staff
`))
	fmt.Println(err)
	// Output:
	// 2 channels
	// <nil>
	// publisher_denied: producer "shop" may not publish to channel "$billing"
	// channels.yaml:3: entry 0 ($billing): unknown key "levle" (want one of name, level, active, groups, publishers) (did you mean "level"?)
}

func ExampleRegistry_CheckPublish() {
	r, _ := acl.Parse("channels.json", []byte(`{"channels": [{"name": "news", "level": "public"}]}`))
	err := r.CheckPublish("shop", []string{"news", "$nope"})
	var e *acl.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code(), e.Channel)
	}
	// Output:
	// unknown_channel $nope
}
