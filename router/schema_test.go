package router

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/shadow"
	"strangler/store"
)

// newSchemaFacade serves routes with schemas kept in st, a real SQLite
// store, new if nil.
func newSchemaFacade(t *testing.T, legacyURL, modernURL, routes string, st *store.Store) (*facade, *store.Store) {
	t.Helper()
	if st == nil {
		var err error
		st, err = store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	yaml := fmt.Sprintf("backends:\n  legacy: {url: %q, timeout: 1s}\n  modern: {url: %q, timeout: 1s}\nroutes:\n%s", legacyURL, modernURL, routes)
	cfg, err := configfile.Parse("test.yaml", []byte(yaml), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	f := &facade{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	f.router = New(Deps{Metrics: NewMetrics(f.reg), Log: slog.New(slog.NewJSONHandler(f.logs, nil)), SchemaStore: st})
	table, err := f.router.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.router.Swap(table)
	f.Server = httptest.NewServer(f.router)
	t.Cleanup(f.Close)
	return f, st
}

// learned waits until route's schema for method and status was learned
// from n answers (as every replica flushed it) and returns it.
func learned(t *testing.T, f *facade, st *store.Store, route string, key shadow.SchemaKey, n int64) *shadow.Schema {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		schemas, err := f.router.deps.Schemas.Stored(context.Background(), st, route)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range schemas {
			if s.Key() == key && s.Answers >= n {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s schema of %s learned from %d answers after 10s: %+v", key, route, n, schemas)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drift waits until route's drift of kind reaches n.
func (f *facade) drift(t *testing.T, route, kind string, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.metric(t, "strangler_schema_drift_total", map[string]string{"route": route, "kind": kind}) < n {
		if time.Now().After(deadline) {
			t.Fatalf("strangler_schema_drift_total{route=%q,kind=%q} stayed below %v", route, kind, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const legacyRecord = `{"id":%s,"name":"Zelda Quimbyfrost","visits":3,"status":"active"}`

func TestShadowRoutesLearnLegacysShapeAndCountModernsDrift(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		answer(200, fmt.Sprintf(legacyRecord, strings.TrimPrefix(r.URL.Path, "/patients/")))(w, r)
	})
	modern := newBackend(t, jsonAnswer(`{"id":1,"visits":"3","status":"active"}`))
	f, st := newSchemaFacade(t, legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: shadow}
`, nil)
	for i := range shadow.MinEvidence + 2 {
		if resp, body := f.get(t, fmt.Sprintf("/patients/%d", i)); resp.StatusCode != 200 || !strings.Contains(body, "Quimbyfrost") {
			t.Fatalf("got %d %s, want legacy's answer", resp.StatusCode, body)
		}
		// One at a time, so that the later copies are checked against
		// the earlier answers.
		f.comparisons(t, "get-patient", i+1)
	}
	f.drift(t, "get-patient", shadow.DriftMissing, 2)
	f.drift(t, "get-patient", shadow.DriftType, 2)
	s := learned(t, f, st, "get-patient", shadow.SchemaKey{Method: "GET", Status: 200}, int64(shadow.MinEvidence+2))
	if d := s.Drift["name"]; d == nil || d.Missing < 2 {
		t.Errorf("stored drift of name %+v, want it missing at least twice", d)
	}
	if d := s.Drift["visits"]; d == nil || d.Type < 2 {
		t.Errorf("stored drift of visits %+v, want a string at least twice", d)
	}
	if s.Checked < 2 {
		t.Errorf("%d modern answers checked, want at least 2", s.Checked)
	}
}

func TestFallbackRoutesLearnFromLegacysAnswersAndCheckModerns(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		answer(200, fmt.Sprintf(legacyRecord, strings.TrimPrefix(r.URL.Path, "/patients/")))(w, r)
	})
	// Modern has patients 100 and up, without their names.
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/patients/")
		if len(id) < 3 {
			answer(404, `{"error":"not migrated"}`)(w, r)
			return
		}
		answer(200, `{"id":`+id+`,"visits":3,"status":"active"}`)(w, r)
	})
	f, st := newSchemaFacade(t, legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`, nil)
	for i := range shadow.MinEvidence {
		if _, body := f.get(t, fmt.Sprintf("/patients/%d", i)); !strings.Contains(body, "Quimbyfrost") {
			t.Fatalf("got %s, want legacy's answer after the fallback", body)
		}
	}
	learned(t, f, st, "get-patient", shadow.SchemaKey{Method: "GET", Status: 200}, int64(shadow.MinEvidence))
	if resp, body := f.get(t, "/patients/100"); resp.StatusCode != 200 || strings.Contains(body, "name") {
		t.Fatalf("got %d %s, want modern's answer, unchanged", resp.StatusCode, body)
	}
	f.drift(t, "get-patient", shadow.DriftMissing, 1)
	if got := f.metric(t, "strangler_schema_drift_total", map[string]string{"route": "get-patient", "kind": shadow.DriftType}); got != 0 {
		t.Errorf("type drift %v, want none", got)
	}

	t.Run("a new replica checks against what the store holds from the first answer", func(t *testing.T) {
		g, _ := newSchemaFacade(t, legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`, st)
		g.get(t, "/patients/101")
		g.drift(t, "get-patient", shadow.DriftMissing, 1)
	})
}

func TestSchemaLearningTakesAtMostItsBudgetEachSecond(t *testing.T) {
	var p perSecond
	second := time.Unix(1_800_000_000, 0)
	allowed := 0
	for i := range 3 * schemaAnswersPerSecond {
		if p.allow(second.Add(time.Duration(i) * time.Millisecond)) {
			allowed++
		}
	}
	if allowed != schemaAnswersPerSecond {
		t.Errorf("%d answers allowed in one second, want %d", allowed, schemaAnswersPerSecond)
	}
	if !p.allow(second.Add(time.Second)) {
		t.Error("the next second allows none")
	}
}
