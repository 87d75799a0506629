package shadow

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// JSONSchemaDialect is the JSON Schema version the exports are written
// in; OpenAPI 3.1 uses it too.
const JSONSchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// JSONSchema writes the schema as a standalone JSON Schema document that
// legacy's answers satisfy: each place's types, an object's properties
// and those legacy always sent (in at least MinEvidence objects) as
// required, a map's values as additionalProperties, an array's elements
// as items, and the values of keep_values paths as an enum.
func (s *Schema) JSONSchema() map[string]any {
	doc := s.Root.jsonSchema()
	doc["$schema"] = JSONSchemaDialect
	doc["title"] = fmt.Sprintf("%s: %s answered %d", s.Route, s.Method, s.Status)
	doc["description"] = s.description()
	return doc
}

// description says what the schema was learned from.
func (s *Schema) description() string {
	d := fmt.Sprintf("Learned by strangler from %d legacy answers; a field is required when legacy sent it in every one of at least %d objects.", s.Answers, MinEvidence)
	if s.Truncated {
		d += fmt.Sprintf(" Truncated: legacy's answers had more than the %d places a schema keeps.", maxShapes)
	}
	return d
}

func (sh *Shape) jsonSchema() map[string]any {
	out := map[string]any{}
	var types []string
	for t, n := range sh.Types {
		if n > 0 && !(jsonType(t) == typeInteger && sh.Types[typeNumber] > 0) {
			types = append(types, typeNames[t])
		}
	}
	switch len(types) {
	case 0:
		return out // nothing seen: anything goes
	case 1:
		out["type"] = types[0]
	default:
		out["type"] = types
	}
	if sh.Types[typeObject] > 0 {
		if sh.Map != nil {
			out["additionalProperties"] = sh.Map.jsonSchema()
		} else if len(sh.Properties) > 0 {
			props := map[string]any{}
			var required []string
			for k, p := range sh.Properties {
				ps := p.jsonSchema()
				ps["description"] = fmt.Sprintf("present in %s of %d objects", percent(p.Types.total(), sh.objects()), sh.objects())
				props[k] = ps
				if sh.alwaysSends(p) {
					required = append(required, k)
				}
			}
			out["properties"] = props
			if len(required) > 0 {
				slices.Sort(required)
				out["required"] = required
			}
		}
	}
	if sh.Types[typeArray] > 0 && sh.Items != nil {
		out["items"] = sh.Items.jsonSchema()
	}
	if len(sh.Values) > 0 && !sh.Many && sh.Types[typeObject]+sh.Types[typeArray] == 0 {
		enum := make([]json.RawMessage, 0, len(sh.Values)+1)
		for _, v := range slices.Sorted(maps.Keys(sh.Values)) {
			enum = append(enum, json.RawMessage(v))
		}
		if sh.Types[typeNull] > 0 {
			enum = append(enum, json.RawMessage("null"))
		}
		out["enum"] = enum
	}
	return out
}

// percent writes n of total as a percentage: "97%", "100%".
func percent(n, total int64) string {
	if total == 0 {
		return "0%"
	}
	p := float64(min(n, total)) * 100 / float64(total)
	if p > 99 && n < total {
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

// Operation names the request a route's schemas answer, for OpenAPI.
type Operation struct {
	// Route names the operation (operationId).
	Route string
	// Path is the OpenAPI path template (/patients/{id}); Params are its
	// parameters, each with the pattern it must match ("" for any).
	Path   string
	Params []PathParam
}

// PathParam is one path parameter of an Operation.
type PathParam struct {
	Name, Pattern string
}

// OpenAPI writes an OpenAPI 3.1 document with one path, the route's, and
// under each method its schemas learned as one response per status.
func OpenAPI(op Operation, schemas []*Schema) map[string]any {
	var answers int64
	methods := map[string]any{}
	for _, s := range schemas {
		answers += s.Answers
		m := strings.ToLower(s.Method)
		o, _ := methods[m].(map[string]any)
		if o == nil {
			o = map[string]any{
				"operationId": op.Route + "-" + m,
				"summary":     fmt.Sprintf("%s %s as legacy answers it", s.Method, op.Path),
				"responses":   map[string]any{},
			}
			if len(op.Params) > 0 {
				var params []any
				for _, p := range op.Params {
					schema := map[string]any{"type": "string"}
					if p.Pattern != "" {
						schema["pattern"] = "^(?:" + p.Pattern + ")$"
					}
					params = append(params, map[string]any{"name": p.Name, "in": "path", "required": true, "schema": schema})
				}
				o["parameters"] = params
			}
			methods[m] = o
		}
		schema := s.Root.jsonSchema()
		o["responses"].(map[string]any)[strconv.Itoa(s.Status)] = map[string]any{
			"description": s.description(),
			"content":     map[string]any{"application/json": map[string]any{"schema": schema}},
		}
	}
	return map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": JSONSchemaDialect,
		"info": map[string]any{
			"title":       "strangler: " + op.Route,
			"version":     strconv.FormatInt(answers, 10),
			"description": "The JSON answers legacy gave on this route, as strangler learned them in shadow and fallback modes: a contract for modern. Field names and types only; no value is kept except those of compare.keep_values paths.",
		},
		"paths": map[string]any{op.Path: methods},
	}
}
