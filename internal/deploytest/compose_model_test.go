package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The subset of the Compose file format that docker-compose.yml uses.
// Decoding is strict: a key outside this subset (a typo such as
// "enviroment") fails the test instead of being ignored.

type composeFile struct {
	Name     string              `yaml:"name"`
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       *buildSpec   `yaml:"build"`
	Command     stringList   `yaml:"command"`
	Environment envMap       `yaml:"environment"`
	Volumes     []mount      `yaml:"volumes"`
	Ports       []port       `yaml:"ports"`
	DependsOn   dependsOn    `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Restart     string       `yaml:"restart"`
	ReadOnly    bool         `yaml:"read_only"`
	CapDrop     []string     `yaml:"cap_drop"`
	SecurityOpt []string     `yaml:"security_opt"`
}

type buildSpec struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *buildSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain buildSpec
	return strictDecode(n, (*plain)(b))
}

type healthcheck struct {
	Test        stringList `yaml:"test"`
	Interval    string     `yaml:"interval"`
	Timeout     string     `yaml:"timeout"`
	Retries     int        `yaml:"retries"`
	StartPeriod string     `yaml:"start_period"`
	Disable     bool       `yaml:"disable"`
}

// stringList is a list of strings, or one string (split on spaces, which
// is enough for the tests; compose splits like a shell).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// envMap is an environment, written as a mapping or as a list of
// NAME=value. A name without a value passes the host's variable through,
// which is recorded as the reference ${NAME}.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	m := envMap{}
	add := func(line int, k, v string) error {
		if _, dup := m[k]; dup {
			return fmt.Errorf("line %d: %s set twice", line, k)
		}
		m[k] = v
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			val := v.Value
			if v.Tag == "!!null" {
				val = "${" + k.Value + "}"
			} else if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s: want a scalar value", v.Line, k.Value)
			}
			if err := add(k.Line, k.Value, val); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, ok := strings.Cut(item.Value, "=")
			if !ok {
				v = "${" + k + "}"
			}
			if err := add(item.Line, k, v); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("line %d: environment: want a mapping or a list", n.Line)
	}
	*e = m
	return nil
}

// mount is a volume entry: a bind mount of a host path or a named volume.
type mount struct {
	Bind     bool
	Source   string
	Target   string
	ReadOnly bool
}

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return fmt.Errorf("line %d: volume %q: want source:target[:mode]", n.Line, n.Value)
		}
		m.Source, m.Target = parts[0], parts[1]
		m.Bind = strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, "~")
		if len(parts) == 3 {
			for _, opt := range strings.Split(parts[2], ",") {
				if opt == "ro" {
					m.ReadOnly = true
				}
			}
		}
		return nil
	}
	var long struct {
		Type     string `yaml:"type"`
		Source   string `yaml:"source"`
		Target   string `yaml:"target"`
		ReadOnly bool   `yaml:"read_only"`
	}
	if err := strictDecode(n, &long); err != nil {
		return err
	}
	*m = mount{Bind: long.Type == "bind", Source: long.Source, Target: long.Target, ReadOnly: long.ReadOnly}
	return nil
}

// port is a published port: host_ip:published:target.
type port struct {
	HostIP    string
	Published string
	Target    string
	Protocol  string
}

func (p *port) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s, proto, _ := strings.Cut(n.Value, "/")
		p.Protocol = proto
		parts := strings.Split(s, ":")
		switch len(parts) {
		case 1:
			p.Target = parts[0]
		case 2:
			p.Published, p.Target = parts[0], parts[1]
		case 3:
			p.HostIP, p.Published, p.Target = parts[0], parts[1], parts[2]
		default:
			return fmt.Errorf("line %d: port %q: want [host_ip:][published:]target[/protocol]", n.Line, n.Value)
		}
		return nil
	}
	var long struct {
		Target    string `yaml:"target"`
		Published string `yaml:"published"`
		HostIP    string `yaml:"host_ip"`
		Protocol  string `yaml:"protocol"`
		Mode      string `yaml:"mode"`
	}
	if err := strictDecode(n, &long); err != nil {
		return err
	}
	*p = port{HostIP: long.HostIP, Published: long.Published, Target: long.Target, Protocol: long.Protocol}
	return nil
}

// dependsOn maps a dependency to its condition (service_started for the
// list form).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	m := dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			m[name] = "service_started"
		}
		*d = m
		return nil
	}
	var long map[string]struct {
		Condition string `yaml:"condition"`
		Restart   bool   `yaml:"restart"`
		Required  *bool  `yaml:"required"`
	}
	if err := strictDecode(n, &long); err != nil {
		return err
	}
	for name, v := range long {
		c := v.Condition
		if c == "" {
			c = "service_started"
		}
		m[name] = c
	}
	*d = m
	return nil
}

// strictDecode decodes n rejecting unknown keys (yaml.Node.Decode does not
// apply KnownFields).
func strictDecode(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("near line %d: %w", n.Line, err)
	}
	return nil
}

// root is the repository root: the directory of go.mod above this package.
func root(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module github.com/instant-go/instant\n")) {
		tb.Fatalf("repository root %s: no go.mod of github.com/instant-go/instant (err %v)", dir, err)
	}
	return dir
}

// readRepoFile reads a file named relative to the repository root.
func readRepoFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root(tb), filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// loadCompose parses docker-compose.yml strictly.
func loadCompose(tb testing.TB) *composeFile {
	tb.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(tb, "docker-compose.yml")))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	return &c
}

// mustService returns the named service or fails the test.
func (c *composeFile) mustService(tb testing.TB, name string) *service {
	tb.Helper()
	s, ok := c.Services[name]
	if !ok || s == nil {
		tb.Fatalf("docker-compose.yml: no service %q", name)
	}
	return s
}

// ref is one ${...} reference in a compose value.
type ref struct {
	Name string
	Op   string // "", ":-", "-", ":?", "?", ":+", "+"
	Arg  string // the default, the error message or the alternative
}

var refRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$`)

