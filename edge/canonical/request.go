package canonical

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
)

// Policy is what the edge lets through besides the path: the methods, and
// what becomes of header names nginx would not accept. It is built from the
// configuration and never changes; a reload builds a new one.
type Policy struct {
	extra []string
	// rejectOddHeaders refuses requests with odd header names; otherwise
	// the router drops such headers or lets them pass.
	rejectOddHeaders bool
	allow            string
}

// standardMethods always pass: RFC 9110's methods and PATCH, without
// CONNECT and TRACE, which a facade never forwards (a tunnel past it; a
// reflection of credentials).
var standardMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// NewPolicy returns the policy letting the standard methods and extra
// through (the configuration refuses CONNECT and TRACE in extra) and
// refusing odd header names when rejectOddHeaders is set.
func NewPolicy(extra []string, rejectOddHeaders bool) *Policy {
	p := &Policy{rejectOddHeaders: rejectOddHeaders}
	for _, m := range extra {
		if !slices.Contains(standardMethods, m) && !slices.Contains(p.extra, m) {
			p.extra = append(p.extra, m)
		}
	}
	p.allow = strings.Join(append(slices.Clone(standardMethods), p.extra...), ", ")
	return p
}

// Allow is the value of the Allow header: every method that passes.
func (p *Policy) Allow() string { return p.allow }

// Methods are the methods that pass.
func (p *Policy) Methods() []string { return append(slices.Clone(standardMethods), p.extra...) }

// Request is what the edge learnt of a request it lets through.
type Request struct {
	// Path is the canonical path; empty for "OPTIONS *".
	Path Path
	// OptionsStar is "OPTIONS *", about the server itself, which the
	// facade answers without a backend.
	OptionsStar bool
}

// The request refusals.
var (
	errMethod        = &Refusal{Status: http.StatusMethodNotAllowed, Msg: "method not allowed"}
	errStar          = badRequest("the request-target * is only for OPTIONS")
	errTwoAuth       = badRequest("the request has more than one Authorization header")
	errHost          = badRequest("the request has more than one Host, or a Host differing from its authority")
	errOddHeaderName = badRequest("a header name holds a character other than letters, digits and - (such as _ or .)")
	// A fragment is no part of a request-target (RFC 9112 section 3.2),
	// and its readings differ: a URI parser ends the path at "#" (PUT
	// /records/4#/../5 is /records/4), a path normaliser reads it as data
	// (/records/5). Envoy refuses it too.
	errFragment = badRequest("the request-target contains a fragment (#), which is not sent in requests; encode it as %23 if it is data")
)

// Admit decides whether r may go on and, if so, returns its canonical form.
// The error is a *Refusal.
//
// Go's HTTP server has refused some requests before this runs, with a
// 400 and without calling any handler (edge.ServerAnswers makes it the
// facade's JSON refusal): an invalid
// percent-encoding or a raw control character in the request-target, an
// origin-form target not starting with "/", two Host headers on HTTP/1, a
// header name that is no RFC 9110 token (a space, parentheses), an invalid
// method token. Everything else is decided here.
func (p *Policy) Admit(r *http.Request) (Request, error) {
	if !p.methodAllowed(r.Method) {
		return Request{}, errMethod
	}
	target := r.RequestURI
	if target == "" { // a request built in this process rather than read
		target = r.URL.RequestURI()
	}
	if target == "*" {
		if r.Method != http.MethodOptions {
			return Request{}, errStar
		}
		return Request{OptionsStar: true}, nil
	}
	if strings.IndexByte(target, '#') >= 0 {
		return Request{}, errFragment
	}
	if err := p.checkHeaders(r); err != nil {
		return Request{}, err
	}
	path, err := Canonicalize(targetPath(target))
	if err != nil {
		return Request{}, err
	}
	return Request{Path: path}, nil
}

