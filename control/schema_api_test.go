package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"strangler/config"
	"strangler/shadow"
	"strangler/store"
)

// storedSchemas is the SchemaSource serve wires: the registry the router
// learns into, over the plane's real store.
type storedSchemas struct {
	s  *shadow.Schemas
	st *store.Store
}

func (s storedSchemas) Stored(ctx context.Context, route string) ([]*shadow.Schema, error) {
	return s.s.Stored(ctx, s.st, route)
}

// schemaAdmin serves the plane's admin API with schemas learned into reg.
func schemaAdmin(t *testing.T, p *plane, reg *shadow.Schemas) *httptest.Server {
	t.Helper()
	tokens := &Tokens{}
	tokens.Set([]config.Token{{Name: "alice", Token: aliceToken, Role: config.RoleViewer}})
	readiness := &Readiness{}
	readiness.Ready()
	srv := httptest.NewServer(NewAdmin(AdminDeps{
		Gatherer: p.reg, Readiness: readiness, Flags: p.flags, Tokens: tokens, Reports: p.reports,
		Audit: p.store, Repairs: p.store, Sessions: p.store, Samples: shadow.NewMemorySamples(10), Noise: func(string) []string { return nil },
		Live: p.counters, Log: p.log, Now: p.clock.Now, Schemas: storedSchemas{reg, p.store},
	}))
	t.Cleanup(srv.Close)
	return srv
}

func getJSON(t *testing.T, srv *httptest.Server, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %d %s is not JSON: %v", path, resp.StatusCode, b, err)
	}
	return resp.StatusCode
}

func TestLearnedSchemasAreExportedAndTheirDriftListed(t *testing.T) {
	p := newPlane(t)
	reg := shadow.NewSchemas()
	srv := schemaAdmin(t, p, reg)
	rules, err := shadow.NewSchemaRules(config.Compare{KeepValues: []string{"status"}})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(status int, body string) shadow.Response {
		return shadow.Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
	}
	l := reg.Route("get-patient")
	if code := getJSON(t, srv, "/admin/routes/get-patient/schema", &map[string]any{}); code != 404 {
		t.Errorf("before any answer: %d, want 404", code)
	}
	for i := range 12 {
		l.Learn(shadow.SchemaKey{Method: "GET", Status: 200}, shadow.Asked{}, answer(200, fmt.Sprintf(`{"id":%d,"name":"Zelda Quimbyfrost","status":"active","visits":%d}`, i, i)), rules)
		l.Learn(shadow.SchemaKey{Method: "GET", Status: 404}, shadow.Asked{}, answer(404, `{"error":"no such patient"}`), rules)
	}
	l.Check(shadow.SchemaKey{Method: "GET", Status: 200}, answer(200, `{"id":1,"status":"active","visits":"2"}`), rules)

	t.Run("as OpenAPI 3.1, parsed back", func(t *testing.T) {
		var doc struct {
			OpenAPI string `json:"openapi"`
			Paths   map[string]map[string]struct {
				Parameters []struct{ Name, In string }
				Responses  map[string]struct {
					Content map[string]struct {
						Schema struct {
							Type       string
							Required   []string
							Properties map[string]struct {
								Type string
								Enum []any
							}
						}
					}
				}
			}
		}
		if code := getJSON(t, srv, "/admin/routes/get-patient/schema?format=openapi", &doc); code != 200 {
			t.Fatalf("got %d", code)
		}
		get := doc.Paths["/patients/{id}"]["get"]
		if doc.OpenAPI != "3.1.0" || len(get.Parameters) != 1 || get.Parameters[0].Name != "id" || len(get.Responses) != 2 {
			t.Fatalf("document %+v, want GET /patients/{id} with its id and two responses", doc)
		}
		ok := get.Responses["200"].Content["application/json"].Schema
		if ok.Type != "object" || strings.Join(ok.Required, ",") != "id,name,status,visits" || ok.Properties["visits"].Type != "integer" {
			t.Errorf("200 schema %+v, want an object requiring id, name, status, visits (an integer)", ok)
		}
		if enum := ok.Properties["status"].Enum; len(enum) != 1 || enum[0] != "active" {
			t.Errorf("status enum %v, want [active]: a keep_values path", enum)
		}
	})
	t.Run("as JSON Schema, the 2xx by default", func(t *testing.T) {
		var doc map[string]any
		if code := getJSON(t, srv, "/admin/routes/get-patient/schema?format=json-schema", &doc); code != 200 {
			t.Fatalf("got %d", code)
		}
		if doc["$schema"] != shadow.JSONSchemaDialect || doc["title"] != "get-patient: GET answered 200" {
			t.Errorf("got %v", doc)
		}
		getJSON(t, srv, "/admin/routes/get-patient/schema?format=json-schema&status=404", &doc)
		if doc["title"] != "get-patient: GET answered 404" {
			t.Errorf("with status 404: %v", doc["title"])
		}
	})
	t.Run("the drift of modern's answers", func(t *testing.T) {
		var out struct {
			Schemas []struct {
				Route            string
				Status           int
				Answers, Checked int64
				Drift            []shadow.DriftReport
			}
		}
		if code := getJSON(t, srv, "/admin/diffs?schema=1&route=get-patient", &out); code != 200 || len(out.Schemas) != 2 {
			t.Fatalf("got %d %+v", code, out)
		}
		s := out.Schemas[0]
		if s.Status != 200 || s.Answers != 12 || s.Checked != 1 || len(s.Drift) != 2 {
			t.Fatalf("200: %+v, want 12 answers, 1 checked, 2 drifts", s)
		}
		if d := s.Drift[0]; d.Path != "name" || d.Kind != "missing" {
			t.Errorf("drift %+v", s.Drift)
		}
	})
	for _, tc := range []struct{ path, says string }{
		{"/admin/routes/get-patient/schema?format=yaml", `unknown format "yaml"`},
		{"/admin/routes/get-patient/schema?status=999", "status must be an HTTP status"},
		{"/admin/routes/nope/schema", "no such route"},
		{"/admin/routes/get-patient/schema?status=500", "no schema learned for get-patient yet"},
	} {
		t.Run(tc.path+" is refused", func(t *testing.T) {
			var body map[string]any
			getJSON(t, srv, tc.path, &body)
			if msg, _ := body["error"].(string); !strings.Contains(msg, tc.says) {
				t.Errorf("got %v, want it to say %q", body, tc.says)
			}
		})
	}
}
