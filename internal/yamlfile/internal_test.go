package yamlfile

import "testing"

func TestSuggest(t *testing.T) {
	known := []string{"name", "level", "active", "groups", "publishers"}
	for _, tc := range []struct{ s, want string }{
		{"levle", ` (did you mean "level"?)`},  // transposition
		{"LEVEL", ` (did you mean "level"?)`},  // case
		{"group", ` (did you mean "groups"?)`}, // deletion
		{"nmae", ` (did you mean "name"?)`},    // transposition
		{"actve", ` (did you mean "active"?)`}, // deletion
		{"colour", ""},                         // too far from all
		{"", ""},                               // too far from all
		{string(make([]rune, 100)), ""},        // too long to measure
	} {
		if got := suggest(tc.s, known); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"abc", "acb", 1},
		{"abc", "ab", 1},
		{"abc", "xbc", 1},
		{"kitten", "sitting", 3},
		{"é", "e", 1},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
