package router

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
	"strangler/shadow"
	"strangler/store"
)

// TestAFallbackReplaysByTheMethodTheBackendsRead: on a fallback route for
// every method of /records/{id}, a POST standing for another method
// (X-HTTP-Method-Override, _method in its query or form) is replayed to
// legacy after modern answered 404, or not, by the rule of the method the
// backends read, not of POST: a POST standing for a DELETE on a route
// whose fallback_methods list POST deleted the record at legacy too once
// modern had deleted it. Modern taking the request and hanging up
// without an answer (fallback_on: [error]) is a fallback by the same
// rule: modern may have applied it.
func TestAFallbackReplaysByTheMethodTheBackendsRead(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	hangUp := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close() // read whole, never answered
	}
	triggers := []struct {
		name, fallbackOn string
		modern           http.HandlerFunc
		notReplayed      int // what the client gets then
	}{
		{"after a 404", "", answer(404, "not migrated"), 404},
		{"after modern hung up", "fallback_on: [error], ", hangUp, http.StatusBadGateway},
	}
	cases := []struct {
		name, listed, target, body string
		h                          http.Header
		replayed                   bool
	}{
		{"a POST standing for a DELETE, POST listed, is not replayed", "POST", "/records/4", ``, http.Header{"X-Http-Method-Override": {"DELETE"}}, false},
		{"a POST whose form says DELETE, POST listed, is not replayed", "POST", "/records/4", `_method=delete`, form, false},
		{"a POST whose overrides disagree, POST listed, is not replayed", "POST", "/records/4?_method=PUT", ``, http.Header{"X-Http-Method-Override": {"DELETE"}}, false},
		{"a gzip form, POST listed, is not replayed", "POST", "/records/4", `gzip bytes`, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": {"gzip"}}, false},
		{"a plain POST, POST listed, is replayed", "POST", "/records/4", `a=1`, form, true},
		{"a POST with a JSON type and no body, POST listed, is replayed", "POST", "/records/4", ``, http.Header{"Content-Type": {"application/json"}}, true},
		{"a POST standing for a PUT, PUT listed, is replayed with its body", "PUT", "/records/4?_method=PUT", `{"v":1}`, http.Header{"Content-Type": {"application/json"}}, true},
		{"a POST standing for a PUT its form contradicts, PUT listed, is not replayed", "PUT", "/records/4?_method=PUT", `_method=DELETE`, form, false},
	}
	for _, tr := range triggers {
		for _, c := range cases {
			t.Run(tr.name+": "+c.name, func(t *testing.T) {
				legacy := newBackend(t, answer(200, "legacy"))
				modern := newBackend(t, tr.modern)
				f := newFacade(t, legacy.URL, modern.URL, "", fmt.Sprintf(`
  - {name: records, match: "/records/{id}", mode: fallback, %sfallback_methods: [%s]}
`, tr.fallbackOn, c.listed))
				req, _ := http.NewRequest(http.MethodPost, f.URL+c.target, strings.NewReader(c.body))
				for k, v := range c.h {
					req.Header[k] = v
				}
				resp, body := f.do(t, req)
				if modern.hits() != 1 {
					t.Fatalf("modern got %d requests, want 1", modern.hits())
				}
				switch {
				case c.replayed && (resp.StatusCode != 200 || body != "legacy" || string(legacy.last(t).Body) != c.body):
					t.Errorf("got %d %q, want legacy's answer to the client's body", resp.StatusCode, body)
				case !c.replayed && (resp.StatusCode != tr.notReplayed || legacy.hits() != 0):
					t.Errorf("got %d %q with %d requests at legacy, want %d and none: legacy would apply what modern may have applied", resp.StatusCode, body, legacy.hits(), tr.notReplayed)
				}
			})
		}
	}
}

