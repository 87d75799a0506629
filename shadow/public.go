package shadow

import (
	"strings"

	"strangler/domain"
	"strangler/phi"
)

// PublicPath is a diff path or noise field as it may leave the process
// (a stored sample or noise field, a log line, the admin API): each
// object key in it that is data is written {*}, as a map's member is. A
// key is data when it does not read like a field name (fieldName: a
// record number, a date, a name with a space) or is a value the request
// asked carried, as a path parameter or a query value, whatever it reads
// like (GET /patients/MRN-7Q4Z-TEST answering {"MRN-7Q4Z-TEST": …}).
// "status", "body", header fields and a path that does not parse (none a
// comparison writes; a caller that reads it refuses it) are returned as
// they are.
func PublicPath(path string, asked Asked) string {
	if path == "status" || path == "body" || strings.HasPrefix(path, "header.") {
		return path
	}
	p, err := domain.ParseFieldPath(path)
	if err != nil {
		return path
	}
	var params []phi.Param
	if asked.Target != "" {
		params = phi.Params(asked.Pattern, asked.Target)
	}
	changed := false
	for i, step := range p {
		if step.Kind == domain.StepKey && dataKey(step.Key, params) {
			p[i], changed = domain.PathStep{Kind: domain.StepAnyKey}, true
		}
	}
	if !changed {
		return path
	}
	return fieldString(p)
}

// publicDiff is a sample's diff as it may leave the process: its path
// through PublicPath, and in its two values each key that is one of the
// request's values (params) and reads like a field name (other keys are
// placeholders already: appendKey) replaced by its placeholder.
func (r *Redactor) publicDiff(d Diff, asked Asked, params []phi.Param) Diff {
	d.Path = PublicPath(d.Path, asked)
	for _, p := range params {
		if !fieldName([]byte(p.Value)) {
			continue
		}
		key, placeholder := `"`+p.Value+`":`, `"{`+r.h.Hash(p.Value)+`}":`
		d.Primary = strings.ReplaceAll(d.Primary, key, placeholder)
		d.Other = strings.ReplaceAll(d.Other, key, placeholder)
	}
	return d
}

// dataKey reports whether an object key is data: it does not read like a
// field name, or it is one of the request's values.
func dataKey(key string, params []phi.Param) bool {
	if !fieldName([]byte(key)) {
		return true
	}
	for _, p := range params {
		if strings.EqualFold(p.Value, key) {
			return true
		}
	}
	return false
}
