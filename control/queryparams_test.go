package control

import (
	"net/http"
	"strings"
	"testing"

	"strangler/config"
	"strangler/domain"
	"strangler/shadow"
)

// TestAnUnknownSchemaMethodIsABadRequest: ?method=BREW asks for a method
// no route can answer. It answered 404 "no schema learned for get-patient
// yet", as if learning were what was missing; it is 400, naming the
// parameter. A method a route can answer that learned nothing is still
// 404, and one a schema was learned for is found whatever its case.
func TestAnUnknownSchemaMethodIsABadRequest(t *testing.T) {
	p := newPlane(t)
	reg := shadow.NewSchemas()
	srv := schemaAdmin(t, p, reg)
	rules, err := shadow.NewSchemaRules(config.Compare{})
	if err != nil {
		t.Fatal(err)
	}
	answer := shadow.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":1}`)}
	reg.Route("get-patient").Learn(shadow.SchemaKey{Method: "GET", Status: 200}, shadow.Asked{}, answer, rules)
	for _, tc := range []struct {
		query     string
		status    int
		parameter string
	}{
		{"method=BREW", 400, "method"},
		{"method=GET%0A", 400, "method"},
		{"format=yaml", 400, "format"},
		{"status=999", 400, "status"},
		{"method=PUT", 404, ""},
		{"method=get", 200, ""},
	} {
		var body map[string]any
		code := getJSON(t, srv, "/admin/routes/get-patient/schema?"+tc.query, &body)
		if code != tc.status || tc.parameter != "" && body["parameter"] != tc.parameter {
			t.Errorf("?%s: got %d %v, want %d naming the parameter %q", tc.query, code, body, tc.status, tc.parameter)
		}
	}
}

// TestARepeatedQueryParameterIsRefused: every admin API query parameter
// takes one value. A repeat was read as its first value, silently, where
// a proxy or cache in front may read the last: ?route=a&route=b listed
// a's audit entries, ?body=0&body=1 answered without the body. Each is
// refused, 400, naming the parameter, on reads and changes alike.
func TestARepeatedQueryParameterIsRefused(t *testing.T) {
	p := newPlane(t)
	p.flip(t, "get-patient", domain.ModeFallback, nil)
	for _, tc := range []struct{ method, path, parameter string }{
		{"GET", "/admin/audit?route=get-patient&route=create-patient", "route"},
		{"GET", "/admin/audit?limit=5&limit=500", "limit"},
		{"GET", "/admin/changes?state=all&state=pending", "state"},
		{"GET", "/admin/repairs?state=dead&route=x&state=unknown", "state"},
		{"GET", "/admin/diffs?noise=0&noise=1", "noise"},
		{"GET", "/admin/routes/get-patient/schema?method=GET&method=POST", "method"},
		{"PATCH", "/admin/routes/get-patient?x=1&x=2", "x"},
	} {
		var resp *http.Response
		var body map[string]any
		if tc.method == "PATCH" {
			resp, body = p.call(t, "PATCH", tc.path, aliceToken, `{"mode": "modern", "reason": "test"}`, "If-Match", p.version(t, "get-patient"))
		} else {
			resp, body = p.call(t, tc.method, tc.path, aliceToken, "")
		}
		if msg, _ := body["error"].(string); resp.StatusCode != http.StatusBadRequest || body["parameter"] != tc.parameter || !strings.Contains(msg, "give it once") {
			t.Errorf("%s %s: got %d %v, want 400 naming %q", tc.method, tc.path, resp.StatusCode, body, tc.parameter)
		}
	}
	if got := p.mode("get-patient"); got != "fallback" {
		t.Errorf("get-patient is %s after the refused PATCH, want fallback", got)
	}
	if resp, body := p.call(t, "GET", "/admin/audit?route=get-patient&limit=5", aliceToken, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("each parameter once: got %d %v, want 200", resp.StatusCode, body)
	}
}
