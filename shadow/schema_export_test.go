package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"strangler/config"
)

// validate checks doc against the JSON Schema keywords the exports use
// (type, properties, required, additionalProperties, items, enum) and
// returns the first violation, "" if none: a JSON Schema validator small
// enough to read, for the test to check what a real one would.
func validate(schema map[string]any, doc any, path string) string {
	if types, ok := schema["type"]; ok {
		var list []any
		switch v := types.(type) {
		case string:
			list = []any{v}
		case []any:
			list = v
		}
		if !slices.ContainsFunc(list, func(t any) bool { return hasType(doc, t.(string)) }) {
			return fmt.Sprintf("%s: %v is not %v", path, doc, types)
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(v any) bool { return reflect.DeepEqual(v, doc) }) {
		return fmt.Sprintf("%s: %v is not one of %v", path, doc, enum)
	}
	switch v := doc.(type) {
	case map[string]any:
		for _, r := range list(schema["required"]) {
			if _, ok := v[r.(string)]; !ok {
				return fmt.Sprintf("%s: %s is required", path, r)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		extra, _ := schema["additionalProperties"].(map[string]any)
		for k, val := range v {
			if p, ok := props[k].(map[string]any); ok {
				if msg := validate(p, val, path+"."+k); msg != "" {
					return msg
				}
			} else if extra != nil {
				if msg := validate(extra, val, path+"{*}"); msg != "" {
					return msg
				}
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range v {
				if msg := validate(items, e, fmt.Sprintf("%s[%d]", path, i)); msg != "" {
					return msg
				}
			}
		}
	}
	return ""
}

func list(v any) []any { l, _ := v.([]any); return l }

func hasType(v any, t string) bool {
	switch v := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case map[string]any:
		return t == "object"
	case []any:
		return t == "array"
	case float64:
		return t == "number" || t == "integer" && v == math.Trunc(v)
	}
	return false
}

func TestTheJSONSchemaExportAcceptsLegacyAndNamesModernsMissingField(t *testing.T) {
	rules := schemaRules(t, config.Compare{KeepValues: []string{"status"}, Maps: []string{"contacts"}})
	l := NewSchemas().Route("get-patient")
	key := SchemaKey{"GET", 200}
	for i := range 12 {
		l.Learn(key, Asked{}, patientAnswer(i), rules)
	}
	// Through JSON and back, as a CI job would read it.
	b, err := json.Marshal(l.known[key].JSONSchema())
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("the export is not JSON: %v", err)
	}
	if schema["$schema"] != JSONSchemaDialect || !strings.Contains(schema["description"].(string), "12 legacy answers") {
		t.Errorf("$schema %v, description %v", schema["$schema"], schema["description"])
	}
	for _, v := range []string{"Zelda", "Quimbyfrost", "MRN77", "1961", "Springfield"} {
		if bytes.Contains(b, []byte(v)) {
			t.Errorf("the export holds %q", v)
		}
	}
	for i := range 12 {
		var doc any
		json.Unmarshal(patientAnswer(i).Body, &doc)
		if msg := validate(schema, doc, "body"); msg != "" {
			t.Errorf("legacy's answer %d does not validate: %s", i, msg)
		}
	}
	for _, tc := range []struct {
		name, body, says string
	}{
		{"a missing field", `{"id":1,"dob":"x","status":"active","visits":1,"weight":1.5,"tags":[],"address":{"city":"x"},"visits_by_mrn":{},"contacts":{}}`, "body: name is required"},
		{"another type", `{"id":"1","name":"x","dob":"x","status":"active","visits":1,"weight":1.5,"tags":[],"address":{"city":"x"},"visits_by_mrn":{},"contacts":{}}`, "body.id: 1 is not integer"},
		{"a map value of another shape", `{"id":1,"name":"x","dob":"x","status":"active","visits":1,"weight":1.5,"tags":[],"address":{"city":"x"},"visits_by_mrn":{"MRN1":{"count":"x"}},"contacts":{}}`, "body.visits_by_mrn{*}.count: x is not integer"},
		{"a status legacy never sent", `{"id":1,"name":"x","dob":"x","status":"deceased","visits":1,"weight":1.5,"tags":[],"address":{"city":"x"},"visits_by_mrn":{},"contacts":{}}`, "body.status: deceased is not one of [active inactive]"},
	} {
		t.Run("modern's answer with "+tc.name+" fails", func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(tc.body), &doc); err != nil {
				t.Fatal(err)
			}
			if msg := validate(schema, doc, "body"); msg != tc.says {
				t.Errorf("got %q, want %q", msg, tc.says)
			}
		})
	}
}

func TestTheOpenAPIExportHasTheRoutesPathAndEachStatus(t *testing.T) {
	rules := schemaRules(t, config.Compare{})
	l := NewSchemas().Route("get-patient")
	for i := range 3 {
		l.Learn(SchemaKey{"GET", 200}, Asked{}, patientAnswer(i), rules)
		l.Learn(SchemaKey{"GET", 404}, Asked{}, jsonAnswer(404, `{"error":"no such patient"}`), rules)
	}
	op := Operation{Route: "get-patient", Path: "/patients/{id}", Params: []PathParam{{Name: "id", Pattern: "[0-9]+"}}}
	b, err := json.Marshal(OpenAPI(op, []*Schema{l.known[SchemaKey{"GET", 200}], l.known[SchemaKey{"GET", 404}]}))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct{ Title, Version string }
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name, In string
				Required bool
				Schema   map[string]any
			}
			Responses map[string]struct {
				Description string
				Content     map[string]struct{ Schema map[string]any }
			}
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	get := doc.Paths["/patients/{id}"]["get"]
	if doc.OpenAPI != "3.1.0" || get.OperationID != "get-patient-get" || doc.Info.Version != "6" {
		t.Fatalf("openapi %q, operation %q, version %q in %s", doc.OpenAPI, get.OperationID, doc.Info.Version, b)
	}
	if p := get.Parameters; len(p) != 1 || p[0].Name != "id" || p[0].In != "path" || !p[0].Required || p[0].Schema["pattern"] != "^(?:[0-9]+)$" {
		t.Errorf("parameters %+v, want the required path parameter id with its pattern", p)
	}
	if s := get.Responses["404"].Content["application/json"].Schema; s["type"] != "object" || s["properties"] == nil {
		t.Errorf("the 404's schema %v", s)
	}
	if s := get.Responses["200"].Content["application/json"].Schema; s["required"] != nil {
		t.Errorf("with 3 answers the 200 requires %v; fewer than MinEvidence require nothing", s["required"])
	}
}
