package deploytest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/channelsfile"
	"github.com/instant-go/instant/internal/testenv"
	"github.com/instant-go/instant/internal/tokensvc"
)

// kubeNames are the Deployments of the programs, by program name.
var kubeNames = map[string]string{"bridge": "instant-bridge", "tokensvc": "instant-tokensvc"}

// kubeSecrets are the Secrets the base refers to and does not ship: the
// operator creates them (README.md in deployments/kubernetes).
var kubeSecrets = map[string]bool{"instant-secrets": true, "instant-users": true}

// tokensvcCloseTimeout is how long tokensvc's Close lets requests finish
// (internal/tokensvc/run.go); it has no variable.
const tokensvcCloseTimeout = 10 * time.Second

func TestKubernetesStrictDecoding(t *testing.T) {
	bad := map[string]string{
		"unknown field":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicaz: 2}\n",
		"duplicate field": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"unknown kind":    "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	}
	for name, doc := range bad {
		b := &kubeBase{}
		if err := b.add([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error, want the strict decoder to refuse it", name)
		}
	}
}

func TestKubernetesObjects(t *testing.T) {
	b := loadKube(t)
	for prog, name := range kubeNames {
		d, _ := b.mustContainer(t, name)
		labels := d.Spec.Template.Labels
		if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, labels) {
			t.Errorf("%s: selector %v does not select its pods %v", name, d.Spec.Selector, labels)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("%s (%s): replicas %v, want at least 2", name, prog, d.Spec.Replicas)
		}
		pdb, ok := b.pdbs[name]
		if !ok {
			t.Errorf("%s: no PodDisruptionBudget", name)
			continue
		}
		if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, labels) {
			t.Errorf("PodDisruptionBudget %s does not select the pods of %s", name, name)
		}
		if m := pdb.Spec.MinAvailable; m == nil || m.IntValue() < 1 || int32(m.IntValue()) >= *d.Spec.Replicas {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v, want at least 1 and fewer than the %d replicas", name, m, *d.Spec.Replicas)
		}
	}
	if d, ok := b.deployments["instant-bridge"]; ok && *d.Spec.Replicas != 2 {
		t.Errorf("instant-bridge: %d replicas, want 2", *d.Spec.Replicas)
	}
	svc, ok := b.services["instant-tokensvc"]
	if !ok {
		t.Fatal("no Service instant-tokensvc")
	}
	if d, ok := b.deployments["instant-tokensvc"]; ok && !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("Service instant-tokensvc selects %v, not the token service's pods", svc.Spec.Selector)
	}
	cm, ok := b.configMaps["instant-channels"]
	if !ok {
		t.Fatal("no ConfigMap instant-channels")
	}
	if _, err := channelsfile.Parse("channels.yaml", []byte(cm.Data["channels.yaml"])); err != nil {
		t.Errorf("ConfigMap instant-channels: channels.yaml: %v", err)
	}
}

// selects reports whether a label selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesEnvKnown: every INSTANT_* variable a manifest sets is one
// the program reads, set once; secrets come from Secret references, never
// literal values.
func TestKubernetesEnvKnown(t *testing.T) {
	b := loadKube(t)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			_, c := b.mustContainer(t, kubeNames[p.name])
			vars := p.vars(t)
			seen := map[string]bool{}
			for _, e := range c.Env {
				if seen[e.Name] {
					t.Errorf("%s set twice", e.Name)
				}
				seen[e.Name] = true
				switch {
				case e.Name == "GOMEMLIMIT":
				case !strings.HasPrefix(e.Name, "INSTANT_"):
					t.Errorf("%s: not a variable of %s", e.Name, p.name)
				case vars[e.Name].Key == "":
					t.Errorf("%s: %s does not read it (not in its Config)", e.Name, p.name)
				}
				ref := e.ValueFrom
				if secretName.MatchString(e.Name) {
					if e.Value != "" || ref == nil || ref.SecretKeyRef == nil || !kubeSecrets[ref.SecretKeyRef.Name] {
						t.Errorf("%s: a secret, want valueFrom.secretKeyRef to one of %v", e.Name, kubeSecrets)
					}
				} else if ref != nil {
					t.Errorf("%s: valueFrom on a variable that is no secret", e.Name)
				}
			}
		})
	}
}

