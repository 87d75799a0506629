package router

import (
	"net/http"
	"strings"
	"testing"
)

// TestABodyIsReadForItsMethodOnlyWhereAnOverrideWouldBypassSomething: a
// JSON POST on a legacy route, whose path no other route serves (the
// default route, for PUT, sends to legacy too), reaches legacy as sent,
// unread, even when it is not JSON at all; beside a dual-write PUT route
// on the same path, the same body is read and refused, as its _method
// could stand for that PUT.
func TestABodyIsReadForItsMethodOnlyWhereAnOverrideWouldBypassSomething(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, "legacy"))
	modern := newBackend(t, answer(http.StatusCreated, "modern"))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: notes, match: "POST /notes", mode: legacy}
  - {name: create-record, match: "POST /records/{id}", mode: legacy}
  - {name: put-record, match: "PUT /records/{id}", mode: modern}
`)
	post := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, f.URL+path, strings.NewReader(`not json {"_method":"PUT"`))
		req.Header.Set("Content-Type", "application/json")
		return f.do(t, req)
	}
	if resp, body := post("/notes"); resp.StatusCode != http.StatusCreated || body != "legacy" {
		t.Errorf("a JSON POST where no other route differs: %d %q, want legacy's 201", resp.StatusCode, body)
	}
	if got := string(legacy.last(t).Body); got != `not json {"_method":"PUT"` {
		t.Errorf("legacy received %q, want the body as sent", got)
	}
	if resp, body := post("/records/4"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "JSON") {
		t.Errorf("the same body where PUT goes to modern: %d %q, want 400 saying the JSON does not parse", resp.StatusCode, body)
	}
	if n := modern.hits(); n != 0 {
		t.Errorf("modern received %d requests, want none", n)
	}
}
