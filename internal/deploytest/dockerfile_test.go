package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	finalImage = "gcr.io/distroless/static-debian12:nonroot"
	// distroless nonroot images run as nonroot, uid and gid 65532.
	nonrootUID = "65532"
)

type instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
}

type stage struct {
	Index    int
	Name     string // after AS; "" when unnamed
	Image    string
	Platform string
	Instr    []instruction
}

// parseDockerfile reads a Dockerfile into stages: comments and blank lines
// dropped, continuation lines joined.
func parseDockerfile(tb testing.TB, rel string) []*stage {
	tb.Helper()
	var stages []*stage
	var cur strings.Builder
	start := 0
	lines := strings.Split(string(readRepoFile(tb, rel)), "\n")
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		full := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		in := instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if in.Cmd == "FROM" {
			st := &stage{Index: len(stages)}
			f := strings.Fields(in.Args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if p, ok := strings.CutPrefix(f[0], "--platform="); ok {
					st.Platform = p
				}
				f = f[1:]
			}
			switch {
			case len(f) == 1:
				st.Image = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.Image, st.Name = f[0], f[2]
			default:
				tb.Fatalf("%s:%d: cannot read FROM %s", rel, start, in.Args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				tb.Fatalf("%s:%d: %s before the first FROM", rel, start, in.Cmd)
			}
			continue
		}
		st := stages[len(stages)-1]
		st.Instr = append(st.Instr, in)
	}
	if cur.Len() > 0 {
		tb.Fatalf("%s: ends in a continuation line", rel)
	}
	return stages
}

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instr {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goVersion is the major.minor of go.mod's go directive.
func goVersion(tb testing.TB) string {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(?:\.\d+)?\s*$`).FindSubmatch(readRepoFile(tb, "go.mod"))
	if m == nil {
		tb.Fatal("go.mod: no go directive")
	}
	return string(m[1])
}

// exposedPorts are the TCP ports of the EXPOSE instructions of the final
// stage of a program's Dockerfile.
func exposedPorts(tb testing.TB, rel string) []string {
	tb.Helper()
	stages := parseDockerfile(tb, rel)
	var out []string
	for _, in := range stages[len(stages)-1].all("EXPOSE") {
		for _, p := range strings.Fields(in.Args) {
			p, proto, _ := strings.Cut(p, "/")
			if proto != "" && proto != "tcp" {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

var (
	goBuildOutRE = regexp.MustCompile(`(?:^|\s)-o\s+(\S+)`)
	cmdPkgRE     = regexp.MustCompile(`\./cmd/[A-Za-z0-9_.-]+`)
	varNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func TestDockerfiles(t *testing.T) {
	wantGo := "golang:" + goVersion(t)
	for _, p := range programs {
		rel := "deployments/" + p.name + ".Dockerfile"
		t.Run(p.name, func(t *testing.T) {
			stages := parseDockerfile(t, rel)
			if len(stages) < 2 {
				t.Fatalf("%s: %d stages, want a multi-stage build (builder and final image)", rel, len(stages))
			}
			final := stages[len(stages)-1]
			if final.Image != finalImage {
				t.Errorf("%s: final image %q, want %q", rel, final.Image, finalImage)
			}

			// USER: the last one of the final stage is nonroot.
			users := final.all("USER")
			if len(users) == 0 {
				t.Errorf("%s: final stage has no USER instruction, want USER nonroot", rel)
			} else if u := users[len(users)-1].Args; !slices.Contains([]string{"nonroot", "nonroot:nonroot", nonrootUID, nonrootUID + ":" + nonrootUID}, u) {
				t.Errorf("%s: USER %s, want nonroot", rel, u)
			}

			// ENTRYPOINT: exec form naming a binary copied from the builder.
			eps := final.all("ENTRYPOINT")
			if len(eps) != 1 {
				t.Fatalf("%s: final stage has %d ENTRYPOINT instructions, want 1", rel, len(eps))
			}
			var entry []string
			if err := json.Unmarshal([]byte(eps[0].Args), &entry); err != nil || len(entry) == 0 {
				t.Fatalf("%s:%d: ENTRYPOINT %s: want the exec form [\"/path/binary\"] (distroless has no shell): %v", rel, eps[0].Line, eps[0].Args, err)
			}
			if cmds := final.all("CMD"); len(cmds) > 0 {
				t.Errorf("%s:%d: CMD in the final stage would be passed to %s as arguments", rel, cmds[0].Line, p.name)
			}
			var copied, builderRef string
			for _, in := range final.all("COPY") {
				f := strings.Fields(in.Args)
				if len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[2] == entry[0] {
					builderRef, copied = strings.TrimPrefix(f[0], "--from="), f[1]
				}
			}
			if copied == "" {
				t.Fatalf("%s: no COPY --from=<builder> <binary> %s in the final stage for ENTRYPOINT %s", rel, entry[0], entry[0])
			}
			var builder *stage
			for _, s := range stages[:len(stages)-1] {
				if s.Name == builderRef || strconv.Itoa(s.Index) == builderRef {
					builder = s
				}
			}
			if builder == nil {
				t.Fatalf("%s: COPY --from=%s names no earlier stage", rel, builderRef)
			}

			// Builder: golang:<go.mod version>.
			for _, s := range stages {
				if img, ok := strings.CutPrefix(s.Image, "golang:"); ok && s.Image != wantGo && !strings.HasPrefix(img, goVersion(t)+"-") {
					t.Errorf("%s: stage %d image %s, want %s (go.mod says go %s)", rel, s.Index, s.Image, wantGo, goVersion(t))
				}
			}
			if builder.Image != wantGo {
				t.Errorf("%s: builder image %s, want %s (go.mod says go %s)", rel, builder.Image, wantGo, goVersion(t))
			}

			// The go build that makes the binary.
			var build *instruction
			runs := builder.all("RUN")
			for i := range runs {
				if strings.Contains(runs[i].Args, "go build") {
					if build != nil {
						t.Fatalf("%s: several go build commands in the builder", rel)
					}
					build = &runs[i]
				}
			}
			if build == nil {
				t.Fatalf("%s: builder stage runs no go build", rel)
			}
			for _, want := range []string{
				"CGO_ENABLED=0", "-trimpath",
				"--mount=type=cache,target=/go/pkg/mod",
				"--mount=type=cache,target=/root/.cache/go-build",
			} {
				if !strings.Contains(build.Args, want) {
					t.Errorf("%s:%d: go build without %s", rel, build.Line, want)
				}
			}
			if !strings.Contains(build.Args, `-ldflags="-s -w"`) && !strings.Contains(build.Args, `-ldflags='-s -w'`) {
				t.Errorf("%s:%d: go build without -ldflags=\"-s -w\"", rel, build.Line)
			}
			if got := cmdPkgRE.FindAllString(build.Args, -1); len(got) != 1 || got[0] != "./cmd/"+p.name {
				t.Errorf("%s:%d: go build builds %v, want ./cmd/%s", rel, build.Line, got, p.name)
			}
			mainGo, err := os.ReadFile(filepath.Join(root(t), "cmd", p.name, "main.go"))
			if err != nil || !regexp.MustCompile(`(?m)^package main$`).Match(mainGo) {
				t.Errorf("./cmd/%s: no main package (err %v)", p.name, err)
			}
			if m := goBuildOutRE.FindStringSubmatch(build.Args); m == nil || m[1] != copied {
				t.Errorf("%s:%d: go build output %v, but the final stage copies %s", rel, build.Line, m, copied)
			}
			// The module cache mount works only when go.mod is copied before
			// the download; a missing go.sum would make the build fail.
			var copiesMod bool
			for _, in := range builder.all("COPY") {
				if strings.Contains(in.Args, "go.mod") && strings.Contains(in.Args, "go.sum") {
					copiesMod = true
				}
			}
			if !copiesMod {
				t.Errorf("%s: builder does not COPY go.mod go.sum", rel)
			}

			// EXPOSE: the port of the program's default listen address.
			def := p.vars(t)[p.addrVar].Default
			want := listenPort(t, p.addrVar+" default", def)
			if got := exposedPorts(t, rel); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: EXPOSE %v, want [%s] (default %s=%s)", rel, got, want, p.addrVar, def)
			}

			// No secret baked into an image.
			for _, s := range stages {
				for _, in := range append(s.all("ENV"), s.all("ARG")...) {
					for _, name := range declaredNames(in) {
						if secretName.MatchString(name) {
							t.Errorf("%s:%d: %s %s: secrets belong in the runtime environment, not in the image", rel, in.Line, in.Cmd, name)
						}
					}
				}
			}
		})
	}
}

// declaredNames are the variables an ENV or ARG instruction declares:
// ENV A=1 B=2, ENV A 1, ARG A, ARG A=1.
func declaredNames(in instruction) []string {
	f := strings.Fields(in.Args)
	if len(f) == 0 {
		return nil
	}
	if in.Cmd == "ENV" && !strings.Contains(f[0], "=") {
		return f[:1] // legacy ENV NAME value
	}
	var out []string
	for _, w := range f {
		name, _, _ := strings.Cut(w, "=")
		if varNameRE.MatchString(name) {
			out = append(out, name)
		}
	}
	return out
}

// dockerignore is the parsed .dockerignore: patterns in order, the last
// match wins.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
	raw    string
}

func parseDockerignore(tb testing.TB) dockerignore {
	tb.Helper()
	var out dockerignore
	for _, line := range strings.Split(string(readRepoFile(tb, ".dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := false
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			neg, line = true, rest
		}
		pat := strings.Trim(filepath.ToSlash(filepath.Clean(line)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(pat); i++ {
			switch c := pat[i]; {
			case strings.HasPrefix(pat[i:], "**/"):
				re.WriteString("(?:.*/)?")
				i += 2
			case strings.HasPrefix(pat[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		out = append(out, struct {
			re     *regexp.Regexp
			negate bool
			raw    string
		}{regexp.MustCompile(re.String()), neg, line})
	}
	return out
}

// excluded reports whether the build context leaves out rel (a slash path
// relative to the context): a pattern matching rel or one of its parent
// directories excludes it.
func (d dockerignore) excluded(rel string) bool {
	ex := false
	for _, p := range d {
		parts := strings.Split(rel, "/")
		for i := range parts {
			if p.re.MatchString(strings.Join(parts[:i+1], "/")) {
				ex = !p.negate
				break
			}
		}
	}
	return ex
}

func TestDockerignore(t *testing.T) {
	ign := parseDockerignore(t)
	for _, rel := range []string{".git/config", ".env", "deployments/.env", "examples/app/.env", "node_modules/x/index.js", "web/node_modules/x/index.js", "bin/bridge", "dist/tokensvc"} {
		if !ign.excluded(rel) {
			t.Errorf(".dockerignore: %s is sent in the build context; exclude it", rel)
		}
	}
	// Everything go build needs is in the context: go.mod, go.sum and every
	// non-test file of the module's packages.
	r := root(t)
	need := []string{"go.mod", "go.sum", "clients/js/embed.go", "clients/js/dist/client.js", "clients/js/dist/client.mjs"}
	for _, dir := range []string{"cmd", "internal", "pkg"} {
		err := filepath.WalkDir(filepath.Join(r, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !strings.HasSuffix(path, "_test.go") && !strings.Contains(path, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
				rel, _ := filepath.Rel(r, path)
				need = append(need, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(need) < 20 {
		t.Fatalf("found only %d source files; the walk is broken", len(need))
	}
	for _, rel := range need {
		if ign.excluded(rel) {
			t.Errorf(".dockerignore excludes %s, which the build needs", rel)
		}
	}
}
