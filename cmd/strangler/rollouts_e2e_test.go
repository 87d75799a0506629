package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/force"
	"strangler/internal/testkit"
)

// rolloutBackends are legacy and modern as these tests need them: legacy
// has every patient but "gone" and answers with the whole record; modern
// leaves the name out, and on /fb/ has no patient below 100; both note
// the X-Strangler-Force headers they receive.
func rolloutBackends(t *testing.T) (legacy, modern *httptestBackend) {
	record := func(id string, withName bool) string {
		name := ""
		if withName {
			name = `"name":"Zelda Quimbyfrost",`
		}
		return `{"id":"` + id + `",` + name + `"visits":3,"status":"active"}`
	}
	legacy = newHTTPTestBackend(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		w.Header().Set("Content-Type", "application/json")
		if id == "gone" {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"no such patient"}`)
			return
		}
		io.WriteString(w, record(id, true))
	})
	modern = newHTTPTestBackend(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		w.Header().Set("Content-Type", "application/json")
		if id == "gone" || strings.HasPrefix(r.URL.Path, "/fb/") && len(id) < 3 {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"no such patient"}`)
			return
		}
		io.WriteString(w, record(id, false))
	})
	return legacy, modern
}

// httptestBackend is a backend that notes the force headers it received.
type httptestBackend struct {
	URL    string
	mu     sync.Mutex
	forced []string
}

func newHTTPTestBackend(t *testing.T, h http.HandlerFunc) *httptestBackend {
	b := &httptestBackend{}
	srv := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.forced = append(b.forced, r.Header.Values(force.Header)...)
		b.mu.Unlock()
		h(w, r)
	})
	b.URL = srv.URL
	return b
}

func (b *httptestBackend) forceHeaders() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.forced)
}

