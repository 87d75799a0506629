package shadow

import (
	"net/textproto"
	"strings"

	"strangler/config"
	"strangler/domain"
	"strangler/phi"
)

// Redactor decides what a mismatch sample shows of the values it holds:
// a value only as its keyed hash (phi.Hasher), unless its path is in
// compare.keep_values; and of the request's headers, only those a replay
// needs. It is safe for concurrent use.
type Redactor struct {
	h *phi.Hasher
	// redacted are canonical names of headers whose values are always
	// hashed; kept those whose values samples show (keep_values).
	redacted, kept map[string]bool
	// sent are the canonical names of the request headers a curl command
	// keeps: Content-Type, Accept and compare.headers.
	sent map[string]bool
	// paths holds the redacted and kept JSON field paths, for request
	// bodies.
	paths *pathNode
}

// alwaysRedacted are the request and response headers that carry
// credentials; their values are hashed wherever they appear.
var alwaysRedacted = [...]string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization"}

// newRedactor builds the Redactor of a compare section whose field paths
// are already parsed into rules (redact and keep_values; others are
// ignored). A redact path of a single key also names a header.
func newRedactor(h *phi.Hasher, c config.Compare, rules []pathRule) *Redactor {
	r := &Redactor{h: h, redacted: map[string]bool{}, kept: map[string]bool{}, sent: map[string]bool{}}
	for _, name := range alwaysRedacted {
		r.redacted[name] = true
	}
	var own []pathRule
	for _, rule := range rules {
		if rule.flags&deepFlags == 0 {
			continue
		}
		own = append(own, rule)
		if p := rule.path; rule.flags == flagRedact && len(p) == 1 && p[0].Kind == domain.StepKey {
			r.redacted[textproto.CanonicalMIMEHeaderKey(p[0].Key)] = true
		}
	}
	r.paths = buildPaths(own)
	for _, v := range c.KeepValues {
		if name, ok := domain.KeptHeader(v); ok {
			r.kept[textproto.CanonicalMIMEHeaderKey(name)] = true
		}
	}
	for _, name := range append([]string{"Content-Type", "Accept"}, c.Headers...) {
		if name = textproto.CanonicalMIMEHeaderKey(name); !neverKept(name) {
			r.sent[name] = true
		}
	}
	return r
}

// neverKept reports whether a request header is left out of every curl
// command whatever compare.headers says: it identifies the client (its
// address, its software), carries a credential, or repeats the URL.
func neverKept(name string) bool {
	n := strings.ToLower(name)
	switch {
	case n == "user-agent", n == "forwarded", n == "via", n == "from", n == "referer", n == "origin",
		strings.HasPrefix(n, "x-forwarded-"), strings.HasSuffix(n, "-ip"), n == "x-real-ip",
		strings.HasPrefix(n, "x-original-"), strings.HasPrefix(n, "x-rewrite-"):
		return true
	}
	for _, word := range []string{"auth", "cookie", "token", "secret", "password", "session", "key", "signature", "credential"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

// Hasher is the keyed hash the Redactor's placeholders use.
func (r *Redactor) Hasher() *phi.Hasher { return r.h }

// appendPlaceholder appends what stands for node i of t: "{h:…}" in quotes
// for a string, hashed by its text so that a value hashes alike in a
// body, a header and a path; {h:…} bare for anything else, hashed by its
// compact JSON. Replacing the placeholder with the value restores the
// JSON.
func (r *Redactor) appendPlaceholder(dst []byte, t *tree, i int32) []byte {
	if n := &t.nodes[i]; n.kind == kindString {
		dst = append(dst, `"{`...)
		dst = r.h.AppendHash(dst, appendUnescaped(nil, t.str(i)))
		return append(dst, `}"`...)
	}
	dst = append(dst, '{')
	dst = r.h.AppendHash(dst, appendJSON(nil, t, i, nil, nil, 0))
	return append(dst, '}')
}

// appendKey appends the key of member c of t as a rendered value shows
// it: as sent when it reads like a field name (phi.FieldName), is under a
// kept path, or there is no Redactor (rendering for a hash); else, in
// the quotes, the placeholder of its text, as a value's: a record number
// or a date keying a map is data.
func (r *Redactor) appendKey(dst []byte, t *tree, c int32, kept bool) []byte {
	key := t.key(c)
	if r == nil || kept || !t.nodes[c].keyEsc && phi.FieldName(key) {
		return append(dst, key...)
	}
	dst = append(dst, '{')
	dst = r.h.AppendHash(dst, appendUnescaped(nil, key))
	return append(dst, '}')
}

// clearHeader reports whether a curl command shows a kept request
// header's value in clear: Content-Type and Accept, which describe the
// API's formats, and headers keep_values names; never one that carries a
// credential.
func (r *Redactor) clearHeader(name string) bool {
	return !r.redacted[name] && (name == "Content-Type" || name == "Accept" || r.kept[name])
}

// headerValue renders a response header's values for a header diff: in
// clear (as a JSON string) when keep_values names the header and it
// carries no credential, else as a placeholder; "" when it is absent.
func (r *Redactor) headerValue(name string, values []string) string {
	if values == nil {
		return ""
	}
	v := strings.Join(values, ", ")
	if r.kept[name] && !r.redacted[name] {
		return string(appendJSONString(nil, v))
	}
	return `"{` + r.h.Hash(v) + `}"`
}
