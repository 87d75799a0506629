package deploy

// Tests of what Kustomize makes of deploy/k8s: no replica count that would
// fight the autoscaler, and the Prometheus Operator component: a PodMonitor
// that finds the admin port and a PrometheusRule that is alerts.yaml.

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"strangler/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the PrometheusRule from prometheus/alerts.yaml")

const component = "k8s/components/prometheus-operator"

// TestNoManifestSetsReplicas: the HorizontalPodAutoscaler owns the count;
// a replicas field in a Deployment or a kustomization would reset it to
// the file's number on every `kubectl apply -k`.
func TestNoManifestSetsReplicas(t *testing.T) {
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" || d.Name() == "strangler.yaml" {
			return err
		}
		for _, doc := range yamlDocuments(t, readFile(t, path)) {
			if _, ok := doc["replicas"]; ok && (doc["kind"] == "Kustomization" || doc["kind"] == "Component") {
				t.Errorf("%s sets replicas:, which resets the autoscaler's count on every apply", path)
			}
			if spec, _ := doc["spec"].(map[string]any); doc["kind"] == "Deployment" && spec["replicas"] != nil {
				t.Errorf("%s: Deployment %v sets spec.replicas, which resets the autoscaler's count on every apply", path, doc["metadata"])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// yamlDocuments decodes every document of a YAML stream.
func yamlDocuments(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// TestPrometheusRuleIsTheAlertRules: the component's PrometheusRule holds
// alerts.yaml's groups, comments and all. go test ./deploy -update
// rewrites it after a change to the rules.
func TestPrometheusRuleIsTheAlertRules(t *testing.T) {
	var rules yaml.Node
	if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yaml"), &rules); err != nil {
		t.Fatal(err)
	}
	var groups *yaml.Node
	top := rules.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "groups" {
			groups = top.Content[i+1]
		}
	}
	if groups == nil {
		t.Fatal("alerts.yaml has no groups")
	}
	var rule yaml.Node
	err := yaml.Unmarshal([]byte(`apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: strangler
  labels:
    app.kubernetes.io/name: strangler
spec:
  groups: []
`), &rule)
	if err != nil {
		t.Fatal(err)
	}
	spec := rule.Content[0].Content[len(rule.Content[0].Content)-1]
	spec.Content[1] = groups
	var b bytes.Buffer
	b.WriteString("# The alert rules of deploy/prometheus/alerts.yaml as a PrometheusRule, made\n" +
		"# by `go test ./deploy -update`: edit alerts.yaml, not this file.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&rule); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(component, "prometheusrule.yaml")
	if *update {
		writeFile(t, path, b.Bytes())
		return
	}
	if got := readFile(t, path); !bytes.Equal(got, b.Bytes()) {
		t.Errorf("%s is not alerts.yaml's rules; run go test ./deploy -update", path)
	}
}

// kustomize returns a command that builds a kustomization: kustomize, or
// kubectl's built-in one. Without either the test skips, unless
// STRANGLER_REQUIRE_TOOLS=1.
func kustomize(t *testing.T) func(dir string) []byte {
	t.Helper()
	var args []string
	if path, err := exec.LookPath("kustomize"); err == nil {
		args = []string{path, "build"}
	} else if path, err := exec.LookPath("kubectl"); err == nil {
		args = []string{path, "kustomize"}
	} else {
		args = []string{testkit.Tool(t, "kustomize", "go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1, or kubectl"), "build"}
	}
	return func(dir string) []byte {
		t.Helper()
		out, err := exec.Command(args[0], append(args[1:], dir)...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = errors.New(string(ee.Stderr))
			}
			t.Fatalf("%s %s: %v", filepath.Base(args[0]), dir, err)
		}
		return out
	}
}

// TestKustomizeBuildsTheOverlay builds the example overlay, alone and
// with the Prometheus Operator component, and checks what a cluster would
// get.
func TestKustomizeBuildsTheOverlay(t *testing.T) {
	build := kustomize(t)
	overlay, err := filepath.Abs("k8s/overlays/example")
	if err != nil {
		t.Fatal(err)
	}
	comp, err := filepath.Abs(component)
	if err != nil {
		t.Fatal(err)
	}
	// An overlay of the example with the component, as a user adds it.
	// Kustomize wants its paths relative.
	withOperator := t.TempDir()
	relOverlay, err := filepath.Rel(withOperator, overlay)
	if err != nil {
		t.Fatal(err)
	}
	relComp, err := filepath.Rel(withOperator, comp)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(withOperator, "kustomization.yaml"), []byte(
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - "+relOverlay+"\ncomponents:\n  - "+relComp+"\n"))

	for name, dir := range map[string]string{"the example overlay": overlay, "with the operator component": withOperator} {
		t.Run(name, func(t *testing.T) {
			byKind := map[string]map[string]any{}
			for _, doc := range yamlDocuments(t, build(dir)) {
				byKind[doc["kind"].(string)] = doc
			}
			dep := byKind["Deployment"]
			spec, _ := dep["spec"].(map[string]any)
			if spec == nil {
				t.Fatalf("no Deployment among %v", keysOf(byKind))
			}
			if r, ok := spec["replicas"]; ok {
				t.Errorf("the Deployment has replicas: %v; the autoscaler's count would be reset on every apply", r)
			}
			if hpa := byKind["HorizontalPodAutoscaler"]["spec"].(map[string]any); hpa["minReplicas"] != 3 {
				t.Errorf("the autoscaler keeps at least %v replicas, want the overlay's 3", hpa["minReplicas"])
			}
			secret := byKind["Secret"]["metadata"].(map[string]any)["name"].(string)
			pod := spec["template"].(map[string]any)["spec"].(map[string]any)
			container := pod["containers"].([]any)[0].(map[string]any)
			envFrom := container["envFrom"].([]any)[0].(map[string]any)["secretRef"].(map[string]any)["name"]
			if envFrom != secret || !strings.HasPrefix(secret, "strangler-secrets-") {
				t.Errorf("the Deployment reads Secret %v; the overlay generates %q", envFrom, secret)
			}
			if cm := pod["volumes"].([]any)[0].(map[string]any)["configMap"].(map[string]any)["name"]; cm != "strangler-config" || byKind["ConfigMap"] == nil {
				t.Errorf("the config volume mounts ConfigMap %v; want strangler-config under its stable name", cm)
			}
			if !strings.Contains(dir, withOperator) {
				if byKind["PodMonitor"] != nil || byKind["PrometheusRule"] != nil {
					t.Error("the overlay alone makes Prometheus Operator objects; a cluster without the operator would refuse them")
				}
				return
			}
			podMonitorFindsTheFacade(t, byKind["PodMonitor"], spec)
			if byKind["PrometheusRule"] == nil {
				t.Error("the component makes no PrometheusRule")
			}
		})
	}
}

// podMonitorFindsTheFacade checks that the PodMonitor selects the
// Deployment's pods, scrapes a port they name admin at /metrics, and
// gives the job label the alert rules look for.
func podMonitorFindsTheFacade(t *testing.T, pm map[string]any, deployment map[string]any) {
	t.Helper()
	if pm == nil {
		t.Fatal("the component makes no PodMonitor")
	}
	spec := pm["spec"].(map[string]any)
	template := deployment["template"].(map[string]any)
	labels := template["metadata"].(map[string]any)["labels"].(map[string]any)
	for k, v := range spec["selector"].(map[string]any)["matchLabels"].(map[string]any) {
		if labels[k] != v {
			t.Errorf("the PodMonitor selects %s=%v; the pods have %v", k, v, labels)
		}
	}
	ports := map[any]bool{}
	for _, p := range template["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["ports"].([]any) {
		ports[p.(map[string]any)["name"]] = true
	}
	endpoint := spec["podMetricsEndpoints"].([]any)[0].(map[string]any)
	if endpoint["port"] != "admin" || !ports["admin"] || endpoint["path"] != "/metrics" {
		t.Errorf("the PodMonitor scrapes %v; want /metrics on the port the pods name admin", endpoint)
	}
	job, _ := labels[spec["jobLabel"].(string)].(string)
	for _, r := range alertRules(t) {
		if strings.Contains(r.Expr, "up{") && !strings.Contains(r.Expr, `job="`+job+`"`) {
			t.Errorf("%s looks for another job than the PodMonitor's %q: %s", r.Alert, job, r.Expr)
		}
	}
}

func keysOf(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
