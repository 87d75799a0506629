package shadow

import (
	"strings"

	"strangler/domain"
	"strangler/phi"
)

// PublicPath is a diff path or noise field as it may leave the process
// (a stored sample or noise field, a log line, the admin API): each
// object key in it that is data is written {*}, as a map's member is. A
// key is data when it does not read like a field name (phi.FieldName: a
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
// request's values (params), however spelt in case, replaced by its
// placeholder (other keys that are data are placeholders already:
// appendKey).
func (r *Redactor) publicDiff(d Diff, asked Asked, params []phi.Param) Diff {
	d.Path = PublicPath(d.Path, asked)
	if len(params) > 0 {
		d.Primary, d.Other = r.hideAskedKeys(d.Primary, params), r.hideAskedKeys(d.Other, params)
	}
	return d
}

// hideAskedKeys returns v, a diff's value or a request body to replay
// (compact JSON as appendJSON writes it, perhaps cut short), with each
// object key askedKey finds among params replaced, in its quotes, by the
// placeholder of its text.
func (r *Redactor) hideAskedKeys(v string, params []phi.Param) string {
	var b strings.Builder
	done := 0
	for i := 0; i < len(v); i++ {
		if v[i] != '"' {
			continue
		}
		// A string from i to its closing quote; a key when a colon follows.
		end := i + 1
		for end < len(v) && v[end] != '"' {
			if v[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(v) {
			break
		}
		if key := v[i+1 : end]; end+1 < len(v) && v[end+1] == ':' && askedKey(key, params) {
			b.WriteString(v[done : i+1])
			b.WriteString("{" + r.h.Hash(key) + "}")
			done = end
		}
		i = end
	}
	if done == 0 {
		return v
	}
	b.WriteString(v[done:])
	return b.String()
}

// dataKey reports whether an object key is data: it does not read like a
// field name, or it is one of the request's values.
func dataKey(key string, params []phi.Param) bool {
	return !phi.FieldName(key) || askedKey(key, params)
}

// askedKey reports whether an object key is one of the request's values
// (a path parameter or query value), compared without regard to case: an
// API that answers GET /patients/mrn-7q4z-test keyed by MRN-7Q4Z-TEST
// keys it by the same patient.
func askedKey(key string, params []phi.Param) bool {
	for _, p := range params {
		if strings.EqualFold(p.Value, key) {
			return true
		}
	}
	return false
}
