package router

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestABodyIsReadForItsMethodOnlyWhereAnOverrideWouldBypassSomething: a
// JSON POST on a legacy route, whose path no other route serves (the
// default route, for PUT, sends to legacy too), reaches legacy as sent,
// unread, even when it is not JSON at all; beside a dual-write PUT route
// on the same path, the same body is read and refused, as its _method
// could stand for that PUT.
func TestABodyIsReadForItsMethodOnlyWhereAnOverrideWouldBypassSomething(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, "legacy"))
	modern := newBackend(t, answer(http.StatusCreated, "modern"))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: notes, match: "POST /notes", mode: legacy}
  - {name: create-record, match: "POST /records/{id}", mode: legacy}
  - {name: put-record, match: "PUT /records/{id}", mode: modern}
`)
	post := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, f.URL+path, strings.NewReader(`not json {"_method":"PUT"`))
		req.Header.Set("Content-Type", "application/json")
		return f.do(t, req)
	}
	if resp, body := post("/notes"); resp.StatusCode != http.StatusCreated || body != "legacy" {
		t.Errorf("a JSON POST where no other route differs: %d %q, want legacy's 201", resp.StatusCode, body)
	}
	if got := string(legacy.last(t).Body); got != `not json {"_method":"PUT"` {
		t.Errorf("legacy received %q, want the body as sent", got)
	}
	if resp, body := post("/records/4"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "JSON") {
		t.Errorf("the same body where PUT goes to modern: %d %q, want 400 saying the JSON does not parse", resp.StatusCode, body)
	}
	if n := modern.hits(); n != 0 {
		t.Errorf("modern received %d requests, want none", n)
	}
}

// TestABodyRackReadsAsAFormIsReadForItsMethod: Rack (Rails, Sinatra)
// reads a POST body without a Content-Type as a urlencoded form, a
// multipart/mixed or multipart/related one as multipart/form-data, a
// part's name from any Content-Disposition or its Content-ID, and (Rack
// 2) a field [_method] as _method; a _method
// field in any of them made the POST a PUT to legacy. Beside a dual-write
// PUT route on its path, such a POST is refused (400, naming the method
// override or the missing type) before any backend sees a byte, and
// nothing is journaled; without a _method field it passes whole.
//
// Found by hostile5: POST /records/4 with the body _method=PUT and no
// Content-Type reached legacy alone, 201, past the dual-write route.
func TestABodyRackReadsAsAFormIsReadForItsMethod(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, "legacy"))
	modern := newBackend(t, answer(http.StatusCreated, "modern"))
	f := newDualWriteFacade(t, legacy.URL, modern.URL, time.Second,
		`  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}`)
	part := func(head string) string {
		return "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--b\r\n" + head + "\r\n\r\nPUT\r\n--b--\r\n"
	}
	for _, c := range []struct {
		name, header, body, refusal string // refusal: a word the error holds; "" if served
	}{
		{"no Content-Type", "", "name=Ada&_method=PUT", "method"},
		{"an empty Content-Type", "Content-Type: \r\n", "_method=put", "method"},
		{"no Content-Type, a body that is no form", "", "name=Ada&_method=%zzPUT", "Content-Type"},
		{"multipart/mixed", "Content-Type: multipart/mixed; boundary=b\r\n", part(`Content-Disposition: form-data; name="_method"`), "method"},
		{"multipart/related", "Content-Type: multipart/related; boundary=b\r\n", part(`Content-Disposition: form-data; name="_method"`), "method"},
		{"a part named in an attachment", "Content-Type: multipart/form-data; boundary=b\r\n", part(`Content-Disposition: attachment; name="_method"`), "method"},
		{"a part named by its Content-ID", "Content-Type: multipart/form-data; boundary=b\r\n", part("Content-ID: _method"), "method"},
		{"a field name in brackets", "Content-Type: application/x-www-form-urlencoded\r\n", "name=Ada&[_method]=PUT", "method"},
		{"no Content-Type and no _method", "", "name=Ada", ""},
		{"multipart/mixed without _method", "Content-Type: multipart/mixed; boundary=b\r\n", part(`Content-Disposition: form-data; name="title"`), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := legacy.hits()
			_, r := rawRequest(t, f.facade, "POST /records/4 HTTP/1.1\r\nHost: x\r\n"+c.header+
				"Content-Length: "+strconv.Itoa(len(c.body))+"\r\n\r\n"+c.body)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if c.refusal == "" {
				if resp.StatusCode != http.StatusCreated || legacy.hits() != before+1 || string(legacy.last(t).Body) != c.body {
					t.Fatalf("status %d, legacy received %d requests; want legacy's 201 and the body whole", resp.StatusCode, legacy.hits()-before)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if msg := jsonError(t, resp); !strings.Contains(msg, c.refusal) {
				t.Errorf("error %q does not name %s", msg, c.refusal)
			}
			if n := legacy.hits() - before; n != 0 {
				t.Errorf("legacy received %d requests, want none", n)
			}
		})
	}
	if n := modern.hits(); n != 0 {
		t.Errorf("modern received %d requests, want none", n)
	}
	if w := f.writes(t); len(w) != 0 {
		t.Errorf("%d writes journaled, want none", len(w))
	}
}

// TestAMethodOverrideNameEndedByANULIsRead: PHP reads a parameter's name
// as a C string, so Laravel and Symfony read _method%00x as _method, in
// the query as in a form. Beside a dual-write PUT route on its path, a
// POST carrying one is refused (400) before any backend sees a byte.
//
// Found by hostile5: POST /records/4?_method%00x=PUT reached legacy
// alone, 201, past the dual-write route.
func TestAMethodOverrideNameEndedByANULIsRead(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, "legacy"))
	f := newDualWriteFacade(t, legacy.URL, legacy.URL, time.Second,
		`  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}`)
	for _, c := range []struct{ name, target, header, body string }{
		{"in the query", "/records/4?_method%00x=PUT", "", ""},
		{"in a form", "/records/4", "Content-Type: application/x-www-form-urlencoded\r\n", "name=Ada&_method%00=PUT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, r := rawRequest(t, f.facade, "POST "+c.target+" HTTP/1.1\r\nHost: x\r\n"+c.header+
				"Content-Length: "+strconv.Itoa(len(c.body))+"\r\n\r\n"+c.body)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if msg := jsonError(t, resp); !strings.Contains(msg, "method") {
				t.Errorf("error %q does not name the method override", msg)
			}
		})
	}
	if n := legacy.hits(); n != 0 {
		t.Errorf("legacy received %d requests, want none", n)
	}
}

// TestAContentTypeSpelledWithUnderscoreCountsAsASecondOne: under
// headers_with_underscores: allow, Content_Type reaches the backend, where
// PHP (Symfony's ServerBag) may read it as the Content-Type: "text/plain"
// beside "Content_Type: application/json" and a JSON body {"_method":"PUT"}
// was a PUT to Laravel, past a PUT route to modern (found by the red team).
// Where a body's _method matters it is refused as two Content-Types are;
// elsewhere it passes.
func TestAContentTypeSpelledWithUnderscoreCountsAsASecondOne(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, "legacy"))
	f := newFacade(t, legacy.URL, legacy.URL, "headers_with_underscores: allow", `
  - {name: put-record, match: "PUT /records/{id}", mode: modern, percent: 100}
  - {name: notes, match: "POST /notes/{id}", mode: legacy}
