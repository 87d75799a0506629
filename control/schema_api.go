package control

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"strangler/edge/canonical"
	"strangler/shadow"
)

// SchemaSource is the response schemas shadow and fallback routes learned
// from legacy's answers, as every replica flushed them.
type SchemaSource interface {
	// Stored returns route's schemas ("" for every route), by route,
	// method and status, this replica's latest learning included.
	Stored(ctx context.Context, route string) ([]*shadow.Schema, error)
}

// schemas reads the stored schemas of route.
func (a *admin) schemas(r *http.Request, route string) ([]*shadow.Schema, error) {
	if a.Schemas == nil {
		return nil, apiError(http.StatusServiceUnavailable, "this facade keeps no learned schemas")
	}
	ctx, cancel := timeout(r)
	defer cancel()
	list, err := a.Schemas.Stored(ctx, route)
	if err != nil && len(list) == 0 {
		a.log.Warn("reading the learned schemas failed", "route", route, "error", err)
		return nil, ErrUnavailable
	}
	return list, nil
}

// routeSchema exports a route's learned schemas: format openapi (the
// default, every method and status) or json-schema (one of them, chosen
// by method and status, or the 2xx legacy answered most).
func (a *admin) routeSchema(w http.ResponseWriter, r *http.Request, _ string) error {
	name := r.PathValue("name")
	rf, ok := a.Flags.Get(name)
	if !ok {
		return ErrNoRoute
	}
	q := r.URL.Query()
	format := q.Get("format")
	switch format {
	case "", "openapi", "json-schema":
	default:
		return badParam("format", "unknown format %q; want openapi or json-schema", format)
	}
	list, err := a.schemas(r, name)
	if err != nil {
		return err
	}
	method := q.Get("method")
	if method != "" && !a.knownMethod(method, list) {
		return badParam("method", "unknown method %q; want one a route can answer: %s", method, strings.Join(a.methods(), ", "))
	}
	list, err = selectSchemas(list, method, q.Get("status"))
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return apiError(http.StatusNotFound, "no schema learned for %s yet: routes learn one in shadow and fallback modes from legacy's JSON answers", name)
	}
	if format == "json-schema" {
		writeJSON(w, http.StatusOK, mostAnswered(list).JSONSchema())
		return nil
	}
	path, params := rf.Route.Match.Template()
	op := shadow.Operation{Route: name, Path: path}
	for _, p := range params {
		op.Params = append(op.Params, shadow.PathParam{Name: p.Name, Pattern: p.Regexp})
	}
	writeJSON(w, http.StatusOK, shadow.OpenAPI(op, list))
	return nil
}

// methods are the methods a route can answer: those the public
// listener lets through, RFC 9110's and the file's allow_methods.
func (a *admin) methods() []string {
	var extra []string
	for _, m := range a.Flags.file.Load().AllowMethods {
		extra = append(extra, string(m))
	}
	return canonical.NewPolicy(extra, false).Methods()
}

// knownMethod reports whether a schema export may be asked for method: one
// a route can answer, or one a schema was learned for (under a file
// before), case aside as selectSchemas compares them. Any other, such as
// BREW, answered 404 as if none had been learned yet, where the method
// asked for was the mistake.
func (a *admin) knownMethod(method string, learned []*shadow.Schema) bool {
	for _, m := range a.methods() {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return slices.ContainsFunc(learned, func(s *shadow.Schema) bool { return strings.EqualFold(s.Method, method) })
}

// selectSchemas keeps the schemas of method and status, each if given.
func selectSchemas(list []*shadow.Schema, method, status string) ([]*shadow.Schema, error) {
	code := 0
	if status != "" {
		n, err := strconv.Atoi(status)
		if err != nil || n < 100 || n > 599 {
			return nil, badParam("status", "status must be an HTTP status from 100 to 599")
		}
		code = n
	}
	var out []*shadow.Schema
	for _, s := range list {
		if (method == "" || strings.EqualFold(s.Method, method)) && (code == 0 || s.Status == code) {
			out = append(out, s)
		}
	}
	return out, nil
}

// mostAnswered is the schema a JSON Schema export without a status
// stands for: the 2xx legacy answered most, else the most answered.
func mostAnswered(list []*shadow.Schema) *shadow.Schema {
	best := list[0]
	score := func(s *shadow.Schema) int64 {
		if s.Status >= 200 && s.Status < 300 {
			return s.Answers + 1<<40
		}
		return s.Answers
	}
	for _, s := range list[1:] {
		if score(s) > score(best) {
			best = s
		}
	}
	return best
}

// schemaDriftJSON is a schema's drift as GET /admin/diffs?schema=1 shows
// it.
type schemaDriftJSON struct {
	Route     string               `json:"route"`
	Method    string               `json:"method"`
	Status    int                  `json:"status"`
	Answers   int64                `json:"answers"`
	Checked   int64                `json:"checked"`
	Truncated bool                 `json:"truncated,omitempty"`
	Drift     []shadow.DriftReport `json:"drift"`
}

// schemaDiffs lists, per learned schema, how modern's answers departed
// from it.
func (a *admin) schemaDiffs(w http.ResponseWriter, r *http.Request, route string) error {
	if route != "" {
		if _, ok := a.Flags.Get(route); !ok {
			return fmt.Errorf("%w: %s", ErrNoRoute, route)
		}
	}
	list, err := a.schemas(r, route)
	if err != nil {
		return err
	}
	out := make([]schemaDriftJSON, 0, len(list))
	for _, s := range list {
		d := s.Drifts()
		if d == nil {
			d = []shadow.DriftReport{}
		}
		out = append(out, schemaDriftJSON{Route: s.Route, Method: s.Method, Status: s.Status, Answers: s.Answers, Checked: s.Checked, Truncated: s.Truncated, Drift: d})
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemas": out})
	return nil
}
