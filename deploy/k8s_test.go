package deploy

// Tests of deploy/k8s: the manifests parse, the kustomizations name files
// that exist, and the Deployment fits what the facade serves and needs.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
)

// k8sObject is the part of a Kubernetes object these tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec yaml.Node `yaml:"spec"`
}

// k8sDocuments decodes every document of a YAML file.
func k8sDocuments(t *testing.T, path string) []k8sObject {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var objs []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		objs = append(objs, o)
	}
}

// kustomization is the part of a kustomization.yaml that names files.
type kustomization struct {
	Resources    []string                `yaml:"resources"`
	Components   []string                `yaml:"components"`
	ConfigMapGen []generator             `yaml:"configMapGenerator"`
	SecretGen    []generator             `yaml:"secretGenerator"`
	Patches      []struct{ Path string } `yaml:"patches"`
	PatchesMerge []string                `yaml:"patchesStrategicMerge"`
}

type generator struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
	Envs  []string `yaml:"envs"`
}

// deploymentSpec is the part of a Deployment's spec these tests read.
type deploymentSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			Containers                    []struct {
				Name  string   `yaml:"name"`
				Args  []string `yaml:"args"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				Env []struct {
					Name  string `yaml:"name"`
					Value string `yaml:"value"`
				} `yaml:"env"`
				EnvFrom []struct {
					SecretRef struct{ Name string } `yaml:"secretRef"`
				} `yaml:"envFrom"`
				ReadinessProbe probe `yaml:"readinessProbe"`
				LivenessProbe  probe `yaml:"livenessProbe"`
				Lifecycle      struct {
					PreStop struct {
						Sleep struct{ Seconds int } `yaml:"sleep"`
					} `yaml:"preStop"`
				} `yaml:"lifecycle"`
				SecurityContext struct {
					AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
					ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
					Capabilities             struct {
						Drop []string `yaml:"drop"`
					} `yaml:"capabilities"`
				} `yaml:"securityContext"`
				VolumeMounts []struct {
					Name      string `yaml:"name"`
					MountPath string `yaml:"mountPath"`
					SubPath   string `yaml:"subPath"`
				} `yaml:"volumeMounts"`
			} `yaml:"containers"`
			SecurityContext struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
				RunAsUser    int  `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			Volumes []struct {
				Name      string `yaml:"name"`
				ConfigMap struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// k8sBase is deploy/k8s/base read for the tests.
type k8sBase struct {
	objects    map[string]k8sObject // by kind
	deployment deploymentSpec
	config     string // the ConfigMap's strangler.yaml
	env        map[string]string
}

// readK8sBase reads the base and the example overlay's Secret: the
// environment the container gets is its env values and the Secret's.
func readK8sBase(t *testing.T) k8sBase {
	t.Helper()
	dir := filepath.Join("k8s", "base")
	var k kustomization
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	b := k8sBase{objects: map[string]k8sObject{}, env: map[string]string{}}
	for _, r := range k.Resources {
		for _, o := range k8sDocuments(t, filepath.Join(dir, r)) {
			b.objects[o.Kind] = o
		}
	}
	dep, ok := b.objects["Deployment"]
	if !ok {
		t.Fatal("the base has no Deployment")
	}
	if err := dep.Spec.Decode(&b.deployment); err != nil {
		t.Fatalf("deployment: %v", err)
	}
	if len(b.deployment.Template.Spec.Containers) != 1 {
		t.Fatalf("got %d containers, want 1", len(b.deployment.Template.Spec.Containers))
	}
	for _, g := range k.ConfigMapGen {
		for _, f := range g.Files {
			if filepath.Base(lastPart(f)) == "strangler.yaml" {
				b.config = filepath.Join(dir, lastPart(f))
			}
		}
	}
	if b.config == "" {
		t.Fatal("no configMapGenerator makes strangler.yaml")
	}
	for _, e := range b.deployment.Template.Spec.Containers[0].Env {
		b.env[e.Name] = e.Value
	}
	var overlay kustomization
	odir := filepath.Join("k8s", "overlays", "example")
	readYAML(t, filepath.Join(odir, "kustomization.yaml"), &overlay)
	for _, g := range overlay.SecretGen {
		for _, e := range g.Envs {
			for k, v := range readEnvFile(t, filepath.Join(odir, e)) {
				b.env[k] = v
			}
		}
	}
	return b
}

// lastPart is a generator's file path without its "key=" prefix.
func lastPart(f string) string {
	if _, after, ok := strings.Cut(f, "="); ok {
		return after
	}
	return f
}

// readEnvFile reads KEY=VALUE lines as Kustomize does; # starts a comment.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
	return env
}

func (b k8sBase) getenv(k string) string { return b.env[k] }

// testStoreKey stands in for the store key an operator generates in place
// of the example Secret's placeholder.
const testStoreKey = "b425b6db78b7d54b3bf66b05cf365d37405abca01550435b97ef7ab3d7779895"

// loadConfig loads the ConfigMap's strangler.yaml with the container's
// environment, the store key set as the operator would.
func (b k8sBase) loadConfig(t *testing.T) *config.Config {
	t.Helper()
	getenv := func(k string) string {
		if k == "STRANGLER_STORE_KEY" {
			return testStoreKey
		}
		return b.env[k]
	}
	cfg, err := configfile.Load(b.config, configfile.Env{Getenv: getenv, ReadFile: filecap.Read})
	if err != nil {
		t.Fatalf("the ConfigMap's strangler.yaml with the Secret's environment: %v", err)
	}
	return cfg
}

func TestKubernetesManifestsParse(t *testing.T) {
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
			return err
		}
		docs := k8sDocuments(t, path)
		if len(docs) == 0 {
			t.Errorf("%s: no document", path)
		}
		if filepath.Base(path) == "strangler.yaml" {
			return nil // strangler's configuration, loaded below
		}
		for i, o := range docs {
			if o.APIVersion == "" || o.Kind == "" {
				t.Errorf("%s: document %d has no apiVersion or kind", path, i+1)
			}
			if o.Kind != "Kustomization" && o.Kind != "Component" && o.Metadata.Name == "" {
				t.Errorf("%s: %s without a name", path, o.Kind)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKustomizationsReferenceFilesThatExist(t *testing.T) {
	var found int
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		found++
		dir := filepath.Dir(path)
		var k kustomization
		readYAML(t, path, &k)
		check := func(what, ref string, wantDir bool) {
			fi, err := os.Stat(filepath.Join(dir, ref))
			switch {
			case err != nil:
				t.Errorf("%s: %s %q: %v", path, what, ref, err)
			case fi.IsDir() && !wantDir:
				t.Errorf("%s: %s %q is a folder", path, what, ref)
			case fi.IsDir():
				if _, err := os.Stat(filepath.Join(dir, ref, "kustomization.yaml")); err != nil {
					t.Errorf("%s: %s %q has no kustomization.yaml", path, what, ref)
				}
			}
		}
		for _, r := range k.Resources {
			check("resource", r, true)
		}
		for _, r := range k.Components {
			check("component", r, true)
		}
		for _, g := range append(k.ConfigMapGen, k.SecretGen...) {
			for _, f := range g.Files {
				check(g.Name+" file", lastPart(f), false)
			}
			for _, f := range g.Envs {
				check(g.Name+" env file", f, false)
			}
		}
		for _, p := range k.Patches {
			if p.Path != "" {
				check("patch", p.Path, false)
			}
		}
		for _, p := range k.PatchesMerge {
			check("patch", p, false)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 2 {
		t.Errorf("found %d kustomization.yaml files, want the base and the example overlay", found)
	}
}

// TestKubernetesProbes checks that the probes ask the admin listener
// for paths it serves, on the port the configuration gives it.
func TestKubernetesProbes(t *testing.T) {
	b := readK8sBase(t)
	c := b.deployment.Template.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	cfg := b.loadConfig(t)
	adminPort, listenPort := portOf(t, cfg.Admin.Listen), portOf(t, cfg.Listen)
	if ports["admin"] != adminPort {
		t.Errorf("container port admin is %d; admin.listen %q says %d", ports["admin"], cfg.Admin.Listen, adminPort)
	}
	if ports["http"] != listenPort {
		t.Errorf("container port http is %d; listen %q says %d", ports["http"], cfg.Listen, listenPort)
	}
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/strangler/strangler.yaml"}) {
		t.Errorf("args %q; want serve --config /etc/strangler/strangler.yaml", c.Args)
	}

	ok := backend(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	f := startFacade(t, writeConfig(t, ok.URL, ok.URL, `  - {name: p, match: "GET /p", mode: legacy}
`))
	for name, p := range map[string]probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p.HTTPGet.Port != "admin" {
			t.Errorf("%s probe on port %q; want the admin port", name, p.HTTPGet.Port)
		}
		if code, body := get(t, "http://"+f.admin+p.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("%s probe: GET %s on the admin listener: %d %s", name, p.HTTPGet.Path, code, body)
		}
	}
	if got := c.ReadinessProbe.HTTPGet.Path; got != "/readyz" {
		t.Errorf("readiness probe asks %s; want /readyz, which fails while draining", got)
	}
	if got := c.LivenessProbe.HTTPGet.Path; got != "/healthz" {
		t.Errorf("liveness probe asks %s; want /healthz", got)
	}
}

// TestKubernetesGivesTheDrainItsTime: the kubelet kills the pod
// terminationGracePeriodSeconds after it starts the preStop sleep, which
// must leave room after it for shutdown.delay, shutdown.grace and the
// wait for dual writes still at their primary (AfterGrace): killed
// during that wait, a write the primary applied is left unknown for an
// operator.
func TestKubernetesGivesTheDrainItsTime(t *testing.T) {
	b := readK8sBase(t)
	spec := b.deployment.Template.Spec
	cfg := b.loadConfig(t)
	sleep := time.Duration(spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if sleep == 0 {
		t.Error("no preStop sleep: endpoints may still send requests when the drain starts")
	}
	if got, need := time.Duration(spec.TerminationGracePeriodSeconds)*time.Second, sleep+drainNeeds(cfg); got < need {
		t.Errorf("terminationGracePeriodSeconds is %v; preStop %v + %s need %v", got, sleep, drainSteps(cfg), need)
	}
}

// drainNeeds is how long after SIGTERM the facade of cfg may take to
// stop without leaving a write unknown: shutdown.delay, shutdown.grace,
// and the wait for the primary's answers to writes still at it.
func drainNeeds(cfg *config.Config) time.Duration {
	return time.Duration(cfg.Shutdown.Delay) + time.Duration(cfg.Shutdown.Grace) + cfg.AfterGrace()
}

// drainSteps names drainNeeds' parts, for a test's message.
func drainSteps(cfg *config.Config) string {
	return fmt.Sprintf("shutdown.delay %v + shutdown.grace %v + the wait for writes at their primary %v (the longer backend timeout + 12 s)",
		time.Duration(cfg.Shutdown.Delay), time.Duration(cfg.Shutdown.Grace), cfg.AfterGrace())
}

// TestKubernetesConfigMap loads the ConfigMap's strangler.yaml with
// the environment the Secret provides, and checks it is made for several
// replicas.
func TestKubernetesConfigMap(t *testing.T) {
	b := readK8sBase(t)
	cfg := b.loadConfig(t)
	if !strings.HasPrefix(string(cfg.Store), "postgres") {
		t.Errorf("store %q; several replicas share a PostgreSQL store", cfg.Store)
	}
	if len(cfg.Admin.AdminTokens()) == 0 {
		t.Error("no admin token: the admin API would be closed to every command")
	}
	raw, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("strangler.yaml loads with warnings (config check prints them): %v", cfg.Warnings)
	}
	if len(cfg.EncryptionKeys()) == 0 {
		t.Error("no store_encryption: the dual-write journal would keep patients' bodies in clear")
	}
	// The example Secret's key is a placeholder strangler refuses: a key
	// printed in the repository must never encrypt patient data.
	_, err = configfile.Load(b.config, configfile.Env{Getenv: b.getenv, ReadFile: filecap.Read})
	if err == nil || !strings.Contains(err.Error(), "store_encryption.keys[0]") {
		t.Errorf("strangler.yaml with the example Secret's placeholder key: %v; want store_encryption.keys[0] refused", err)
	}
	for _, secret := range []string{"${STRANGLER_STORE}", "${STRANGLER_ADMIN_TOKEN}", "${STRANGLER_STORE_KEY}"} {
		if !bytes.Contains(raw, []byte(secret)) {
			t.Errorf("strangler.yaml does not read %s from the Secret", secret)
		}
	}
	if _, err := configfile.Parse(b.config, raw, configfile.Env{Getenv: func(string) string { return "" }, ReadFile: filecap.Read}); err == nil {
		t.Error("strangler.yaml loads without the Secret's environment; it should need it")
	}
	c := b.deployment.Template.Spec.Containers[0]
	if len(c.EnvFrom) == 0 || c.EnvFrom[0].SecretRef.Name != "strangler-secrets" {
		t.Error("the container does not take its environment from the strangler-secrets Secret")
	}
	// Only a folder mount sees ConfigMap updates, which reloads rely on.
	for _, m := range c.VolumeMounts {
		if m.MountPath == filepath.Dir(c.Args[len(c.Args)-1]) && m.SubPath != "" {
			t.Errorf("the configuration is mounted with subPath %q: updates would never reach the pod", m.SubPath)
		}
	}
}

// TestKubernetesSelectorsAndSecurity checks that the objects around
// the Deployment select its pods and name its ports, and that the pod runs
// locked down.
func TestKubernetesSelectorsAndSecurity(t *testing.T) {
	b := readK8sBase(t)
	pod := b.deployment.Template.Metadata.Labels
	selects := func(what string, sel map[string]string) {
		if len(sel) == 0 {
			t.Errorf("%s selects nothing", what)
		}
		for k, v := range sel {
			if pod[k] != v {
				t.Errorf("%s selects %s=%s; the pods have %v", what, k, v, pod)
			}
		}
	}
	selects("the Deployment", b.deployment.Selector.MatchLabels)
	var svc struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	decode := func(kind string, v any) {
		o, ok := b.objects[kind]
		if !ok {
			t.Fatalf("the base has no %s", kind)
		}
		if err := o.Spec.Decode(v); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	decode("Service", &svc)
	selects("the Service", svc.Selector)
	portNames := map[string]bool{}
	for _, p := range b.deployment.Template.Spec.Containers[0].Ports {
		portNames[p.Name] = true
	}
	for _, p := range svc.Ports {
		if !portNames[p.TargetPort] {
			t.Errorf("the Service targets port %q, which the container does not name", p.TargetPort)
		}
	}
	if len(svc.Ports) != 1 || svc.Ports[0].TargetPort != "http" {
		t.Errorf("the Service should expose the public port only, got %+v", svc.Ports)
	}
	var pdb struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
	decode("PodDisruptionBudget", &pdb)
	selects("the PodDisruptionBudget", pdb.Selector.MatchLabels)
	var np struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		Ingress []struct {
			From  []any                   `yaml:"from"`
			Ports []struct{ Port string } `yaml:"ports"`
		} `yaml:"ingress"`
	}
	decode("NetworkPolicy", &np)
	selects("the NetworkPolicy", np.PodSelector.MatchLabels)
	for _, rule := range np.Ingress {
		for _, p := range rule.Ports {
			if !portNames[p.Port] {
				t.Errorf("the NetworkPolicy admits port %q, which the container does not name", p.Port)
			}
			if p.Port == "admin" && len(rule.From) == 0 {
				t.Error("the NetworkPolicy admits anyone to the admin port")
			}
		}
	}
	var hpa struct {
		ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
	}
	decode("HorizontalPodAutoscaler", &hpa)
	if hpa.ScaleTargetRef.Kind != "Deployment" || hpa.ScaleTargetRef.Name != b.objects["Deployment"].Metadata.Name {
		t.Errorf("the HorizontalPodAutoscaler scales %+v, not the Deployment", hpa.ScaleTargetRef)
	}

	sc := b.deployment.Template.Spec.Containers[0].SecurityContext
	if !b.deployment.Template.Spec.SecurityContext.RunAsNonRoot || b.deployment.Template.Spec.SecurityContext.RunAsUser == 0 {
		t.Error("the pod may run as root")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext %+v; want no privilege escalation, a read-only root and every capability dropped", sc)
	}
}