// kubeEnv is the environment a program gets from its manifest, with a
// random value for each secret (the same for the same Secret key) and the
// files of its mounted volumes written where the test can read them.
func kubeEnv(tb testing.TB, b *kubeBase, prog string, secrets map[string]string) map[string]string {
	tb.Helper()
	d, c := b.mustContainer(tb, kubeNames[prog])
	env := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
			k := r.SecretKeyRef.Name + "/" + r.SecretKeyRef.Key
			if secrets[k] == "" {
				secrets[k] = testenv.Secret(tb) + testenv.Secret(tb)
			}
			v = secrets[k]
		}
		if strings.HasPrefix(v, "/") {
			v = mountedFile(tb, b, d.Spec.Template.Spec.Volumes, c.VolumeMounts, v)
		}
		env[e.Name] = v
	}
	return env
}

// mountedFile writes the volume file at container path p to a temporary
// directory and returns its path there: ConfigMaps of the base from their
// data, the users Secret from deployments/users.example.yaml.
func mountedFile(tb testing.TB, b *kubeBase, vols []corev1.Volume, mounts []corev1.VolumeMount, p string) string {
	tb.Helper()
	for _, m := range mounts {
		rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		var data []byte
		for _, v := range vols {
			switch {
			case v.Name != m.Name:
			case v.ConfigMap != nil:
				cm, ok := b.configMaps[v.ConfigMap.Name]
				if !ok {
					tb.Fatalf("volume %s: no ConfigMap %s in the base", v.Name, v.ConfigMap.Name)
				}
				data = []byte(cm.Data[rel])
			case v.Secret != nil && v.Secret.SecretName == "instant-users" && rel == "users.yaml":
				data = readRepoFile(tb, "deployments/users.example.yaml")
			}
		}
		if len(data) == 0 {
			tb.Fatalf("%s: no file %s in volume %s", p, rel, m.Name)
		}
		host := filepath.Join(tb.TempDir(), rel)
		if err := os.WriteFile(host, data, 0o600); err != nil {
			tb.Fatal(err)
		}
		return host
	}
	tb.Fatalf("%s is on no mounted volume", p)
	return ""
}

func TestKubernetesConfigValid(t *testing.T) {
	b := loadKube(t)
	secrets := map[string]string{}
	t.Run("bridge", func(t *testing.T) {
		setEnv(t, kubeEnv(t, b, "bridge", secrets))
		cfg, err := bridge.LoadConfig()
		if err != nil {
			t.Fatalf("bridge configuration from the manifest: %v", err)
		}
		if cfg.Delivery != bridge.DeliveryJetStream || cfg.JetStreamReplicas != 3 {
			t.Errorf("delivery %s with %d replicas, want jetstream with 3 (a 3-server NATS cluster)", cfg.Delivery, cfg.JetStreamReplicas)
		}
	})
	t.Run("tokensvc", func(t *testing.T) {
		setEnv(t, kubeEnv(t, b, "tokensvc", secrets))
		cfg, err := tokensvc.LoadConfig()
		if err != nil {
			t.Fatalf("tokensvc configuration from the manifest: %v", err)
		}
		if cfg.SessionKey == "" {
			t.Error("no INSTANT_SESSION_KEY: sessions would not be valid on the other replicas")
		}
	})
}

