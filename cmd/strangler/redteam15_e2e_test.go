package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestAFormatSuffixOrAFrontControllerIsALooseSpelling: Rails routes every
// resource with (.:format), and Spring (suffix pattern match) reads
// /records.json as /records too; Laravel and Symfony route
// /index.php/records, their front controller's path, as /records. So
// POST /records.json and POST /index.php/records create a record at a
// legacy Rails or Laravel app: beside a dual-write route for POST
// /records, each is a loose spelling of it and is refused with 400
// naming the route, before any backend sees a byte. A route declared for
// such a spelling serves it; a suffix on a parameter stays on its route.
//
// Found by the red team: POST /records.json, /index.php/records and the
// other spellings below reached legacy alone, through the default route,
// and no write was journaled for modern.
func TestAFormatSuffixOrAFrontControllerIsALooseSpelling(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
  - {name: export, match: "POST /export", mode: dual-write}
  - {name: export-csv, match: "POST /export.csv", mode: legacy}
`)
	for i, c := range []struct {
		method, target string
		names          string // in the refusal, "" when the request passes
	}{
		{"POST", "/records.json", "create-record"},
		{"POST", "/records.xml/", "create-record"},
		{"POST", "/Records.JSON", "create-record"},
		{"POST", "/records.tar.gz", "create-record"},
		{"POST", "/records%20.json", "create-record"},
		{"POST", "/records%EF%BC%8Ejson", "create-record"}, // records．json
		{"POST", "/index.php/records", "create-record"},
		{"POST", "/INDEX.PHP/records", "create-record"},
		{"POST", "/app.php/records.json", "create-record"},
		{"PUT", "/index.php/records/4", "put-record"},
		{"POST", "/export.xml", "export"},
		// The route's own spelling, and one on its parameter.
		{"POST", "/records", ""},
		{"PUT", "/records/4", ""},
		{"PUT", "/records/4.json", ""},
		// A spelling declared as a route of its own, and paths whose
		// loose reading no route takes.
		{"POST", "/export.csv", ""},
		{"POST", "/export", ""},
		{"POST", "/index.php", ""},
		{"POST", "/.records", ""},
		{"POST", "/x/index.php/records", ""},
	} {
		id := fmt.Sprint("ends", i)
		resp, out := rawHTTP(t, r.public, id, c.method, c.target, "Content-Length: 2\r\n", "{}")
		n := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch {
		case c.names == "" && resp.StatusCode >= 300:
			t.Errorf("%s %s: %d %s; want it served", c.method, c.target, resp.StatusCode, out)
		case c.names != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, `route \"`+c.names+`\"`) || !strings.Contains(out, `"error":`)):
			t.Errorf("%s %s: %d %s; want a 400 JSON error naming route %s", c.method, c.target, resp.StatusCode, out, c.names)
		case c.names != "" && n > 0:
			t.Errorf("%s %s: refused, yet the backends received %d requests", c.method, c.target, n)
		}
	}
}
