package router

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestADualWriteBodyTheBackendsCouldReadAsDifferentJSONIsRefused: a
// write's JSON body that is not I-JSON (a member named twice, a string
// not Unicode) was sent to the primary and journaled for the secondary
// whole: legacy kept one value (Go and PHP keep the last name, MariaDB's
// JSON_EXTRACT the first) and modern another, or refused the write
// (PostgreSQL's jsonb refuses "\ud800") after legacy had applied it. Each
// is refused 400 before any backend sees a byte, nothing journaled,
// whatever the method and whether or not the type says JSON; a JSON body
// in gzip, which the facade cannot look into, 415. JSON behind a byte
// order mark or in UTF-16, which Python's json.loads reads whatever the
// type says and Go refuses, was sent to the primary untyped; it is
// refused 400 too, as is NDJSON (or JSON and then text) with a name
// twice in one of its values, which passed as not one JSON value though
// NDJSON readers read each line and Go's json.Decoder the first. Typed
// JSON whose charset is not UTF-8 (Go keeps "é", Spring "Ã©" under
// charset=latin1) answers 415, on whichever Content-Type line it is. "\u0000", which Go and MariaDB keep and
// PostgreSQL refuses (jsonb and text alike), is refused 400. A multipart part typed JSON is held to
// the same rule (Spring's @RequestPart reads it as JSON); it was not
// looked at. Well-formed JSON, NDJSON, a file part holding JSON, an
// empty body (in gzip too), a form and a gzip image pass.
func TestADualWriteBodyTheBackendsCouldReadAsDifferentJSONIsRefused(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusOK, "legacy"))
	modern := newBackend(t, answer(http.StatusOK, "modern"))
	f := newDualWriteFacade(t, legacy.URL, modern.URL, time.Second,
		`  - {name: items, match: "/items/{id}", mode: dual-write}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"name":"Ada"}`))
	zw.Close()
	const typedJSON = "Content-Type: application/json\r\n"
	for _, c := range []struct {
		name, method, header, body string
		want                       int
		says                       string
	}{
		{"a name twice", "PUT", typedJSON, `{"name":"Ada","name":"Eve"}`, 400, "a member twice"},
		{"a name twice, nested, in a PATCH", "PATCH", "Content-Type: application/merge-patch+json\r\n", `{"p":{"id":1,"\u0069d":2}}`, 400, "a member twice"},
		{"a name twice, typed as text", "PUT", "Content-Type: text/plain\r\n", `{"name":"Ada","name":"Eve"}`, 400, "a member twice"},
		{"a name twice in a create", "POST", typedJSON, `{"name":"Ada","name":"Eve"}`, 400, "a member twice"},
		{"a name twice across chunks", "PUT", typedJSON + "Transfer-Encoding: chunked\r\n", "e\r\n{\"name\":\"Ada\",\r\nd\r\n\"name\":\"Eve\"}\r\n0\r\n\r\n", 400, "a member twice"},
		{"cut short, typed JSON in capitals", "PUT", "Content-Type: Application/JSON; charset=UTF-8\r\n", `{"name":"Ada"`, 400, "does not parse"},
		{"JSON behind a byte order mark, typed as text", "PUT", "Content-Type: text/plain\r\n", "\ufeff{\"name\":\"Ada\"}", 400, "byte order mark"},
		{"JSON in UTF-16, typed as bytes", "POST", "Content-Type: application/octet-stream\r\n", "{\x00\"\x00n\x00\"\x00:\x001\x00}\x00", 400, "UTF-16"},
		{"NDJSON, a name twice on a line", "POST", "Content-Type: application/x-ndjson\r\n", "{\"id\":1}\n{\"name\":\"Ada\",\"name\":\"Eve\"}\n", 400, "a member twice"},
		{"NDJSON", "POST", "Content-Type: application/x-ndjson\r\n", "{\"id\":1}\n{\"id\":2}\n", 200, ""},
		{"a name twice in a part typed JSON", "POST", "Content-Type: multipart/form-data; boundary=XyZ\r\n", "--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Ada\",\"name\":\"Eve\"}\r\n--XyZ--\r\n", 400, "a part of the multipart body"},
		{"a file part that is JSON", "POST", "Content-Type: multipart/form-data; boundary=XyZ\r\n", "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.json\"\r\nContent-Type: application/octet-stream\r\n\r\n{\"name\":\"Ada\",\"name\":\"Eve\"}\r\n--XyZ--\r\n", 200, ""},
		{"cut short, typed as text", "PUT", "Content-Type: text/plain\r\n", `{"name":"Ada"`, 200, ""},
		{"a lone surrogate", "PUT", typedJSON, `{"name":"A\ud800"}`, 400, "not Unicode"},
		{"U+0000, which PostgreSQL cannot hold", "POST", typedJSON, `{"name":"Ada\u0000"}`, 400, "U+0000"},
		{"bytes not UTF-8", "PUT", typedJSON, "{\"name\":\"A\xff\"}", 400, "not Unicode"},
		{"typed JSON that does not parse", "PUT", typedJSON, `{"name":"Ada"`, 400, "does not parse"},
		{"JSON in UTF-8 named Latin-1", "PUT", "Content-Type: application/json; charset=ISO-8859-1\r\n", `{"name":"é"}`, 415, "charset other than UTF-8"},
		{"ASCII JSON in Latin-1", "PUT", "Content-Type: application/json; charset=ISO-8859-1\r\n", `{"name":"A"}`, 200, ""},
		{"two types, the second JSON in Latin-1", "PUT", "Content-Type: text/plain\r\nContent-Type: application/json; charset=ISO-8859-1\r\n", `{"name":"é"}`, 415, "charset other than UTF-8"},
		{"gzip JSON", "PUT", typedJSON + "Content-Encoding: gzip\r\n", gz.String(), 415, "Content-Encoding"},
		{"well-formed JSON", "PUT", typedJSON, `{"name":"A\ud83d\ude00","tags":[{"a":1},{"a":2}]}`, 200, ""},
		{"an empty JSON body", "DELETE", typedJSON, ``, 200, ""},
		{"an empty JSON body in gzip", "DELETE", typedJSON + "Content-Encoding: gzip\r\n", ``, 200, ""},
		{"a form naming a field twice", "PUT", "Content-Type: application/x-www-form-urlencoded\r\n", `tag=a&tag=b`, 200, ""},
		{"a gzip image", "PUT", "Content-Type: image/png\r\nContent-Encoding: gzip\r\n", gz.String(), 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			length := "Content-Length: " + strconv.Itoa(len(c.body)) + "\r\n"
			if strings.Contains(c.header, "chunked") {
				length = ""
			}
			msg := f.refusedUnsent(t, legacy, c.method+" /items/7 HTTP/1.1\r\nHost: x\r\n"+c.header+length+"\r\n"+c.body, c.want)
			if c.want != http.StatusOK && (!strings.Contains(msg, c.says) || strings.Contains(msg, "Ada")) {
				t.Errorf("error %q, want one saying %q and not quoting the body", msg, c.says)
			}
		})
	}
}
