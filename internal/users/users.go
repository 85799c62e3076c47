// Package users reads the token service's users file: who may log in with a
// password, their stable id, groups and staff/superuser flags.
package users

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/pkg/acl"
)

// User is one entry of the users file.
type User struct {
	Username     string
	PasswordHash string // bcrypt
	ID           string // stable id for the tokens' sub; defaults to Username
	Groups       []string
	Staff        bool
	Superuser    bool
}

// ACL returns the user as the ACL knows them.
func (u User) ACL() acl.User {
	return acl.User{
		ID:        u.ID,
		Username:  u.Username,
		Groups:    slices.Clone(u.Groups),
		Staff:     u.Staff,
		Superuser: u.Superuser,
	}
}

// File is a parsed users file. It is immutable and safe for concurrent use;
// a nil *File has no users.
//
// Authenticate does the work of one comparison with the file's costliest
// hash for every attempt, whoever the user: an unknown user is compared
// with that hash, and a user whose hash is cheaper (cost c < the costliest
// m) is compared with their hash and then with padding hashes of costs c,
// c+1, ..., m-1, which adds up to the same 2^m rounds. So the answer's
// timing tells neither whether a user exists nor how strong their hash is.
type File struct {
	byName map[string]User
	// dummy is compared against when the user is unknown: the costliest
	// hash of the file (the result is ignored).
	dummy   []byte
	maxCost int
	// pad holds, for each cost from the cheapest hash's to maxCost-1, a hash
	// of a random password at that cost (the results are ignored).
	pad map[int][]byte
	// compare is bcrypt.CompareHashAndPassword; tests count the work.
	compare func(hash, password []byte) error
	// name, entry and line say where each user was written (Source).
	name  string
	entry map[string]int
	line  func(entry int, field string) int
}

// Errors of Authenticate.
var (
	// ErrInvalidCredentials is an unknown user or a wrong password; the two
	// are not told apart.
	ErrInvalidCredentials = errors.New("invalid username or password")
)

// fallbackDummyHash (cost 12, of a password nobody uses) is compared
// against for unknown users when the file has no users.
const fallbackDummyHash = "$2a$12$z18ASYKXgJexckpxkfzxS.2FGVsrDV1oHs84vSpaxv6icJxE24Ab6"

// New builds a File from users, validating them like Parse does (without
// file and line in errors).
func New(list []User) (*File, error) {
	f, ferr := build(list, nil)
	if ferr != nil {
		return nil, ferr
	}
	return f, nil
}

// Lookup returns the user named username.
func (f *File) Lookup(username string) (User, bool) {
	if f == nil {
		return User{}, false
	}
	u, ok := f.byName[username]
	if ok {
		u.Groups = slices.Clone(u.Groups)
	}
	return u, ok
}

// Source is "file:line" of a field of the user's entry (of the entry when
// the field is not written), "" when unknown.
func (f *File) Source(username, field string) string {
	if f == nil || f.name == "" {
		return ""
	}
	i, ok := f.entry[username]
	if !ok {
		return ""
	}
	if n := f.line(i, field); n > 0 {
		return f.name + ":" + strconv.Itoa(n)
	}
	return f.name
}

// Users returns every user, in no particular order.
func (f *File) Users() []User {
	if f == nil {
		return nil
	}
	out := make([]User, 0, len(f.byName))
	for _, u := range f.byName {
		u.Groups = slices.Clone(u.Groups)
		out = append(out, u)
	}
	return out
}

// Len is the number of users.
func (f *File) Len() int {
	if f == nil {
		return 0
	}
	return len(f.byName)
}

// Authenticate checks username and password. It returns
// ErrInvalidCredentials for an unknown user or a wrong password. Every
// call does the work of one comparison with the costliest hash of the file
// (see File).
func (f *File) Authenticate(username, password string) (User, error) {
	compare := bcrypt.CompareHashAndPassword
	if f != nil && f.compare != nil {
		compare = f.compare
	}
	pw := []byte(password)
	u, ok := f.Lookup(username)
	if !ok {
		hash := []byte(fallbackDummyHash)
		if f != nil && f.dummy != nil {
			hash = f.dummy
		}
		_ = compare(hash, pw)
		return User{}, ErrInvalidCredentials
	}
	err := compare([]byte(u.PasswordHash), pw)
	if cost, cerr := bcrypt.Cost([]byte(u.PasswordHash)); cerr == nil {
		for c := cost; c < f.maxCost; c++ {
			_ = compare(f.pad[c], pw)
		}
	}
	if err != nil {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// HashPassword returns the bcrypt hash of password at cost (0: 12).
func HashPassword(password []byte, cost int) (string, error) {
	if len(password) == 0 {
		return "", errors.New("empty password")
	}
	if len(password) > 72 {
		return "", fmt.Errorf("password is %d bytes long; bcrypt uses at most 72", len(password))
	}
	if cost == 0 {
		cost = 12
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return string(h), nil
}

// build validates the users and indexes them.
func build(list []User, line func(entry int, field string) int) (*File, *FileError) {
	if line == nil {
		line = func(int, string) int { return 0 }
	}
	fail := func(i int, field, format string, args ...any) *FileError {
		return &FileError{Line: line(i, field), Entry: i, Label: list[i].Username, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	f := &File{byName: make(map[string]User, len(list)), entry: make(map[string]int, len(list)), line: line}
	minCost := 0
	firstName := map[string]int{}
	firstID := map[string]int{}
	for i, u := range list {
		if u.Username == "" {
			return nil, fail(i, "username", "missing or empty")
		}
		if j, dup := firstName[u.Username]; dup {
			return nil, fail(i, "username", "duplicate username %q (first at entry %d)", u.Username, j)
		}
		firstName[u.Username] = i
		if u.PasswordHash == "" {
			return nil, fail(i, "password_hash", "missing or empty (make one with: tokensvc hash-password)")
		}
		cost, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			return nil, fail(i, "password_hash", "not a bcrypt hash (make one with: tokensvc hash-password)")
		}
		if f.dummy == nil || cost > f.maxCost {
			f.dummy, f.maxCost = []byte(u.PasswordHash), cost
		}
		if minCost == 0 || cost < minCost {
			minCost = cost
		}
		if u.ID == "" {
			u.ID = u.Username
		}
		if j, dup := firstID[u.ID]; dup {
			return nil, fail(i, "id", "id %q is already the id of entry %d (ids are the tokens' sub and must be unique)", u.ID, j)
		}
		firstID[u.ID] = i
		for _, g := range u.Groups {
			if g == "" {
				return nil, fail(i, "groups", "empty group name")
			}
		}
		u.Groups = slices.Clone(u.Groups)
		f.byName[u.Username] = u
		f.entry[u.Username] = i
	}
	if err := f.makePadding(minCost); err != nil {
		return nil, &FileError{Entry: -1, Msg: err.Error()}
	}
	return f, nil
}

// makePadding makes the padding hashes for the costs from minCost to
// f.maxCost-1: about the work of one login at the costliest hash, once per
// load, and none when all hashes have the same cost.
func (f *File) makePadding(minCost int) error {
	for c := minCost; c > 0 && c < f.maxCost; c++ {
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		h, err := bcrypt.GenerateFromPassword(pw, c)
		if err != nil {
			return fmt.Errorf("bcrypt padding hash of cost %d: %w", c, err)
		}
		if f.pad == nil {
			f.pad = map[int][]byte{}
		}
		f.pad[c] = h
	}
	return nil
}
