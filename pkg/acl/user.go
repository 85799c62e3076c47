package acl

// User is who asks to subscribe, as the token service knows them.
type User struct {
	ID        string
	Username  string
	Groups    []string
	Staff     bool
	Superuser bool
}

// Anonymous returns the anonymous user. It is a function rather than a
// variable so that nobody can change it.
func Anonymous() User { return User{} }

// Authenticated reports whether u is a known user: one with an ID or a
// Username.
func (u User) Authenticated() bool { return u.ID != "" || u.Username != "" }

// inAnyGroup reports whether u belongs to at least one of groups.
func (u User) inAnyGroup(groups []string) bool {
	for _, g := range u.Groups {
		for _, want := range groups {
			if g == want {
				return true
			}
		}
	}
	return false
}
