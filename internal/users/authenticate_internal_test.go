package users

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestHardening11CheaperHashesDoCostliestWork (issue 12, point 11): every
// attempt, for an unknown user, a user with the costliest hash or a user
// with a cheaper one, right or wrong password, does the bcrypt work of one
// comparison with the file's costliest hash (2^cost rounds, counted by an
// injected comparison), so the timing tells nothing about the user.
func TestHardening11CheaperHashesDoCostliestWork(t *testing.T) {
	gen := func(pw string, cost int) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	const maxCost = bcrypt.MinCost + 3
	f, err := New([]User{
		{Username: "cheap", PasswordHash: gen("cheap pw", bcrypt.MinCost)},
		{Username: "middle", PasswordHash: gen("middle pw", bcrypt.MinCost+2)},
		{Username: "costly", PasswordHash: gen("costly pw", maxCost)},
	})
	if err != nil {
		t.Fatal(err)
	}
	countWork := func(f *File, rounds *int) {
		f.compare = func(hash, pw []byte) error {
			cost, err := bcrypt.Cost(hash)
			if err != nil {
				t.Fatalf("compared with a non-bcrypt hash %q", hash)
			}
			*rounds += 1 << cost
			return bcrypt.CompareHashAndPassword(hash, pw)
		}
	}
	var rounds int
	countWork(f, &rounds)
	for _, tc := range []struct {
		user, pw string
		ok       bool
	}{
		{"cheap", "cheap pw", true},
		{"cheap", "wrong", false},
		{"middle", "middle pw", true},
		{"middle", "wrong", false},
		{"costly", "costly pw", true},
		{"costly", "wrong", false},
		{"nobody", "cheap pw", false},
		{"nobody", "costly pw", false},
	} {
		rounds = 0
		_, err := f.Authenticate(tc.user, tc.pw)
		if (err == nil) != tc.ok {
			t.Errorf("Authenticate(%s, %s) = %v, want ok %v", tc.user, tc.pw, err, tc.ok)
		}
		if want := 1 << maxCost; rounds != want {
			t.Errorf("Authenticate(%s, %s): %d bcrypt rounds, want %d (one comparison at the costliest cost %d)", tc.user, tc.pw, rounds, want, maxCost)
		}
	}

}
