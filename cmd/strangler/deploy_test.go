package main

// These tests keep deploy/ honest: the dashboard and the alert rules use
// metrics a running facade exports, promtool accepts the rules and they
// fire when they should, the Kubernetes manifests point at what the
// facade serves and give it time to drain, and the image is built the way
// the README and the Makefile say. Docker is not needed; promtool is
// (Debian: apt-get install prometheus), and its absence is a skip unless
// STRANGLER_REQUIRE_TOOLS=1, as in CI.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"strangler/backfill"
)

// deployDir is deploy/ as seen from this package's folder.
const deployDir = "../../deploy"

func deployPath(parts ...string) string {
	return filepath.Join(append([]string{deployDir}, parts...)...)
}

// metricName finds metric names in PromQL.
var metricName = regexp.MustCompile(`strangler_[a-z_]+`)

// queriedMetrics returns the metric names the dashboard's and the alert
// rules' expressions use, histogram series (_bucket, _sum, _count) under
// their family's name, each with where it was found.
func queriedMetrics(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	add := func(where, expr string) {
		for _, n := range metricName.FindAllString(expr, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				n = strings.TrimSuffix(n, suffix)
			}
			if _, ok := names[n]; !ok {
				names[n] = where
			}
		}
	}
	for _, q := range dashboardQueries(t) {
		add("dashboard", q)
	}
	for _, r := range alertRules(t) {
		add("alert "+r.Alert, r.Expr)
	}
	if len(names) == 0 {
		t.Fatal("no strangler_ metric found in the dashboard or the alert rules")
	}
	return names
}

// dashboardQueries returns every PromQL expression of the Grafana
// dashboard: panel targets and the variables' queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(deployPath("grafana", "dashboards", "strangler.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var queries []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				walk(child, k)
			}
		case []any:
			for _, child := range v {
				walk(child, key)
			}
		case string:
			if key == "expr" || key == "query" || key == "definition" {
				queries = append(queries, v)
			}
		}
	}
	walk(dash, "")
	return queries
}

// alertRule is one rule of deploy/prometheus/alerts.yaml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, deployPath("prometheus", "alerts.yaml"), &file)
	var rules []alertRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// isBatchMetric says whether backfill or verify export a metric rather
// than the facade.
func isBatchMetric(name string) bool {
	return strings.HasPrefix(name, "strangler_backfill_") || strings.HasPrefix(name, "strangler_verify_")
}

// TestDeployMetricsAreExported runs a facade with a route in each mode
// and a guard, sends it a little traffic, and checks that /metrics has
// every metric the dashboard and the alert rules query.
func TestDeployMetricsAreExported(t *testing.T) {
	var want []string
	for name := range queriedMetrics(t) {
		if !isBatchMetric(name) {
			want = append(want, name)
		}
	}
	sort.Strings(want)

	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":1}`)
	})
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch {
		case strings.HasPrefix(r.URL.Path, "/fb/"):
			http.NotFound(w, r) // not backfilled yet: a fallback
		case r.URL.Path == "/gd":
			http.Error(w, "broken", http.StatusInternalServerError) // trips the guard
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":1}`)
		}
	})
	path := writeConfig(t, "", legacy.URL, modern.URL, `  - {name: fb, match: "GET /fb/{id}", mode: fallback}
  - {name: sh, match: "GET /sh", mode: shadow}
  - {name: dw, match: "POST /dw", mode: dual-write, primary: legacy, id_field: id}
  - {name: gd, match: "GET /gd", mode: modern, guard: {max_error_rate: 5%, min_requests: 5}}
`)
	f := startRun(t, "serve", "--config", path)
	base := "http://" + f.public
	for range 3 {
		deploySend(t, "GET", base+"/fb/1", "")
		deploySend(t, "GET", base+"/sh", "")
		deploySend(t, "POST", base+"/dw", `{"name":"x"}`)
		deploySend(t, "GET", base+"/unrouted", "")
	}
	for range 10 {
		deploySend(t, "GET", base+"/gd", "")
	}

	// Shadow comparisons, dual-write deliveries and the guard's rollback
	// happen off the request path; give them a few seconds.
	var missing []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		have := exportedMetrics(t, f.admin)
		missing = missing[:0]
		for _, name := range want {
			if !have[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard or the alert rules query metrics a running facade does not export: %s", strings.Join(missing, ", "))
	}
	if len(want) < 10 {
		t.Errorf("got only %d facade metrics in the dashboard and the rules (%v); the extraction is broken", len(want), want)
	}
}

