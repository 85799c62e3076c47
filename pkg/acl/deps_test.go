package acl_test

import (
	"go/build"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPureNoInternalOrYAMLDeps: pkg/acl is what other programs import, so
// neither it nor anything it imports is an internal package of this module
// or a YAML library (go list -deps, test files excluded).
func TestPureNoInternalOrYAMLDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps listed %v: the check would be empty", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "/internal/") && strings.HasPrefix(d, "github.com/instant-go/instant/") ||
			strings.Contains(strings.ToLower(d), "yaml") {
			t.Errorf("pkg/acl depends on %s; it must stay free of internal packages and YAML", d)
		}
	}
}