var errInterpolation = errors.New("interpolation")

// interpolate expands ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}, $NAME and $$ as
// docker compose does, with lookup as the environment. It returns the
// references it met; a required variable that is missing is an error
// wrapping errInterpolation.
func interpolate(s string, lookup func(string) (string, bool)) (string, []ref, error) {
	var out strings.Builder
	var refs []ref
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			out.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			out.WriteByte('$')
			i++
			continue
		}
		var r ref
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", nil, fmt.Errorf("%w: unterminated ${ in %q", errInterpolation, s)
			}
			body := s[i+2 : i+2+end]
			m := refRE.FindStringSubmatch(body)
			if m == nil || strings.Contains(m[3], "${") {
				return "", nil, fmt.Errorf("%w: bad reference ${%s} in %q", errInterpolation, body, s)
			}
			r = ref{Name: m[1], Op: m[2], Arg: m[3]}
			i += 2 + end
		} else {
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i+1 {
				return "", nil, fmt.Errorf("%w: lone $ in %q (write $$ for a literal $)", errInterpolation, s)
			}
			r = ref{Name: s[i+1 : j]}
			i = j - 1
		}
		refs = append(refs, r)
		v, set := lookup(r.Name)
		switch r.Op {
		case "":
			out.WriteString(v)
		case ":-":
			if v == "" {
				v = r.Arg
			}
			out.WriteString(v)
		case "-":
			if !set {
				v = r.Arg
			}
			out.WriteString(v)
		case ":?", "?":
			if !set || r.Op == ":?" && v == "" {
				return "", nil, fmt.Errorf("%w: required variable %s is missing: %s", errInterpolation, r.Name, r.Arg)
			}
			out.WriteString(v)
		case ":+":
			if v != "" {
				out.WriteString(r.Arg)
			}
		case "+":
			if set {
				out.WriteString(r.Arg)
			}
		}
	}
	return out.String(), refs, nil
}

// resolveEnv interpolates every value of env with lookup.
func resolveEnv(tb testing.TB, svc string, env envMap, lookup func(string) (string, bool)) map[string]string {
	tb.Helper()
	out := make(map[string]string, len(env))
	for k, v := range env {
		r, _, err := interpolate(v, lookup)
		if err != nil {
			tb.Fatalf("%s: %s: %v", svc, k, err)
		}
		out[k] = r
	}
	return out
}

// noEnv is a lookup with nothing set: only defaults apply.
func noEnv(string) (string, bool) { return "", false }

// hostPath maps a path inside a service's container to the host file that
// is bind-mounted there, if any.
func (s *service) hostPath(tb testing.TB, containerPath string) (string, bool) {
	tb.Helper()
	for _, m := range s.Volumes {
		if !m.Bind {
			continue
		}
		if containerPath == m.Target {
			return filepath.Join(root(tb), filepath.FromSlash(m.Source)), true
		}
		if rest, ok := strings.CutPrefix(containerPath, m.Target+"/"); ok {
			return filepath.Join(root(tb), filepath.FromSlash(m.Source), filepath.FromSlash(rest)), true
		}
	}
	return "", false
}