// Known reports whether m is a method logs and spans may name as sent:
// one that passes, or CONNECT or TRACE, which RFC 9110 defines and the
// facade refuses. Any other method is a token the client chose, which may
// be anything (a record number).
func (p *Policy) Known(m string) bool {
	return p.methodAllowed(m) || m == http.MethodConnect || m == http.MethodTrace
}

// methodAllowed matches method tokens case-sensitively, as RFC 9110
// section 9.1 says: "get" is not GET.
func (p *Policy) methodAllowed(m string) bool {
	return StandardMethod(m) || slices.Contains(p.extra, m)
}

// StandardMethod reports whether m is one of the methods that always
// pass (standardMethods), case-sensitively.
func StandardMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}

// checkHeaders refuses credentials or a target a backend could read two
// ways: two Authorization headers (which one does it check?), a Host header
// beside an HTTP/2 :authority that differs from it (RFC 9113 section
// 8.3.1), and, under headers_with_underscores: reject, odd header names.
func (p *Policy) checkHeaders(r *http.Request) error {
	if len(r.Header["Authorization"]) > 1 {
		return errTwoAuth
	}
	// Go's HTTP/1 server moves Host out of the header map (and refuses two);
	// its HTTP/2 server leaves a host field there beside :authority.
	if hosts := r.Header["Host"]; len(hosts) > 1 || len(hosts) == 1 && !strings.EqualFold(hosts[0], r.Host) {
		return errHost
	}
	if p.rejectOddHeaders {
		for name := range r.Header {
			if OddHeaderName(name) {
				return errOddHeaderName
			}
		}
	}
	return nil
}

// OddHeaderName reports a header name nginx would not accept: one holding
// anything but ASCII letters, digits and "-". An underscore is the case that
// matters: CGI, PHP and many frameworks map X_User and X-User to the same
// variable, so a client could pass a header the facade or a backend's proxy
// believes it removed. nginx drops such headers (underscores_in_headers off,
// ignore_invalid_headers on); so does the facade by default.
func OddHeaderName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return true
		}
	}
	return false
}

// CGIName is header name k as CGI, PHP and many frameworks read it: with
// _ for -, in canonical form (X_Forwarded_For is X-Forwarded-For to them).
// It matters for names that pass under headers_with_underscores: allow.
func CGIName(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k, "_", "-"))
}

