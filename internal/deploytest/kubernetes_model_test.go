package deploytest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kubeDir holds the kustomize base, relative to the repository root.
const kubeDir = "deployments/kubernetes"

// kustomization is the part of kustomize's Kustomization the base uses,
// decoded strictly like the manifests: a field the test does not know is
// an error, so a new kustomize feature in the base gets a check first.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Labels          []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
}

// kubeBase is every object of the base, by name.
type kubeBase struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

// decodeStrict decodes one YAML document into out, rejecting unknown and
// duplicate fields.
func decodeStrict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

// loadKube reads the kustomization and every resource it lists, each
// document decoded strictly into its Kubernetes API type. Every YAML file
// of the directory must be the kustomization or one of its resources.
func loadKube(tb testing.TB) *kubeBase {
	tb.Helper()
	dir := filepath.Join(root(tb), kubeDir)
	var k kustomization
	if err := decodeStrict(readRepoFile(tb, kubeDir+"/kustomization.yaml"), &k); err != nil {
		tb.Fatalf("%s/kustomization.yaml: %v", kubeDir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		tb.Fatalf("kustomization.yaml is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" && !slices.Contains(k.Resources, name) {
			tb.Errorf("%s/%s is not in kustomization.yaml's resources", kubeDir, name)
		}
	}
	b := &kubeBase{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, res := range k.Resources {
		for i, doc := range splitDocs(readRepoFile(tb, kubeDir+"/"+res)) {
			if err := b.add(doc); err != nil {
				tb.Fatalf("%s/%s, document %d: %v", kubeDir, res, i+1, err)
			}
		}
	}
	return b
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// splitDocs splits a YAML stream into its non-empty documents.
func splitDocs(data []byte) [][]byte {
	var out [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b bytes.Buffer
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// add decodes doc strictly into the type its apiVersion and kind name.
func (b *kubeBase) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "apps/v1 Deployment":
		return decodeInto(doc, &appsv1.Deployment{}, b.deployments)
	case "v1 Service":
		return decodeInto(doc, &corev1.Service{}, b.services)
	case "v1 ConfigMap":
		return decodeInto(doc, &corev1.ConfigMap{}, b.configMaps)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, &policyv1.PodDisruptionBudget{}, b.pdbs)
	default:
		return fmt.Errorf("%q: not a kind the base is expected to hold", gvk)
	}
}

func decodeInto[T metav1.Object](doc []byte, o T, into map[string]T) error {
	if err := decodeStrict(doc, o); err != nil {
		return err
	}
	if o.GetName() == "" {
		return fmt.Errorf("no metadata.name")
	}
	if _, dup := into[o.GetName()]; dup {
		return fmt.Errorf("a second object named %s", o.GetName())
	}
	into[o.GetName()] = o
	return nil
}

// mustContainer returns the named Deployment and its only container.
func (b *kubeBase) mustContainer(tb testing.TB, deployment string) (*appsv1.Deployment, *corev1.Container) {
	tb.Helper()
	d, ok := b.deployments[deployment]
	if !ok {
		tb.Fatalf("no Deployment %s in %s", deployment, kubeDir)
	}
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		tb.Fatalf("Deployment %s has %d containers, want 1", deployment, n)
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

// helmValues reads a values file of deployments/kubernetes/helm.
func helmValues(tb testing.TB, name string) map[string]any {
	tb.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(readRepoFile(tb, kubeDir+"/helm/"+name), &v); err != nil {
		tb.Fatalf("%s/helm/%s: %v", kubeDir, name, err)
	}
	return v
}
