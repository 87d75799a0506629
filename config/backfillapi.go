package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"
)

// BackfillAPI is the modern service a backfill writes through when its
// tables have target_api: the rows go through the service's own rules
// instead of into its database behind its back.
type BackfillAPI struct {
	// URL is the service's base URL; each request's path is appended.
	URL string `yaml:"url"`
	// Timeout bounds one request; a request that runs out is retried.
	Timeout Duration `yaml:"timeout,omitempty"`
	// Headers are sent with every request (an Authorization token, say);
	// config print hides their values.
	Headers map[string]Secret `yaml:"headers,omitempty"`
}

// TargetAPI sends each source row of a table to the modern service as one
// request instead of copying it into a table.
type TargetAPI struct {
	// Method is PUT or POST.
	Method string `yaml:"method"`
	// Path is the request's path; a source column in braces, {PatientSerNum},
	// is replaced by the row's value, path-escaped.
	Path string `yaml:"path"`
	// Body maps each field of the JSON body to where its value comes from:
	// a source column, or {from, transform, default, lookup}. A lookup
	// reads another source table; without from it matches the row's key,
	// and its where narrows the rows it reads to one value.
	Body map[string]Column `yaml:"body"`
	// GroupBy is a source column whose rows are sent one at a time, in key
	// order (a hospital's patients, a patient's visits); empty means every
	// row is its own group.
	GroupBy string `yaml:"group_by,omitempty"`
	// Concurrency is how many groups have a request in flight at once.
	Concurrency int `yaml:"concurrency,omitempty"`
	// Rate caps requests per second to the service, retries included; 0
	// means no cap.
	Rate int `yaml:"rate,omitempty"`
	// Retry says how often and how patiently a request answered 408, 429
	// or 5xx, or not answered in time, is tried again.
	Retry Retry `yaml:"retry,omitempty"`
	// StopAfterUnanswered is how many rows in a row, every attempt of
	// each unanswered (no connection, a timeout, or a gateway's 502, 503
	// or 504), stop the table and the run: the service is gone, and the
	// rows left are left unsent for a re-run rather than each failed
	// after its retries. An answer about a row (a 422, a 500) is the
	// service's, and starts the count again. As many rows in a row
	// answered the same redirect, 403, 404, 405 or 415 stop it too: the
	// URL, path, method or credentials are wrong for the table.
	StopAfterUnanswered int `yaml:"stop_after_unanswered,omitempty"`
}

// Retry is a retry policy: attempts in all, and exponential backoff with
// jitter between them, from Backoff doubling up to MaxBackoff.
type Retry struct {
	MaxAttempts int      `yaml:"max_attempts,omitempty"`
	Backoff     Duration `yaml:"backoff,omitempty"`
	MaxBackoff  Duration `yaml:"max_backoff,omitempty"`
}

// APIStep is one request to the modern service before or after a
// backfill: disable its workflows and e-mails, enable them again.
type APIStep struct {
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
	// Body, if set, is sent as it is (JSON).
	Body string `yaml:"body,omitempty"`
}

// WaitUntil polls the modern service after the rows are sent until a
// field of a JSON answer has a value: its asynchronous jobs are done.
type WaitUntil struct {
	Path string `yaml:"path"`
	// Field is a top-level field of the answer; Equals its awaited value,
	// compared as JSON text (0, "done", true), a number by its value.
	Field   string   `yaml:"field"`
	Equals  string   `yaml:"equals"`
	Every   Duration `yaml:"every,omitempty"`
	Timeout Duration `yaml:"timeout,omitempty"`
}

// Defaults of the API target.
const (
	DefaultAPITimeout      = 10 * time.Second
	DefaultAPIConcurrency  = 4
	DefaultRetryAttempts   = 5
	DefaultRetryBackoff    = 500 * time.Millisecond
	DefaultRetryMaxBackoff = 30 * time.Second
	// Ten rows of five unanswered attempts: at the default backoff, at
	// least half a minute of silence with one group in flight, some
	// fifteen seconds with four.
	DefaultStopAfterUnanswered = 10
	DefaultWaitEvery           = 5 * time.Second
	DefaultWaitTimeout         = 30 * time.Minute
)

// APITables reports whether any table is sent through the API, and
// whether any is copied into the target database.
func (b *Backfill) APITables() (api, db bool) {
	for _, t := range b.Tables {
		if t.TargetAPI != nil {
			api = true
		} else {
			db = true
		}
	}
	return api, db
}