// startRolloutFacade runs a facade with a force token key from a file.
func startRolloutFacade(t *testing.T, key []byte, legacy, modern, routes string) *running {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "force-key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: alice, token: %q, role: operator}]
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
shutdown: { delay: 0s, grace: 2s }
store: "sqlite:%s"
force_token_key: ${file:%s}
routes:
%s`, aliceToken, legacy, modern, filepath.Join(dir, "strangler.db"), keyFile, routes)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return startRun(t, "serve", "--config", path)
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRolloutEvidenceFromTheCLI(t *testing.T) {
	key := []byte("force-key-for-the-e2e-test-01234")
	legacy, modern := rolloutBackends(t)
	f := startRolloutFacade(t, key, legacy.URL, modern.URL, `
  - {name: legacy-read, match: "GET /legacy/{id}", mode: legacy}
  - {name: fallback-read, match: "GET /fb/{id}", mode: fallback, retire_min_requests: 5, gates: {max_fallback_rate: 1%}}
  - {name: shadow-read, match: "GET /sh/{id}", mode: shadow}
  - {name: dw-write, match: "PUT /dw/{id}", mode: dual-write}
`)
	base := "http://" + f.public
	strangler := cli(f.admin)

	t.Run("a tester's force token sends one request to modern", func(t *testing.T) {
		out := strangler(t, "routes", "force-token", "legacy-read", "--backend", "modern", "--ttl", "30m", "--reason", "QA checks modern").must(t)
		line, _, _ := strings.Cut(out, "\n")
		value, ok := strings.CutPrefix(line, force.Header+": ")
		if !ok || !strings.Contains(out, "go to modern until") || !strings.Contains(out, "(30m)") {
			t.Fatalf("force-token printed:\n%s", out)
		}
		if code, body := get(t, base+"/legacy/7", force.Header, value); code != 200 || strings.Contains(body, "name") {
			t.Errorf("with the value: %d %s, want modern's answer (no name)", code, body)
		}
		if code, body := get(t, base+"/legacy/7"); code != 200 || !strings.Contains(body, "name") {
			t.Errorf("without it: %d %s, want legacy's answer", code, body)
		}
		forged := force.NewKey([32]byte([]byte("not-the-facade-s-key-0123456789a"))).Sign(force.Claim{Route: "legacy-read", Backend: "modern", Expires: time.Now().Add(time.Hour)})
		expired := force.NewKey([32]byte(key)).Sign(force.Claim{Route: "legacy-read", Backend: "modern", Expires: time.Now().Add(-time.Minute), ID: "old"})
		for reason, v := range map[string]string{"forged": forged, "expired": expired} {
			if _, body := get(t, base+"/legacy/7", force.Header, v); !strings.Contains(body, "name") {
				t.Errorf("a %s value was obeyed: %s", reason, body)
			}
			if got := metricValue(t, f.admin, `strangler_force_ignored_total{reason="`+reason+`",route="legacy-read"}`); got != "1" {
				t.Errorf("%s values ignored: %q, want 1", reason, got)
			}
		}
		if got := metricValue(t, f.admin, `strangler_forced_requests_total{backend="modern",route="legacy-read"}`); got != "1" {
			t.Errorf("strangler_forced_requests_total = %q, want 1", got)
		}
		if h := append(legacy.forceHeaders(), modern.forceHeaders()...); len(h) != 0 {
			t.Errorf("the backends received %s: %q", force.Header, h)
		}
		r := strangler(t, "routes", "force-token", "dw-write", "--backend", "modern")
		if r.err == nil || !strings.Contains(r.err.Error(), "dual-write routes take no force tokens") {
			t.Errorf("on a dual-write route: %v, want a refusal", r.err)
		}
		var log struct {
			Entries []struct{ Actor, Action, Route, Reason, Detail string }
		}
		adminGet(t, f.admin, "/admin/audit?route=legacy-read", &log)
		if len(log.Entries) == 0 || log.Entries[0].Action != "force_token" || log.Entries[0].Actor != "alice" || strings.Contains(log.Entries[0].Detail, value) {
			t.Errorf("audit %+v, want alice's force_token without the value", log.Entries)
		}
		if strings.Contains(f.logs.String(), value) {
			t.Error("the log holds the value")
		}
	})

	t.Run("a patient that exists nowhere does not hold back retirement", func(t *testing.T) {
		for i := range 6 {
			get(t, fmt.Sprintf("%s/fb/%d", base, 100+i))
		}
		for range 3 {
			if code, _ := get(t, base+"/fb/gone"); code != 404 {
				t.Fatalf("got %d, want legacy's 404", code)
			}
		}
		if got := metricValue(t, f.admin, `strangler_fallback_total{reason="confirmed_missing",route="fallback-read"}`); got != "3" {
			t.Errorf("confirmed_missing fallbacks %q, want 3", got)
		}
		out := strangler(t, "routes", "report", "fallback-read").must(t)
		// Not retirable yet, the route being counted only since the test
		// began; but not for a fallback.
		for _, want := range []string{"CONFIRMED MISSING", "last fallback:  none in 30d", "verdict:  not yet: this route's counts begin",
			"next:     modern: nothing blocks it"} {
			if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("the report lacks %q:\n%s", want, out)
			}
		}
		get(t, base+"/fb/7") // a migration gap: legacy has patient 7
		out = strangler(t, "routes", "report", "fallback-read").must(t)
		if !strings.Contains(out, "blocked by max_fallback_rate 1%: the fallback rate is 14.3%") || !strings.Contains(out, "not yet: 1 fallbacks") {
			t.Errorf("after a real fallback the report says:\n%s", out)
		}
	})

	t.Run("modern's drift from legacy's learned shape", func(t *testing.T) {
		for i := range 12 {
			get(t, fmt.Sprintf("%s/sh/%d", base, i))
		}
		var drift struct {
			Schemas []schemaDrift `json:"schemas"`
		}
		// Drift shows as soon as one answer is flushed; wait for all 12,
		// which are flushed in batches.
		testkit.Eventually(t, 10*time.Second, "name counted missing in all 12 answers", func() bool {
			json.Unmarshal([]byte(strangler(t, "diffs", "--schema", "--route", "shadow-read", "--json").must(t)), &drift)
			return len(drift.Schemas) == 1 && drift.Schemas[0].Answers == 12 && len(drift.Schemas[0].Drift) > 0
		})
		out := strangler(t, "diffs", "--schema").must(t)
		if !strings.Contains(out, "shadow-read GET 200: learned from 12 legacy answers") || !regexp.MustCompile(`name\s+missing\s+\d+\s+string, always\s+\(absent\)`).MatchString(out) {
			t.Errorf("diffs --schema:\n%s", out)
		}
		var openapi struct {
			OpenAPI string `json:"openapi"`
			Paths   map[string]map[string]struct {
				Responses map[string]struct {
					Content map[string]struct{ Schema struct{ Required []string } }
				}
			}
		}
		if err := json.Unmarshal([]byte(strangler(t, "routes", "schema", "shadow-read", "--format", "openapi").must(t)), &openapi); err != nil {
			t.Fatalf("the OpenAPI export is not JSON: %v", err)
		}
		ok := openapi.Paths["/sh/{id}"]["get"].Responses["200"].Content["application/json"].Schema
		if openapi.OpenAPI != "3.1.0" || !slices.Equal(ok.Required, []string{"id", "name", "status", "visits"}) {
			t.Errorf("OpenAPI %s requires %v, want id, name, status and visits", openapi.OpenAPI, ok.Required)
		}
		var schema struct {
			Schema   string `json:"$schema"`
			Required []string
		}
		if err := json.Unmarshal([]byte(strangler(t, "routes", "schema", "shadow-read", "--format", "json-schema").must(t)), &schema); err != nil || !slices.Contains(schema.Required, "name") {
			t.Errorf("the JSON Schema export: %+v, %v", schema, err)
		}
		if r := strangler(t, "routes", "schema", "legacy-read"); r.err == nil || !strings.Contains(r.err.Error(), "no schema learned for legacy-read yet") {
			t.Errorf("a route that learns nothing: %v", r.err)
		}
	})
}
