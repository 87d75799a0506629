package deploy

// Tests of the dashboard and the alert rules: the metrics they query, the
// PromQL they run, the runbooks they point at, and promtool's verdict on
// them, run as a user would.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"strangler/backfill"
	"strangler/force"
	"strangler/internal/testkit"
)

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
	var dash any
	if err := json.Unmarshal(readFile(t, "grafana/dashboards/strangler.json"), &dash); err != nil {
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

// alertRule is one rule of prometheus/alerts.yaml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ruleFile is the layout of a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string      `yaml:"name"`
		Rules []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var file ruleFile
	readYAML(t, "prometheus/alerts.yaml", &file)
	var rules []alertRule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// isBatchMetric says whether backfill or verify export a metric rather
// than the facade.
func isBatchMetric(name string) bool {
	return strings.HasPrefix(name, "strangler_backfill_") || strings.HasPrefix(name, "strangler_verify_")
}

// TestMetricsTheDashboardAndAlertsQueryAreExported runs a facade with a
// route in each mode and a guard, sends it a little traffic, and checks
// that /metrics has every metric the dashboard and the alert rules query.
func TestMetricsTheDashboardAndAlertsQueryAreExported(t *testing.T) {
	var want []string
	for name := range queriedMetrics(t) {
		if !isBatchMetric(name) {
			want = append(want, name)
		}
	}
	sort.Strings(want)

	legacy := backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":1}`)
	})
	modern := backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch {
		case strings.HasPrefix(r.URL.Path, "/fb/"):
			http.NotFound(w, r) // not backfilled yet: a fallback
		case r.URL.Path == "/gd":
			http.Error(w, "broken", http.StatusInternalServerError) // trips the guard
		case r.URL.Path == "/br":
			// An answer that breaks off mid-body.
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, `{"id":`)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":1}`)
		}
	})
	var forceKey [32]byte
	f := startFacade(t, writeConfig(t, legacy.URL, modern.URL, `  - {name: fb, match: "GET /fb/{id}", mode: fallback}
  - {name: sh, match: "GET /sh", mode: shadow}
  - {name: dw, match: "POST /dw", mode: dual-write, primary: legacy, id_field: id}
  - {name: gd, match: "GET /gd", mode: modern, guard: {max_error_rate: 5%, min_requests: 5}}
  - {name: br, match: "GET /br", mode: modern}
force_token_key: "`+hex.EncodeToString(forceKey[:])+`"
`))
	base := "http://" + f.public
	forced := force.NewKey(forceKey).Sign(force.Claim{Route: "fb", Backend: "legacy", Expires: time.Now().Add(time.Hour)})
	for range 3 {
		send(t, "GET", base+"/fb/1", "")
		send(t, "GET", base+"/sh", "")
		send(t, "POST", base+"/dw", `{"name":"x"}`)
		send(t, "GET", base+"/unrouted", "")
		send(t, "GET", base+"/fb/1", "", force.Header, forced)
		send(t, "GET", base+"/fb/1", "", force.Header, "forged")
		send(t, "PROPFIND", base+"/fb/1", "") // refused: 405
	}
	for range 10 {
		send(t, "GET", base+"/gd", "")
	}
	// The client gets a cut answer: an error, which send would not take.
	if resp, err := http.Get(base + "/br"); err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Error("GET /br: a whole answer, want it cut")
		}
	}

	// Shadow comparisons, dual-write deliveries and the guard's rollback
	// happen off the request path; give them a few seconds.
	var missing []string
	deadline := time.Now().Add(15 * time.Second)
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

func send(t *testing.T, method, url, body string, header ...string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
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
	_, body := get(t, "http://"+admin+"/metrics")
	have := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			have[strings.Fields(rest)[0]] = true
		}
	}
	return have
}

