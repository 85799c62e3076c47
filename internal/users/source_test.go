package users_test

import (
	"testing"

	"github.com/instant-go/instant/internal/users"
)

// TestSource: a parsed file says where each user and field was written.
func TestSource(t *testing.T) {
	h := hash(t, "secret")
	f, err := users.Parse("users.yaml", []byte("users:\n  - username: alice\n    password_hash: \""+h+"\"\n    groups: [g1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ user, field, want string }{
		{"alice", "groups", "users.yaml:4"},
		{"alice", "staff", "users.yaml:2"}, // not written: the entry
		{"bob", "staff", ""},
	} {
		if got := f.Source(tc.user, tc.field); got != tc.want {
			t.Errorf("Source(%s, %s) = %q, want %q", tc.user, tc.field, got, tc.want)
		}
	}
	if got := len(f.Users()); got != 1 {
		t.Errorf("Users: %d, want 1", got)
	}
	if nf, _ := users.New([]users.User{{Username: "x", PasswordHash: h}}); nf.Source("x", "") != "" {
		t.Error("a File built by New has no source")
	}
}