// targetPath is the path of a request-target as sent, without the query:
// the target itself in origin form (/a/b?q), the part after the authority
// in absolute form (http://host/a/b?q), "/" when that part is empty.
func targetPath(target string) string {
	if target != "" && target[0] != '/' {
		if _, rest, ok := strings.Cut(target, "://"); ok {
			i := strings.IndexAny(rest, "/?")
			if i < 0 || rest[i] == '?' {
				return "/"
			}
			target = rest[i:]
		}
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return target
}

// methodOverrideHeaders are the headers through which frameworks let a
// POST stand for another method (Symfony, Laravel, Express's
// method-override, ASP.NET, Google's APIs).
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// MethodOverrides returns the methods r asks a backend to read it as,
// upper-cased as Symfony does (appendOverride): the values of the method-override headers,
// also spelled with _ for - when underscores says such names reach the
// backend (CGI and PHP read X_HTTP_Method_Override as
// X-HTTP-Method-Override), and of a _method query parameter (Symfony and
// Laravel read it from the query too). A _method field in a form body is
// FormMethodOverrides'.
func MethodOverrides(r *http.Request, underscores bool) []string {
	var ms []string
	add := func(vs []string) {
		for _, v := range vs {
			ms = appendOverride(ms, v)
		}
	}
	for _, h := range methodOverrideHeaders {
		add(r.Header[h])
	}
	if underscores {
		for name, vs := range r.Header {
			if strings.IndexByte(name, '_') >= 0 && slices.Contains(methodOverrideHeaders, CGIName(name)) {
				add(vs)
			}
		}
	}
	// A name spelled with an escape (%5Fmethod, _%6Dethod) is the same
	// parameter once decoded: only a query with neither "method" nor an
	// escape in it is passed over unparsed.
	if q := r.URL.RawQuery; strings.Contains(q, "method") || strings.Contains(q, "%") {
		// Go's parser drops a pair holding ";" whole, where Rack 2 and
		// Python before 3.9.2 split on it: a=1;_method=PUT is two pairs.
		v, _ := url.ParseQuery(strings.ReplaceAll(q, ";", "&"))
		for name, vs := range v {
			if methodField(name) {
				add(vs)
			}
		}
	}
	return ms
}

// maxOverride bounds the _method value read from a multipart part.
const maxOverride = 64

// IsForm reports whether a POST with Content-Type contentType ("" when it
// has none) has a form body, whose _method field Rails
// (Rack::MethodOverride), Laravel and Symfony read as the method of a
// POST. It reads the type as PHP and Rack do, up to the first ";", "," or
// space, in any case: a value mime.ParseMediaType refuses may still be a
// form to them. Rack reads more as forms than PHP does: a POST without a
// type (or with an empty one) as a urlencoded form, and a multipart/mixed
// or multipart/related body as multipart/form-data (Rack::Request's
// form_data? and parseable_data?).
func IsForm(contentType string) bool {
	ct := strings.TrimSpace(contentType)
	if ct == "" {
		return true
	}
	mt, _, _ := strings.Cut(ct, ";")
	if i := strings.IndexAny(mt, ", \t"); i >= 0 {
		mt = mt[:i]
	}
	for _, form := range formTypes {
		if strings.EqualFold(mt, form) {
			return true
		}
	}
	return false
}

// formTypes are the media types PHP or Rack parse a POST body of as a form.
var formTypes = []string{"application/x-www-form-urlencoded", "multipart/form-data", "multipart/mixed", "multipart/related"}

// appendOverride appends to ms the methods override value v may stand
// for: v upper-cased as Symfony reads it, and each of its comma-separated
// elements, as Express's method-override takes the first ("PUT, POST" is
// PUT to it; Node joins repeated headers so).
func appendOverride(ms []string, v string) []string {
	for e := range strings.SplitSeq(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			ms = append(ms, strings.ToUpper(e))
		}
	}
	return ms
}

// IsJSON reports whether a request with Content-Type contentType has a
// JSON body, as Laravel reads it (the type holds "/json" or "+json", in any
// case here): Laravel then reads the POST's method from a top-level
// _method field of that JSON, as it does from a form's.
func IsJSON(contentType string) bool {
	ct := strings.ToLower(contentType)
	return strings.Contains(ct, "/json") || strings.Contains(ct, "+json")
}

// BodyMethodOverrides returns the methods a POST's body (the whole of it)
// asks a backend to read the request as: the values of its _method
// fields, upper-cased, in a form (urlencoded or multipart, in any spelling
// PHP registers as _method; a body without a type is urlencoded) and at the top of a JSON object (every one of
// them, should the key repeat), as the type says (IsForm, IsJSON; both if
// both). A body that does not parse whole is an error: a backend parsing
// it more leniently (Rack 2 splits form fields on ";" too) might find a
// _method field where this found none.
func BodyMethodOverrides(contentType string, body []byte) ([]string, error) {
	var ms []string
	if IsJSON(contentType) {
		var err error
		if ms, err = jsonMethodOverrides(body); err != nil {
			return nil, err
		}
	}
	if !IsForm(contentType) {
		return ms, nil
	}
	add := func(name, v string) {
		if methodField(name) {
			ms = appendOverride(ms, v)
		}
	}
	// A body without a type is urlencoded to Rack.
	mt, params, badForm := "application/x-www-form-urlencoded", map[string]string(nil), errUntypedBody
	if strings.TrimSpace(contentType) != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(contentType); err != nil {
			return nil, errFormBody
		}
		badForm = errFormBody
	}
	if cs, ok := params["charset"]; ok && !asciiCharset(cs) {
		return nil, errFormCharset
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, badForm
		}
		for name, vs := range v {
			for _, s := range vs {
				add(name, s)
			}
		}
	case "multipart/form-data", "multipart/mixed", "multipart/related":
		if params["boundary"] == "" {
			return nil, errFormBody
		}
		r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := r.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, errFormBody
			}
			name, ok := partName(part.Header)
			if !ok {
				return nil, errFormBody
			}
			if name != "" {
				v, _ := io.ReadAll(io.LimitReader(part, maxOverride))
				add(name, string(v))
			}
		}
	}
	return ms, nil
}