func (b *Backfill) applyAPIDefaults() {
	if b.API != nil && b.API.Timeout == 0 {
		b.API.Timeout = Duration(DefaultAPITimeout)
	}
	if w := b.WaitUntil; w != nil {
		if w.Every == 0 {
			w.Every = Duration(DefaultWaitEvery)
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(DefaultWaitTimeout)
		}
	}
	for i := range b.Tables {
		a := b.Tables[i].TargetAPI
		if a == nil {
			continue
		}
		if a.Concurrency == 0 {
			a.Concurrency = DefaultAPIConcurrency
		}
		if a.Retry.MaxAttempts == 0 {
			a.Retry.MaxAttempts = DefaultRetryAttempts
		}
		if a.Retry.Backoff == 0 {
			a.Retry.Backoff = Duration(DefaultRetryBackoff)
		}
		if a.Retry.MaxBackoff == 0 {
			a.Retry.MaxBackoff = Duration(DefaultRetryMaxBackoff)
		}
		if a.StopAfterUnanswered == 0 {
			a.StopAfterUnanswered = DefaultStopAfterUnanswered
		}
	}
}

// BodyFields are the body's field names in a stable order.
func (a *TargetAPI) BodyFields() []string {
	names := make([]string, 0, len(a.Body))
	for name := range a.Body {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// PathColumns are the source columns the path template names, in order.
func (a *TargetAPI) PathColumns() []string {
	cols, _ := parsePathTemplate(a.Path)
	return cols
}

// parsePathTemplate returns the columns in braces of a path template, or
// what is wrong with it.
func parsePathTemplate(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("want a path starting with /, like /patients/{PatientSerNum}; got %q", p)
	}
	var cols []string
	for rest := p; ; {
		open := strings.IndexByte(rest, '{')
		if close := strings.IndexByte(rest, '}'); close >= 0 && (open < 0 || close < open) {
			return nil, fmt.Errorf("unopened } in %q", p)
		}
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed { in %q", p)
		}
		name := rest[open+1 : open+end]
		if !isIdent(name) {
			return nil, fmt.Errorf("{%s} in %q is not a source column name", name, p)
		}
		cols = append(cols, name)
		rest = rest[open+end+1:]
	}
	return cols, nil
}

func (d *checker) validateAPI(b *Backfill) {
	usesAPI, _ := b.APITables()
	if b.API == nil {
		if usesAPI {
			d.errorAt("backfill.api", "is required when a table has target_api: the modern service, like {url: https://modern.example.org}")
		}
		return
	}
	if u, err := url.Parse(b.API.URL); err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		d.errorAt("backfill.api.url", "want an http:// or https:// URL, got %q", shownURL(b.API.URL))
	}
	if b.API.Timeout < 0 {
		d.errorAt("backfill.api.timeout", "want a positive duration")
	}
	// In file order, by line: map order would report a different one of
	// two names each run.
	names := slices.SortedFunc(maps.Keys(b.API.Headers), func(a, b string) int {
		return cmp.Compare(d.Pos["backfill.api.headers."+a].Line, d.Pos["backfill.api.headers."+b].Line)
	})
	first := map[string]string{}
	for _, name := range names {
		at := "backfill.api.headers." + name
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		switch other, dup := first[canonical]; {
		case !isToken(name):
			d.errorAt(at, "invalid header name %q", name)
		case dup:
			d.errorAt(at, "repeats the header %s (line %d): header names are the same in any case, so which value a request carries would be left to chance",
				other, d.Pos["backfill.api.headers."+other].Line)
		default:
			first[canonical] = name
		}
		if strings.Contains(string(b.API.Headers[name]), "\n") {
			// The client refuses to send it (white space at its ends it
			// sends trimmed, as a server would read it anyway).
			d.errorAt(at, "holds a line break, which an HTTP header cannot carry: every backfill request would fail")
		}
	}
	for _, field := range []string{"before", "after"} {
		steps := b.Before
		if field == "after" {
			steps = b.After
		}
		for i, s := range steps {
			at := fmt.Sprintf("backfill.%s[%d]", field, i)
			d.checkMethod(at+".method", s.Method, "GET", "POST", "PUT", "PATCH", "DELETE")
			if !strings.HasPrefix(s.Path, "/") {
				d.errorAt(at+".path", "want a path starting with /, got %q", s.Path)
			}
		}
	}
	if w := b.WaitUntil; w != nil {
		if !strings.HasPrefix(w.Path, "/") {
			d.errorAt("backfill.wait_until.path", "want a path starting with /, got %q", w.Path)
		}
		if w.Field == "" {
			d.errorAt("backfill.wait_until.field", "is required: the field of the answer to watch, like pending")
		}
		if w.Equals == "" {
			d.errorAt("backfill.wait_until.equals", "is required: the value that means done, like 0")
		}
		if w.Every <= 0 || w.Timeout <= 0 {
			d.errorAt("backfill.wait_until", "every and timeout must be positive durations")
		}
	}
}