func deploySend(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// exportedMetrics returns the metric families the admin listener's
// /metrics shows.
func exportedMetrics(t *testing.T, admin string) map[string]bool {
	t.Helper()
	_, body := getBody(t, "http://"+admin+"/metrics")
	have := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			have[strings.Fields(rest)[0]] = true
		}
	}
	return have
}

// TestDeployBatchMetricNames checks the dashboard's backfill and verify
// metrics against what backfill.NewMetrics registers: `strangler
// backfill` and `strangler verify --every` export them, not the facade.
func TestDeployBatchMetricNames(t *testing.T) {
	registered := map[string]bool{}
	backfill.NewMetrics(describer{registered})
	if len(registered) == 0 {
		t.Fatal("backfill.NewMetrics registered no metric")
	}
	found := 0
	for name, where := range queriedMetrics(t) {
		if !isBatchMetric(name) {
			continue
		}
		found++
		if !registered[name] {
			t.Errorf("%s queries %s, which backfill.NewMetrics does not register (it has %v)", where, name, slices.Sorted(maps.Keys(registered)))
		}
	}
	if found == 0 {
		t.Error("the dashboard queries no backfill or verify metric")
	}
}

// describer is a Registerer that records the names of the metrics
// registered with it.
type describer struct{ names map[string]bool }

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for desc := range ch {
		if m := descName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		d.Register(c)
	}
}

func (d describer) Unregister(prometheus.Collector) bool { return false }

// promtool returns promtool's path, or skips the test when it is not
// installed and STRANGLER_REQUIRE_TOOLS is not 1.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("STRANGLER_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool is required (STRANGLER_REQUIRE_TOOLS=1) but not installed; Debian: apt-get install prometheus")
		}
		t.Skip("promtool not installed (Debian: apt-get install prometheus); set STRANGLER_REQUIRE_TOOLS=1 to make this a failure")
	}
	return path
}

func runTool(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// TestDeployAlertRules checks the rules with promtool, runs their unit
// tests, and checks that each says how bad it is and what to do.
func TestDeployAlertRules(t *testing.T) {
	rules := alertRules(t)
	for _, r := range rules {
		switch {
		case r.Alert == "":
			t.Errorf("a rule without alert: %q", r.Expr)
		case r.For == "":
			t.Errorf("%s: no for:; one bad scrape would page", r.Alert)
		case !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]):
			t.Errorf("%s: severity %q; want critical, warning or info", r.Alert, r.Labels["severity"])
		case r.Annotations["summary"] == "" || r.Annotations["description"] == "":
			t.Errorf("%s: want a summary and a description", r.Alert)
		case !strings.Contains(r.Annotations["description"], "Runbook") || !strings.Contains(r.Annotations["runbook"], r.Alert):
			t.Errorf("%s: the description should give the runbook, and the runbook annotation name the alert", r.Alert)
		}
	}

	bin := promtool(t)
	rulesPath, err := filepath.Abs(deployPath("prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runTool(t, "", bin, "check", "rules", rulesPath)

	// The unit tests compare annotations too; they pin when each alert
	// fires and with which labels, so they run on the rules without them.
	var file map[string]any
	readYAML(t, rulesPath, &file)
	for _, g := range file["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	dir := t.TempDir()
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(deployPath("prometheus", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !bytes.Contains(tests, []byte("alertname: "+r.Alert+"\n")) {
			t.Errorf("%s has no case in alerts_test.yaml", r.Alert)
		}
	}
	writeFile(t, filepath.Join(dir, "alerts.yaml"), b)
	writeFile(t, filepath.Join(dir, "alerts_test.yaml"), tests)
	runTool(t, dir, bin, "test", "rules", "alerts_test.yaml")
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDeployDashboardQueriesParse hands promtool the dashboard's queries,
// with Grafana's variables filled in, as recording rules.
func TestDeployDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	fill := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$route", ".*")
	var rules []map[string]string
	for i, q := range dashboardQueries(t) {
		if strings.HasPrefix(q, "label_values(") {
			continue // Grafana's own function, not PromQL
		}
		if strings.Contains(fill.Replace(q), "$") {
			t.Errorf("a query uses a variable this test does not fill in: %s", q)
		}
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": fill.Replace(q)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.yaml")
	writeFile(t, path, b)
	runTool(t, "", bin, "check", "rules", path)
}

// TestDeployPrometheusConfig checks compose's prometheus.yml, rule files
// included (they are named relative to it).
func TestDeployPrometheusConfig(t *testing.T) {
	bin := promtool(t)
	runTool(t, deployPath("prometheus"), bin, "check", "config", "prometheus.yml")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}
