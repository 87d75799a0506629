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
// /index.php/records, their front controller's path, as /records; index
// pages (Apache's and IIS's /records/index.php, ASP.NET MVC's default
// action /records/index) are /records. So POST /records.json, POST
// /index.php/records and POST /records/index.php create a record at a
// legacy Rails, Laravel, PHP or ASP.NET app: beside a dual-write route for POST
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
		{"POST", "/records/index.php", "create-record"},
		{"POST", "/Records/Index", "create-record"},
		{"POST", "/records/index.html/", "create-record"},
		// The route's own spelling, and one on its parameter.
		{"POST", "/records", ""},
		{"PUT", "/records/4", ""},
		{"PUT", "/records/4.json", ""},
		// A spelling declared as a route of its own, and paths whose
		// loose reading no route takes.
		{"POST", "/export.csv", ""},
		{"POST", "/export", ""},
		{"POST", "/index.php", ""},
		{"POST", "/records/indexes", ""},
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

// TestAPatchWhereOnlyPutIsRoutedIsRefused: Rails' and Laravel's resource
// routes send PUT and PATCH alike to update, and Rails' forms send PATCH
// (as _method=patch). A PATCH that no route of its own takes, on a path
// where a dual-write route takes PUT, updated the record at legacy alone:
// it is refused with 400 naming that route, however the PATCH is asked
// for (the method, an override header, a form's _method), before any
// backend sees a byte. A route for PATCH serves it.
//
// Found by the red team: the four refused requests below were answered
// 200 by legacy alone, nothing journaled for modern.
func TestAPatchWhereOnlyPutIsRoutedIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
  - {name: put-note, match: "PUT /notes/{id}", mode: dual-write}
  - {name: patch-note, match: "PATCH /notes/{id}", mode: legacy}
  - {name: patch-visit, match: "PATCH /visits/{id}", mode: dual-write}
`)
	const form = "Content-Type: application/x-www-form-urlencoded\r\n"
	for i, c := range []struct {
		method, target, header, body string
		names                        string // in the refusal, "" when the request passes
	}{
		{"PATCH", "/records/4", "", "{}", "put-record"},
		{"PATCH", "/Records/4", "", "{}", "put-record"},
		{"POST", "/records/4", "X-HTTP-Method-Override: PATCH\r\n", "{}", "put-record"},
		{"POST", "/records/4", form, "_method=patch", "put-record"},
		{"PUT", "/visits/4", "", "{}", "patch-visit"},
		{"PUT", "/records/4", "", "{}", ""},
		{"PATCH", "/notes/4", "", "{}", ""},
		{"PATCH", "/elsewhere/4", "", "{}", ""},
		{"POST", "/records/4", form, "_method=delete", ""},
	} {
		id := fmt.Sprint("twin", i)
		resp, out := rawHTTP(t, r.public, id, c.method, c.target, fmt.Sprintf("%sContent-Length: %d\r\n", c.header, len(c.body)), c.body)
		n := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch {
		case c.names == "" && resp.StatusCode >= 300:
			t.Errorf("%s %s %q: %d %s; want it served", c.method, c.target, c.body, resp.StatusCode, out)
		case c.names != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, `route \"`+c.names+`\"`)):
			t.Errorf("%s %s %q: %d %s; want a 400 JSON error naming route %s", c.method, c.target, c.body, resp.StatusCode, out, c.names)
		case c.names != "" && n > 0:
			t.Errorf("%s %s %q: refused, yet the backends received %d requests", c.method, c.target, c.body, n)
		}
	}
}

// TestAMethodOverrideInAnArrayIsRefused: qs, which parses Express's
// queries and (extended) forms, makes _method[]=PUT and _method[0]=PUT
// the array ["PUT"], as JSON's {"_method":["PUT"]} is, and Express's
// method-override takes an array's first element as the method. Beside a
// dual-write route for PUT /records/{id}, such a POST /records/4 is
// refused with 400 naming it, before any backend sees a byte.
//
// Found by the red team: each reached legacy alone, 201, unjournaled.
func TestAMethodOverrideInAnArrayIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
`)
	const form = "Content-Type: application/x-www-form-urlencoded\r\n"
	for i, c := range []struct {
		target, header, body string
		refused              bool
	}{
		{"/records/4", form, "_method[]=PUT", true},
		{"/records/4", form, "a=1&_method%5B0%5D=put", true},
		{"/records/4", "Content-Type: application/json\r\n", `{"_method":["PUT"]}`, true},
		{"/records/4?_method[]=PUT", "", "{}", true},
		{"/records/4", form, "_method[21]=PUT", false},
		{"/records/4", "Content-Type: application/json\r\n", `{"_method":[{"m":"PUT"}]}`, false},
	} {
		id := fmt.Sprint("array", i)
		resp, out := rawHTTP(t, r.public, id, "POST", c.target, fmt.Sprintf("%sContent-Length: %d\r\n", c.header, len(c.body)), c.body)
		n := len(legacy.received(t, id)) + len(modern.received(t, id))
		switch {
		case !c.refused && resp.StatusCode >= 300:
			t.Errorf("POST %s %q: %d %s; want it served", c.target, c.body, resp.StatusCode, out)
		case c.refused && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, `route \"put-record\"`)):
			t.Errorf("POST %s %q: %d %s; want a 400 JSON error naming route put-record", c.target, c.body, resp.StatusCode, out)
		case c.refused && n > 0:
			t.Errorf("POST %s %q: refused, yet the backends received %d requests", c.target, c.body, n)
		}
	}
}