// TestBatchMetricNames checks the backfill and verify metrics the
// dashboard and the alerts query against what backfill.NewMetrics
// registers: `strangler backfill` and `strangler verify --every` export
// them, not the facade.
func TestBatchMetricNames(t *testing.T) {
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

// counterUse finds a counter and what is applied to it: the function
// whose argument it is, if it is a range vector's.
var counterUse = regexp.MustCompile(`(\w*)\(\s*(strangler_\w+_total)(\{[^}]*\})?\s*\[|(strangler_\w+_total)`)

// TestNoQueryShowsARawCounter: a counter restarts at 0 with its process,
// so a panel or a rule must read it through rate() or increase() (or
// irate), never its value.
func TestNoQueryShowsARawCounter(t *testing.T) {
	queries := map[string]string{}
	for i, q := range dashboardQueries(t) {
		if !strings.HasPrefix(q, "label_values(") { // a variable's values, not a counter's
			queries[fmt.Sprintf("dashboard query %d", i)] = q
		}
	}
	for _, r := range alertRules(t) {
		queries["alert "+r.Alert] = r.Expr
	}
	counters := 0
	for where, q := range queries {
		for _, m := range counterUse.FindAllStringSubmatch(q, -1) {
			counters++
			if m[4] != "" || !slices.Contains([]string{"rate", "increase", "irate"}, m[1]) {
				t.Errorf("%s reads a counter without rate() or increase(): %s", where, q)
			}
		}
	}
	if counters < 5 {
		t.Errorf("found %d uses of counters; the pattern is broken", counters)
	}
}

// promtool returns promtool's path, or skips the test when it is not
// installed and STRANGLER_REQUIRE_TOOLS is not 1.
func promtool(t *testing.T) string {
	t.Helper()
	return testkit.Tool(t, "promtool", "Debian: apt-get install prometheus")
}

// runTool runs a command in dir and returns its output; a failure fails
// the test.
func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRulesPassPromtoolAsAUserRunsIt runs promtool from the
// repository root exactly as the README and CI do: check rules, then the
// unit tests, which pin when each alert fires and what it says.
func TestAlertRulesPassPromtoolAsAUserRunsIt(t *testing.T) {
	bin := promtool(t)
	runTool(t, repoRoot, bin, "check", "rules", "deploy/prometheus/alerts.yaml")
	runTool(t, repoRoot, bin, "test", "rules", "deploy/prometheus/alerts_test.yaml")

	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				AlertName string `yaml:"alertname"`
				ExpAlerts []struct {
					ExpLabels      map[string]string `yaml:"exp_labels"`
					ExpAnnotations map[string]string `yaml:"exp_annotations"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus/alerts_test.yaml", &tests)
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yaml"}) {
		t.Errorf("alerts_test.yaml tests %v, want alerts.yaml", tests.RuleFiles)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			for _, e := range a.ExpAlerts {
				fires[a.AlertName] = true
				if e.ExpAnnotations["runbook_url"] == "" {
					t.Errorf("a case of %s expects no runbook_url: promtool then passes without checking what the alert says", a.AlertName)
				}
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s has no case in alerts_test.yaml where it fires", r.Alert)
		}
	}
}

// runbookBase is where runbook_url points: the README's section of each
// alert, on the repository's web page. Forks replace it (README, "The
// alerts").
const runbookBase = "https://github.com/example/strangler/blob/main/README.md#"

// TestAlertsSayHowBadAndWhatToDo checks each rule's severity, wording and
// runbook: runbook_url is a README heading that names the alert.
func TestAlertsSayHowBadAndWhatToDo(t *testing.T) {
	anchors := readmeAnchors(t)
	for _, r := range alertRules(t) {
		if r.Alert == "" {
			t.Errorf("a rule without alert: %q", r.Expr)
			continue
		}
		if r.For == "" {
			t.Errorf("%s: no for:; one bad scrape would page", r.Alert)
		}
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q; want critical, warning or info", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: want a summary and a description", r.Alert)
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
		switch {
		case !ok:
			t.Errorf("%s: runbook_url %q does not point at the README (%s…)", r.Alert, r.Annotations["runbook_url"], runbookBase)
		case anchors[anchor] == "":
			t.Errorf("%s: runbook_url names #%s, which no README heading makes", r.Alert, anchor)
		case !strings.Contains(anchors[anchor], r.Alert):
			t.Errorf("%s: runbook_url names the heading %q, which is not the alert's", r.Alert, anchors[anchor])
		}
	}
}

// readmeAnchors returns the README's headings by the anchor GitHub gives
// them: lower case, spaces as -, punctuation but - and _ dropped.
func readmeAnchors(t *testing.T) map[string]string {
	t.Helper()
	anchors := map[string]string{}
	inCode := false
	for _, line := range strings.Split(string(readFile(t, filepath.Join(repoRoot, "README.md"))), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		heading, ok := strings.CutPrefix(line, "#")
		if inCode || !ok {
			continue
		}
		heading = strings.TrimSpace(strings.TrimLeft(heading, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = heading
	}
	return anchors
}

// TestDashboardQueriesParse hands promtool the dashboard's queries, with
// Grafana's variables filled in, as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	fill := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$route", ".*")
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

// TestPrometheusConfig checks compose's prometheus.yml, rule files
// included (they are named relative to it).
func TestPrometheusConfig(t *testing.T) {
	bin := promtool(t)
	runTool(t, "prometheus", bin, "check", "config", "prometheus.yml")
}