// listenPort is the port a program listens on as deployed: from its
// address variable in the manifest, or the variable's default.
func (p program) deployedPort(tb testing.TB, c *corev1.Container) int {
	tb.Helper()
	addr := p.vars(tb)[p.addrVar].Default
	for _, e := range c.Env {
		if e.Name == p.addrVar {
			addr = e.Value
		}
	}
	n, err := strconv.Atoi(listenPort(tb, p.addrVar, addr))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// portNumber resolves a probe or Service port (a number or a container
// port's name) against the container.
func portNumber(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func TestKubernetesProbesAndPorts(t *testing.T) {
	b := loadKube(t)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			d, c := b.mustContainer(t, kubeNames[p.name])
			port := p.deployedPort(t, c)
			if len(c.Ports) != 1 || int(c.Ports[0].ContainerPort) != port {
				t.Errorf("container ports %v, want one: %d (%s)", c.Ports, port, p.addrVar)
			}
			for _, pr := range []struct {
				what, path string
				probe      *corev1.Probe
			}{{"readinessProbe", "/readyz", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
				if pr.probe == nil || pr.probe.HTTPGet == nil {
					t.Errorf("%s: none, want GET %s", pr.what, pr.path)
					continue
				}
				if g := pr.probe.HTTPGet; g.Path != pr.path || portNumber(c, g.Port) != port {
					t.Errorf("%s: GET %s on port %s, want %s on %d", pr.what, g.Path, g.Port.String(), pr.path, port)
				}
			}
			a := d.Spec.Template.Annotations
			if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(port) {
				t.Errorf("Prometheus annotations %v, want scrape true, path /metrics, port %d", a, port)
			}
			if svc, ok := b.services[kubeNames[p.name]]; ok {
				for _, sp := range svc.Spec.Ports {
					if portNumber(c, sp.TargetPort) != port {
						t.Errorf("Service %s: port %s targets %s, not the program's %d", svc.Name, sp.Name, sp.TargetPort.String(), port)
					}
				}
			}
		})
	}
}

// TestKubernetesTermination: the grace period exceeds the time each
// program may take to shut down after SIGTERM.
func TestKubernetesTermination(t *testing.T) {
	b := loadKube(t)
	bd, _ := b.mustContainer(t, "instant-bridge")
	setEnv(t, kubeEnv(t, b, "bridge", map[string]string{}))
	cfg, err := bridge.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	td, _ := b.mustContainer(t, "instant-tokensvc")
	for _, tc := range []struct {
		name     string
		grace    *int64
		shutdown time.Duration
	}{
		{"instant-bridge (INSTANT_SHUTDOWN_TIMEOUT)", bd.Spec.Template.Spec.TerminationGracePeriodSeconds, cfg.ShutdownTimeout},
		{"instant-tokensvc (its Close timeout)", td.Spec.Template.Spec.TerminationGracePeriodSeconds, tokensvcCloseTimeout},
	} {
		if tc.grace == nil {
			t.Errorf("%s: no terminationGracePeriodSeconds (default 30s), want more than %v", tc.name, tc.shutdown)
		} else if g := time.Duration(*tc.grace) * time.Second; g <= tc.shutdown {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want more than %v", tc.name, g, tc.shutdown)
		}
	}
}

// TestKubernetesBridgeResources: the bridge's memory is sized from what it
// was measured to use and from its byte bounds.
func TestKubernetesBridgeResources(t *testing.T) {
	b := loadKube(t)
	_, c := b.mustContainer(t, "instant-bridge")
	// docs/benchmarks.md: 26-29 MiB peak at saturation (core; jetstream with
	// max ack pending 4,000); README.md: under 128 MiB for a flood of the
	// largest envelopes with the defaults.
	measured, bound := resource.MustParse("30Mi"), resource.MustParse("128Mi")
	req, lim := c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
	if req.Cmp(measured) < 0 {
		t.Errorf("memory request %s, under the measured peak %s", req.String(), measured.String())
	}
	if lim.Cmp(bound) < 0 {
		t.Errorf("memory limit %s, under the %s the README promises with the defaults", lim.String(), bound.String())
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Error("no CPU request")
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if v := env["GOMEMLIMIT"]; v != "" {
		gl := resource.MustParse(strings.TrimSuffix(v, "B"))
		if gl.Cmp(lim) >= 0 {
			t.Errorf("GOMEMLIMIT %s, want it under the memory limit %s", v, lim.String())
		}
	}
	if v, _ := strconv.Atoi(env["INSTANT_MAX_PENDING_BYTES"]); v > 0 && int64(v) > lim.Value()/4 {
		t.Errorf("INSTANT_MAX_PENDING_BYTES=%d is over a quarter of the memory limit", v)
	}
}
