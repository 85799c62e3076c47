package users_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/instant-go/instant/internal/users"
)

func hash(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(h)
}

func TestParse(t *testing.T) {
	h := hash(t, "secret")
	yamlDoc := "users:\n" +
		"  - username: alice\n" +
		"    password_hash: \"" + h + "\"\n" +
		"    groups: [group1, group2]\n" +
		"    id: \"42\"\n" +
		"  - username: bob\n" +
		"    password_hash: '" + h + "'\n" +
		"    staff: true\n" +
		"    superuser: true\n"
	jsonDoc := `{"users":[{"username":"alice","password_hash":"` + h + `","groups":["group1","group2"],"id":"42"},` +
		`{"username":"bob","password_hash":"` + h + `","staff":true,"superuser":true}]}`
	for _, tc := range []struct{ name, data string }{
		{"users.yaml", yamlDoc},
		{"users.json", jsonDoc},
		{"bom.json", "\ufeff" + jsonDoc}, // read like the channels file: a byte order mark is dropped
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := users.Parse(tc.name, []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if f.Len() != 2 {
				t.Errorf("got %d users, want 2", f.Len())
			}
			a, ok := f.Lookup("alice")
			if !ok || a.ID != "42" || strings.Join(a.Groups, ",") != "group1,group2" || a.Staff || a.Superuser {
				t.Errorf("alice = %+v, %v", a, ok)
			}
			b, ok := f.Lookup("bob")
			if !ok || b.ID != "bob" || !b.Staff || !b.Superuser {
				t.Errorf("bob = %+v, %v; want id bob (the username), staff, superuser", b, ok)
			}
			if u, err := f.Authenticate("alice", "secret"); err != nil || u.Username != "alice" {
				t.Errorf("Authenticate(alice, secret) = %+v, %v", u, err)
			}
			for _, c := range [][2]string{{"alice", "wrong"}, {"nobody", "secret"}, {"alice", ""}} {
				if _, err := f.Authenticate(c[0], c[1]); !errors.Is(err, users.ErrInvalidCredentials) {
					t.Errorf("Authenticate(%q, %q) error = %v, want ErrInvalidCredentials", c[0], c[1], err)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	h := hash(t, "x")
	for _, tc := range []struct {
		name, file, data string
		want             string
	}{
		{"unknown format", "users.toml", "users: []", "users.toml: unsupported users file format"},
		{"empty", "u.yaml", "  \n", "u.yaml: file is empty"},
		{"no users key", "u.yaml", "people: []\n", "u.yaml:1: top level: unknown key"},
		{"null users", "u.yaml", "users:\n", "u.yaml:1: users: no value"},
		{"bad yaml", "u.yaml", "users: [\n", "u.yaml"},
		{"bad json", "u.json", "{\"users\": [\n\n", "u.json:3: invalid JSON"},
		{"json trailing data", "u.json", "{\"users\": []}\n{}", "u.json:2: invalid JSON: unexpected data after the top-level value"},
		{"bad yaml message", "u.yaml", "users:\n\t- x\n", "u.yaml:2: invalid YAML: "},
		{"missing hash", "u.yaml", "users:\n  - username: alice\n", "u.yaml:2: entry 0 (alice): password_hash: missing"},
		{"not bcrypt", "u.yaml", "users:\n  - username: alice\n    password_hash: plain\n", "u.yaml:3: entry 0 (alice): password_hash: not a bcrypt hash"},
		{"bad staff", "u.yaml", "users:\n  - username: bob\n    password_hash: '" + h + "'\n    staff: \"yes\"\n", `u.yaml:4: entry 0 (bob): staff: want true or false, got string "yes"`},
		{"unknown key", "u.yaml", "users:\n  - username: bob\n    password_hash: '" + h + "'\n    grups: [a]\n", `u.yaml:4: entry 0 (bob): unknown key "grups"`},
		{"dup username", "u.yaml", "users:\n  - {username: a, password_hash: '" + h + "'}\n  - {username: a, password_hash: '" + h + "'}\n", "u.yaml:3: entry 1 (a): username: duplicate username"},
		{"dup id", "u.yaml", "users:\n  - {username: a, password_hash: '" + h + "'}\n  - {username: b, id: a, password_hash: '" + h + "'}\n", `u.yaml:3: entry 1 (b): id: id "a" is already`},
		{"groups not list", "u.json", `{"users":[{"username":"a","password_hash":"` + h + `","groups":"g"}]}`, `u.json:1: entry 0 (a): groups: want a list of strings`},
		{"missing username", "u.yaml", "users:\n  - password_hash: '" + h + "'\n", "u.yaml:2: entry 0: username: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := users.Parse(tc.file, []byte(tc.data))
			var fe *users.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FileError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q, want prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), h) {
				t.Errorf("error %q quotes a password hash", err)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	h, err := users.HashPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("pw")) != nil {
		t.Error("hash does not match its password")
	}
	if _, err := users.HashPassword(nil, 0); err == nil {
		t.Error("empty password: want error")
	}
	if _, err := users.HashPassword([]byte(strings.Repeat("x", 73)), 0); err == nil {
		t.Error("73-byte password: want error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("users.yaml", []byte("users:\n  - username: a\n    password_hash: x\n"))
	f.Add("users.json", []byte(`{"users":[{"username":"a","groups":["g"]}]}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		file, err := users.Parse(name, data)
		if err == nil && file == nil {
			t.Fatal("nil file without error")
		}
		var fe *users.FileError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error %T is not a *FileError", err)
		}
	})
}

func TestEmptyFileRefusesEveryone(t *testing.T) {
	f, err := users.Parse("u.yaml", []byte("users: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate("anyone", "instant-dummy-password-never-matches"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("got %v, want ErrInvalidCredentials", err)
	}
	var nilFile *users.File
	if _, err := nilFile.Authenticate("anyone", "x"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Errorf("nil file: got %v, want ErrInvalidCredentials", err)
	}
}