func (d *checker) checkMethod(path, m string, allowed ...string) {
	if !slices.Contains(allowed, m) {
		d.errorAt(path, "want %s; got %q", strings.Join(allowed, " or "), m)
	}
}

// checkWhere checks a body lookup's where: column names, each once in
// any case, since MySQL's column names are (Code: RVH and code: MGH
// would match no row, and send every row's field as null).
func (d *checker) checkWhere(path string, where map[string]string) {
	cols := slices.SortedFunc(maps.Keys(where), func(a, b string) int {
		pa, pb := d.Pos[path+"."+a], d.Pos[path+"."+b]
		return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Column, pb.Column))
	})
	first := map[string]string{}
	for _, col := range cols {
		at := path + "." + col
		d.checkIdent(at, col, false)
		if other, dup := first[strings.ToLower(col)]; dup {
			d.errorAt(at, "repeats the column %s (line %d): column names are the same in any case", other, d.Pos[path+"."+other].Line)
		}
		first[strings.ToLower(col)] = col
	}
}

// validateTargetAPI checks a table sent through the API; at names its
// fields.
func (d *checker) validateTargetAPI(t *BackfillTable, at func(string) string) {
	a := t.TargetAPI
	for _, f := range []struct {
		name string
		set  bool
	}{{"to", t.To != ""}, {"target_key", t.TargetKey != ""}, {"columns", len(t.Columns) > 0}} {
		if f.set {
			d.errorAt(at(f.name), "a table with target_api is sent to the API; give the request's body instead of %s", f.name)
		}
	}
	d.checkIdent(at("key"), t.Key, false)
	d.checkMethod(at("target_api.method"), a.Method, "PUT", "POST")
	if _, err := parsePathTemplate(a.Path); err != nil {
		d.errorAt(at("target_api.path"), "%v", err)
	}
	if len(a.Body) == 0 {
		d.errorAt(at("target_api.body"), "maps no field")
	}
	for _, name := range a.BodyFields() {
		path := at("target_api.body." + name)
		c := a.Body[name]
		if !isIdent(name) {
			d.errorAt(path, "invalid field name %q; "+identRule, name)
		}
		switch {
		case c.From == "" && c.Default == nil && c.Lookup == nil:
			d.errorAt(path, "give a source column (from), a lookup or a default")
		case c.From != "":
			d.checkIdent(path+".from", c.From, false)
		}
		if c.Lossy {
			d.errorAt(path+".lossy", "applies to database targets only; the API decides what it accepts")
		}
		if l := c.Lookup; l != nil {
			d.checkIdent(path+".lookup.table", l.Table, true)
			d.checkIdent(path+".lookup.key", l.Key, false)
			d.checkIdent(path+".lookup.column", l.Column, false)
			d.checkWhere(path+".lookup.where", l.Where)
		}
	}
	if a.GroupBy != "" {
		d.checkIdent(at("target_api.group_by"), a.GroupBy, false)
	}
	if a.Concurrency < 1 || a.Concurrency > 256 {
		d.errorAt(at("target_api.concurrency"), "want a number of groups from 1 to 256, got %d", a.Concurrency)
	}
	if a.Rate < 0 {
		d.errorAt(at("target_api.rate"), "want requests per second, 0 for no limit; got %d", a.Rate)
	}
	r := a.Retry
	switch {
	case r.MaxAttempts < 1 || r.MaxAttempts > 100:
		d.errorAt(at("target_api.retry.max_attempts"), "want a number from 1 to 100, got %d", r.MaxAttempts)
	case r.Backoff <= 0 || r.MaxBackoff < r.Backoff:
		d.errorAt(at("target_api.retry"), "want a positive backoff no longer than max_backoff")
	}
	if a.StopAfterUnanswered < 1 || a.StopAfterUnanswered > 1_000_000 {
		d.errorAt(at("target_api.stop_after_unanswered"), "want a number of rows from 1 to 1000000, got %d", a.StopAfterUnanswered)
	}
	for j, f := range t.Redact {
		if _, ok := a.Body[f]; !ok {
			d.errorAt(fmt.Sprintf("%s[%d]", at("redact"), j), "%q is not a field of the body", f)
		}
	}
}
