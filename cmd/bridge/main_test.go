package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/instant-go/instant/internal/bridge"
)

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"INSTANT_NATS_URL", "INSTANT_CENTRIFUGO_API_KEY", "required", "INSTANT_PAYLOAD_MODE", "object"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestUnknownArgument(t *testing.T) {
	err := run([]string{"--frobnicate"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--help") {
		t.Errorf("unknown argument: %v, want an error pointing to --help", err)
	}
}

func TestMissingConfiguration(t *testing.T) {
	t.Setenv("INSTANT_CENTRIFUGO_API_KEY", "")
	t.Setenv("INSTANT_CHANNELS_FILE", "")
	err := run(nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "INSTANT_") {
		t.Errorf("no configuration: %v, want an error naming the variable", err)
	}
}

// TestReadmeListsEveryVariable keeps README.md's configuration table in
// step with the program.
func TestReadmeListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(bridge.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := f.Tag.Get("envconfig")
		row := "| `" + name + "` | "
		if def := f.Tag.Get("default"); def != "" {
			row += "`" + def + "` |"
		}
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no configuration row %q", row)
		}
	}
}

// TestReadmeReasonCodes keeps README.md's reason-code table exactly the
// codes the bridge declares: none missing, none that it cannot emit.
func TestReadmeReasonCodes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### Reason codes\n")
	if !ok {
		t.Fatal("README.md has no \"### Reason codes\" section")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		if code, ok := strings.CutPrefix(line, "| `"); ok {
			code, _, _ = strings.Cut(code, "`")
			documented = append(documented, code)
		}
	}
	declared := bridge.ReasonCodes()
	if !reflect.DeepEqual(documented, declared) {
		t.Errorf("README.md reason codes\n got %q\nwant %q (bridge.ReasonCodes, in that order)", documented, declared)
	}
	// bridge.ReasonCodes itself lists exactly the Code* constants of the
	// packages that own the codes.
	constants := declaredCodes(t, "../../pkg/envelope", "../../pkg/acl", "../../internal/centrifugo", "../../internal/bridge")
	listed := slices.Sorted(slices.Values(declared))
	if !reflect.DeepEqual(constants, listed) {
		t.Errorf("Code* constants of the owning packages\n %q\nbridge.ReasonCodes\n %q", constants, listed)
	}
}

// declaredCodes is the sorted values of the exported Code* string constants
// in the non-test files of dirs.
func declaredCodes(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i >= len(vs.Values) {
							break // an iota list
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if ok && lit.Kind == token.STRING && strings.HasPrefix(n.Name, "Code") {
							v, _ := strconv.Unquote(lit.Value)
							out = append(out, v)
						}
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
