package deploy

import (
	"path/filepath"
	"slices"
	"testing"

	"strangler/config/configfile"
	"strangler/internal/filecap"
)

const backfillComponent = "k8s/components/backfill-workers"

// TestBackfillJobRunsWorkersOfOneRun builds the example overlay with the
// backfill-workers component: a Job of several indexed pods, each a
// worker of one named run, mounting a ConfigMap that exists and holds a
// backfill configuration that loads.
func TestBackfillJobRunsWorkersOfOneRun(t *testing.T) {
	build := kustomize(t)
	overlay, _ := filepath.Abs("k8s/overlays/example")
	comp, _ := filepath.Abs(backfillComponent)
	dir := t.TempDir()
	relOverlay, _ := filepath.Rel(dir, overlay)
	relComp, _ := filepath.Rel(dir, comp)
	writeFile(t, filepath.Join(dir, "kustomization.yaml"), []byte(
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - "+relOverlay+"\ncomponents:\n  - "+relComp+"\n"))
	var job, cm map[string]any
	configMaps := map[string]map[string]any{}
	for _, doc := range yamlDocuments(t, build(dir)) {
		name, _ := doc["metadata"].(map[string]any)["name"].(string)
		switch doc["kind"] {
		case "Job":
			job = doc
		case "ConfigMap":
			configMaps[name] = doc
		}
	}
	if job == nil {
		t.Fatal("no Job in the build")
	}
	spec := job["spec"].(map[string]any)
	if spec["completionMode"] != "Indexed" || spec["parallelism"] != spec["completions"] || spec["parallelism"].(int) < 2 {
		t.Errorf("Job: completionMode %v, parallelism %v, completions %v; want Indexed and as many completions as parallel workers, at least 2",
			spec["completionMode"], spec["parallelism"], spec["completions"])
	}
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	c := pod["containers"].([]any)[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	for _, want := range []string{"backfill", "--worker", "--run", "--worker-id"} {
		if !slices.Contains(args, want) {
			t.Errorf("the worker's args %v lack %s", args, want)
		}
	}
	cmName := pod["volumes"].([]any)[0].(map[string]any)["configMap"].(map[string]any)["name"].(string)
	if cm = configMaps[cmName]; cm == nil {
		t.Fatalf("the Job mounts ConfigMap %s, which the build does not have", cmName)
	}
	text, _ := cm["data"].(map[string]any)["strangler.yaml"].(string)
	path := filepath.Join(t.TempDir(), "strangler.yaml")
	writeFile(t, path, []byte(text))
	env := map[string]string{"LEGACY_DSN": "mysql://u:p@legacy-db:3306/hospital", "MODERN_DSN": "postgres://u:p@modern-db:5432/app"}
	cfg, err := configfile.Load(path, configfile.Env{Getenv: func(k string) string { return env[k] }, ReadFile: filecap.Read})
	if err != nil {
		t.Fatalf("the workers' configuration: %v", err)
	}
	if cfg.Backfill == nil || len(cfg.Backfill.Tables) == 0 {
		t.Error("the workers' configuration has no backfill tables")
	}
}