`)
	const body = `{"_method":"PUT"}`
	send := func(path string) *http.Response {
		t.Helper()
		_, r := rawRequest(t, f, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent_Type: application/json\r\n"+
			"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := send("/records/4")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if msg := jsonError(t, resp); !strings.Contains(msg, "Content_Type") {
		t.Errorf("error %q does not name Content_Type", msg)
	}
	if n := legacy.hits(); n != 0 {
		t.Errorf("a backend received %d requests, want none", n)
	}
	if resp := send("/notes/4"); resp.StatusCode != http.StatusCreated {
		t.Errorf("where no other route waits: status %d, want legacy's 201", resp.StatusCode)
	}
}

// TestAFormInACharsetOtherThanASCIIIsNotReadAsAnother: Tomcat decodes a
// form in the charset its type names, so Spring's HiddenHttpMethodFilter
// read _method=PUT sent in IBM037 (EBCDIC) as a PUT, while the facade saw
// other bytes (found by the red team: 201 from legacy past a PUT route to
// modern). Where a body's _method matters such a form is refused (415)
// before any backend sees a byte; a UTF-8 one is read as before.
func TestAFormInACharsetOtherThanASCIIIsNotReadAsAnother(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, "legacy"))
	f := newFacade(t, legacy.URL, legacy.URL, "",
		`  - {name: put-record, match: "PUT /records/{id}", mode: modern, percent: 100}`)
	for _, c := range []struct {
		charset, body string
		want          int
	}{
		{"IBM037", "%6D%94%85%A3%88%96%84=%D7%E4%E3", http.StatusUnsupportedMediaType},
		{"utf-8", "name=Ada", http.StatusCreated},
	} {
		_, r := rawRequest(t, f, "POST /records/4 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded; charset="+c.charset+"\r\n"+
			"Content-Length: "+strconv.Itoa(len(c.body))+"\r\n\r\n"+c.body)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.want {
			t.Fatalf("%s: status %d, want %d", c.charset, resp.StatusCode, c.want)
		}
		if c.want == http.StatusUnsupportedMediaType {
			if msg := jsonError(t, resp); !strings.Contains(msg, "charset") {
				t.Errorf("error %q does not name the charset", msg)
			}
			if n := legacy.hits(); n != 0 {
				t.Errorf("a backend received %d requests, want none", n)
			}
		}
	}
}

// TestADualWriteBodyWhoseMethodTheFacadeCannotReadIsRefused: on a
// dual-write route serving every method of its path, the journal orders a
// POST, and reads the secondary's answer, by the method the backends read
// it as. A JSON or form body in gzip or deflate (which Express's body
// parsers undo before method-override reads _method), a form split on ";"
// (which Rack 2 reads as two fields), JSON that is not one value, or two
// Content-Types hid a _method=DELETE from the facade: it journaled a
// create, which waits behind no write to the item, while the backends
// deleted it. Each is refused (415 for the encoded bodies, 400 for the
// others) before any backend sees a byte, and nothing is journaled; a
// plain JSON create and a gzip body of another type pass.
func TestADualWriteBodyWhoseMethodTheFacadeCannotReadIsRefused(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusOK, "legacy"))
	modern := newBackend(t, answer(http.StatusOK, "modern"))
	f := newDualWriteFacade(t, legacy.URL, modern.URL, time.Second,
		`  - {name: items, match: "/items/{id}", mode: dual-write}`)
	var gz, fl bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"_method":"DELETE"}`))
	zw.Close()
	fw, _ := flate.NewWriter(&fl, flate.DefaultCompression)
	fw.Write([]byte(`_method=DELETE`))
	fw.Close()
	for _, c := range []struct {
		name, header, body string
		want               int
	}{
		{"gzip JSON", "Content-Type: application/json\r\nContent-Encoding: gzip\r\n", gz.String(), http.StatusUnsupportedMediaType},
		{"deflate form", "Content-Type: application/x-www-form-urlencoded\r\nContent-Encoding: deflate\r\n", fl.String(), http.StatusUnsupportedMediaType},
		{"untyped gzip", "Content-Encoding: gzip\r\n", gz.String(), http.StatusUnsupportedMediaType},
		{"a form split on ;", "Content-Type: application/x-www-form-urlencoded\r\n", "name=Ada;_method=DELETE", http.StatusBadRequest},
		{"JSON that is not one value", "Content-Type: application/json\r\n", `{"_method":"DELETE"} {}`, http.StatusBadRequest},
		{"two Content-Types", "Content-Type: application/octet-stream\r\nContent-Type: application/x-www-form-urlencoded\r\n", "_method=DELETE", http.StatusBadRequest},
		{"a JSON create", "Content-Type: application/json\r\n", `{"name":"Ada"}`, http.StatusOK},
		{"a gzip image", "Content-Type: image/png\r\nContent-Encoding: gzip\r\n", gz.String(), http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := f.refusedUnsent(t, legacy, "POST /items/7 HTTP/1.1\r\nHost: x\r\n"+c.header+
				"Content-Length: "+strconv.Itoa(len(c.body))+"\r\n\r\n"+c.body, c.want)
			if c.want != http.StatusOK && !strings.Contains(msg, "_method") && !strings.Contains(msg, "Content-Type") {
				t.Errorf("error %q does not say why", msg)
			}
		})
	}
}