// asciiCharset reports whether charset cs, named in a form's type, keeps
// ASCII bytes ASCII. Tomcat, and so Spring's HiddenHttpMethodFilter,
// decodes a form in the charset its type names: _method=PUT sent in
// IBM037 (EBCDIC) is those bytes to this parser and _method=PUT to them.
func asciiCharset(cs string) bool {
	switch strings.ToLower(cs) {
	case "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "windows-1252":
		return true
	}
	return false
}

// partName is the field name of a multipart part with header h as Rack
// reads it: the name parameter of its Content-Disposition whatever the
// disposition type, as PHP reads it too ("attachment; name=_method", where
// Go's FormName wants form-data), else its Content-ID. ok is false if the
// disposition does not parse.
func partName(h textproto.MIMEHeader) (name string, ok bool) {
	d := h.Get("Content-Disposition")
	if d == "" {
		return strings.TrimSpace(h.Get("Content-Id")), true
	}
	_, params, err := mime.ParseMediaType(d)
	return params["name"], err == nil
}

// jsonMethodOverrides returns the string values of the "_method" keys at
// the top of JSON object body (none if body is another JSON value). A
// body that is not one JSON value is errJSONBody.
func jsonMethodOverrides(body []byte) ([]string, error) {
	if !json.Valid(body) {
		return nil, errJSONBody
	}
	// A key reads "_method" only if the body spells it so, or escapes a
	// character of it (\u005f): a body with neither, as most are, needs no
	// decoding (a decoder's tokens cost a dual write 49 allocations and 9%
	// of its instructions).
	if !bytes.Contains(body, []byte("_method")) && bytes.IndexByte(body, '\\') < 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, nil
	}
	var ms []string
	for dec.More() {
		key, _ := dec.Token() // a string: body is valid JSON
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errJSONBody
		}
		// Laravel reads a string; it refuses an array or object, and a
		// number, boolean or null names no method. Express's
		// method-override takes an array's first element.
		var s string
		var array []json.RawMessage
		if key == "_method" && json.Unmarshal(v, &array) == nil && len(array) > 0 {
			v = array[0]
		}
		if key == "_method" && json.Unmarshal(v, &s) == nil {
			ms = appendOverride(ms, s)
		}
	}
	return ms, nil
}

// errFormBody and errJSONBody refuse a body that does not parse, and
// errFormCharset one this parser cannot read as a backend may
// (asciiCharset), on a path where a _method field in it would matter.
var (
	errFormBody    = badRequest("the form body does not parse, and a _method field in it could give the request another route's method; send a well-formed form")
	errJSONBody    = badRequest("the JSON body does not parse, and a _method field in it could give the request another route's method; send well-formed JSON")
	errFormCharset = &Refusal{Status: http.StatusUnsupportedMediaType,
		Msg: "the form names a charset other than UTF-8, US-ASCII or Latin-1, in which a backend may read a _method field that could give the request another route's method; send it in UTF-8"}
	// Rack reads a POST body without a Content-Type as a form.
	errUntypedBody = badRequest("the body has no Content-Type, so Rails reads it as a form, and it does not parse as one: a _method field in it could give the request another route's method; send a Content-Type")
)

// methodField reports whether a query or form parameter named k is
// _method to PHP (phpName), to Rack 2 (rackName) or, as an array, to qs
// (qsArray).
func methodField(k string) bool {
	return phpName(k) == "_method" || rackName(k) == "_method" || qsArray(k) == "_method"
}

