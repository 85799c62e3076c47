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

func ExampleRegistry_CheckPublish() {
	r, _ := acl.NewRegistry([]acl.Channel{{Name: "news", Level: acl.LevelPublic, Active: true}})
	err := r.CheckPublish("shop", []string{"news", "$nope"})
	var e *acl.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code(), e.Channel)
	}
	// Output:
	// unknown_channel $nope
}
