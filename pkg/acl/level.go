package acl

import (
	"errors"
	"fmt"
)

// Level is the subscribe level of a channel; its values are the lower-case
// level names of django-instant.
type Level string

// The levels, from the most open to the most closed.
const (
	LevelPublic    Level = "public"
	LevelUsers     Level = "users"
	LevelGroups    Level = "groups"
	LevelStaff     Level = "staff"
	LevelSuperuser Level = "superuser"
)

// levelNames lists the valid level names for error messages.
const levelNames = "public, users, groups, staff, superuser"

// ParseLevel returns the level named s. The empty string is LevelSuperuser,
// the default of django-instant.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case "":
		return LevelSuperuser, nil
	case LevelPublic, LevelUsers, LevelGroups, LevelStaff, LevelSuperuser:
		return l, nil
	}
	return "", errors.New(unknownLevelMsg(s))
}

// Valid reports whether l is one of the five levels.
func (l Level) Valid() bool {
	switch l {
	case LevelPublic, LevelUsers, LevelGroups, LevelStaff, LevelSuperuser:
		return true
	}
	return false
}

// String returns the level name.
func (l Level) String() string { return string(l) }

// unknownLevelMsg is the message for an unknown level name.
func unknownLevelMsg(s string) string {
	return fmt.Sprintf("unknown level %q (want one of %s)", s, levelNames)
}