// qsArray is the name of the array qs (Express's query parser and its
// extended form parser) puts a parameter named k in, k itself if none:
// _method[] and _method[0] to _method[20] make the array _method, whose
// first element Express's method-override takes as the method (found by
// the red team: a form's _method[]=PUT reached legacy alone past a
// dual-write PUT route).
func qsArray(k string) string {
	name, i, ok := strings.Cut(k, "[")
	if !ok || !strings.HasSuffix(i, "]") {
		return k
	}
	// qs takes an index as written, at most its arrayLimit of 20.
	switch i = i[:len(i)-1]; {
	case i == "", i == "0",
		len(i) == 1 && '1' <= i[0] && i[0] <= '9',
		len(i) == 2 && (i[0] == '1' && '0' <= i[1] && i[1] <= '9' || i == "20"):
		return name
	}
	return k
}

// rackName is the name Rack 2 gives a parameter named k when it holds a
// plain value (Utils.normalize_params; Express's qs reads "[_method]" so
// too): leading "[" and "]" dropped, and the "]"s that alone follow the
// name ([_method] and ]_method] are _method). k itself if anything else
// follows, which makes an array or a hash.
func rackName(k string) string {
	k = strings.TrimLeft(k, "[]")
	if i := strings.IndexAny(k, "[]"); i >= 0 && strings.Trim(k[i:], "]") == "" {
		return k[:i]
	}
	return k
}

// phpName is query parameter name k as PHP registers it, and so as
// Laravel and Symfony read it: leading spaces dropped, the rest ended at a
// NUL (PHP reads the name as a C string: _method%00x is _method), then
// '.', ' ' and an unclosed '[' turned into '_' (.method and [method are
// _method).
func phpName(k string) string {
	k = strings.TrimLeft(k, " ")
	if i := strings.IndexByte(k, 0); i >= 0 {
		k = k[:i]
	}
	if !strings.ContainsAny(k, ". [") {
		return k
	}
	b := []byte(k)
	for i, c := range b {
		if c == '.' || c == ' ' || c == '[' && !strings.Contains(k[i:], "]") {
			b[i] = '_'
		}
	}
	return string(b)
}

// StandsFor returns the method the backends read a write with method,
// header h, target (path and query) and body as: a POST stands for the one
// method its overrides name (MethodOverrides, BodyMethodOverrides), and
// for "" when they name several (a backend may read any of them); any
// other request, and a POST without an override, for its own method. A
// body that does not parse, or in a Content-Encoding, names no method
// here: on a dual-write route, whose journal keeps this, the router
// refuses such a form or JSON body before it is journaled.
//
// Dual writes are ordered, and their answers read, by it: a POST standing
// for a PUT or a DELETE (an HTML form's _method, X-HTTP-Method-Override)
// changes the resource at its path, as that method does. Taken for a
// create, it waited behind no earlier write to the path, and the
// secondary got a DELETE before the PUT the primary had applied first
// (found by the red team).
func StandsFor(method string, h http.Header, target string, body []byte) string {
	if method != http.MethodPost {
		return method
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return method
	}
	// Only the headers that reach a backend are given: those spelled
	// with _ count too.
	ms := MethodOverrides(&http.Request{Header: h, URL: u}, true)
	// A field named _method holds "method", or an escape (%5F, \u005f)
	// standing for part of it: any other body is not parsed.
	if len(body) > 0 && h.Get("Content-Encoding") == "" &&
		(bytes.Contains(body, []byte("method")) || bytes.IndexByte(body, '%') >= 0 || bytes.Contains(body, []byte(`\u`))) {
		bms, _ := BodyMethodOverrides(h.Get("Content-Type"), body)
		ms = append(ms, bms...)
	}
	for _, m := range ms {
		if m != ms[0] {
			return ""
		}
	}
	if len(ms) > 0 {
		return ms[0]
	}
	return method
}