// TestSchemasLearnAPostUnderTheMethodItStandsFor: a shadow route learns
// legacy's answer to a POST standing for a DELETE as a DELETE's, the
// method its backends answered; learned as a POST's, a route's creates
// and deletes made one shape, and its drift false.
func TestSchemasLearnAPostUnderTheMethodItStandsFor(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"deleted":true}`))
	modern := newBackend(t, jsonAnswer(`{"deleted":true}`))
	f, st := newSchemaFacade(t, legacy.URL, modern.URL, `
  - {name: records, match: "/records/{id}", mode: shadow, shadow_writes: true}
`, nil)
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/records/4", strings.NewReader(`_method=DELETE`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := f.do(t, req); resp.StatusCode != 200 {
		t.Fatalf("got %d, want legacy's 200", resp.StatusCode)
	}
	learnedOnlyDelete(t, f, st)
}

// TestAFallbackLearnsAPostUnderTheMethodItStandsFor: a fallback route
// learns legacy's answer to a POST standing for a DELETE as a DELETE's,
// as a shadow route does: the fallback replayed it as one, and legacy
// answered it as one.
func TestAFallbackLearnsAPostUnderTheMethodItStandsFor(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"deleted":true}`))
	modern := newBackend(t, answer(404, `{"error":"not migrated"}`))
	f, st := newSchemaFacade(t, legacy.URL, modern.URL, `
  - {name: records, match: "/records/{id}", mode: fallback, fallback_methods: [DELETE]}
`, nil)
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/records/4", nil)
	req.Header.Set("X-HTTP-Method-Override", "DELETE")
	if resp, body := f.do(t, req); resp.StatusCode != 200 || body != `{"deleted":true}` {
		t.Fatalf("got %d %q, want legacy's answer after the fallback", resp.StatusCode, body)
	}
	learnedOnlyDelete(t, f, st)
}

// TestAPostStandingForSeveralMethodsTeachesNothing: a POST whose
// overrides name two methods (a backend may read either) is learned as
// no method's answer; before, learned as one of method "", it made a
// schema no request has, which the export listed.
func TestAPostStandingForSeveralMethodsTeachesNothing(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"ok":true}`))
	modern := newBackend(t, jsonAnswer(`{"ok":true}`))
	f, st := newSchemaFacade(t, legacy.URL, modern.URL, `
  - {name: records, match: "/records/{id}", mode: shadow, shadow_writes: true}
`, nil)
	for _, target := range []string{"/records/4?_method=PUT", "/records/4"} {
		req, _ := http.NewRequest(http.MethodPost, f.URL+target, nil)
		if target != "/records/4" {
			req.Header.Set("X-HTTP-Method-Override", "DELETE")
		}
		if resp, _ := f.do(t, req); resp.StatusCode != 200 {
			t.Fatalf("POST %s: got %d, want legacy's 200", target, resp.StatusCode)
		}
	}
	// Both copies are learned from before they are compared.
	testkit.Eventually(t, 10*time.Second, "both copies compared", func() bool {
		return f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "records", "result": "match"}) == 2
	})
	schemas, err := f.router.deps.Schemas.Stored(t.Context(), st, "records")
	if err != nil {
		t.Fatal(err)
	}
	var keys []shadow.SchemaKey
	for _, s := range schemas {
		keys = append(keys, s.Key())
	}
	if len(keys) != 1 || keys[0] != (shadow.SchemaKey{Method: http.MethodPost, Status: 200}) {
		t.Errorf("schemas learned for %v, want POST 200's alone", keys)
	}
}

// learnedOnlyDelete checks that route records learned DELETE's answer,
// and no other method's.
func learnedOnlyDelete(t *testing.T, f *facade, st *store.Store) {
	t.Helper()
	learned(t, f, st, "records", shadow.SchemaKey{Method: http.MethodDelete, Status: 200}, 1)
	schemas, err := f.router.deps.Schemas.Stored(t.Context(), st, "records")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schemas {
		if s.Key().Method != http.MethodDelete {
			t.Errorf("a schema learned for %s, want only DELETE's", s.Key())
		}
	}
}
