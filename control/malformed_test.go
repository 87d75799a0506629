package control

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"strangler/domain"
)

// goTalk are the words of encoding/json's own errors, which name the
// facade's Go types: a caller of the API cannot act on them, and they
// describe the code to whoever probes it.
var goTalk = []string{"Go value", "Go struct field", "json:", "control.", "config.", "domain.", "float64", "[]"}

// TestMalformedBodiesAreRefusedInTheAPIsWords: a body of the wrong shape
// (a value of another JSON type than a field takes, a number out of
// range, an array for the object, cut short or not JSON) is refused with
// 400 naming the field and what it takes, never with Go's type names.
func TestMalformedBodiesAreRefusedInTheAPIsWords(t *testing.T) {
	p := newPlane(t)
	for _, tc := range []struct {
		name, method, path, body, says string
	}{
		{"a mode that is a number", "PATCH", "/admin/routes/get-patient", `{"mode":1,"reason":"go"}`, `"mode" takes a string, not a number`},
		{"a percent that is a string", "PATCH", "/admin/routes/get-patient", `{"mode":"fallback","percent":"50","reason":"go"}`, `"percent" takes a number, not a string`},
		{"a percent out of any range", "PATCH", "/admin/routes/get-patient", `{"mode":"fallback","percent":1e400,"reason":"go"}`, "the number 1e400 is out of range"},
		{"a reason that is a number", "PATCH", "/admin/routes/get-patient", `{"mode":"modern","reason":5}`, `"reason" takes a string, not a number`},
		{"force as a string", "PATCH", "/admin/routes/get-patient", `{"mode":"modern","reason":"go","force":"yes"}`, `"force" takes true or false, not a string`},
		{"ramp steps as a string", "PATCH", "/admin/routes/get-patient", `{"ramp":{"steps":"1,5","every":"1m","mode":"modern"},"reason":"go"}`, `"ramp.steps" takes an array, not a string`},
		{"a ramp step that is a string", "PATCH", "/admin/routes/get-patient", `{"ramp":{"steps":[1,"5"],"every":"1m","mode":"modern"},"reason":"go"}`, `"ramp.steps" takes a number, not a string`},
		{"a ramp's every as a number", "PATCH", "/admin/routes/get-patient", `{"ramp":{"steps":[1],"every":30,"mode":"modern"},"reason":"go"}`, `"ramp.every" takes a string, not a number`},
		{"an array for the body", "PATCH", "/admin/routes/get-patient", `[]`, "the body must be a JSON object, not an array"},
		{"a string for the body", "PATCH", "/admin/routes/get-patient", `"modern"`, "the body must be a JSON object, not a string"},
		{"a body cut short", "PATCH", "/admin/routes/get-patient", `{"mode":`, "the body ends inside its JSON value"},
		{"a body that is not JSON", "PATCH", "/admin/routes/get-patient", `{"mode" "x"}`, "not JSON at byte"},
		{"an unknown field", "PATCH", "/admin/routes/get-patient", `{"mode":"modern","reason":"go","bogus":1}`, `unknown field "bogus"`},
		{"an approval with an array", "POST", "/admin/changes/1/approve", `[]`, "the body must be a JSON object, not an array"},
		{"a retry whose reason is an array", "POST", "/admin/repairs/w-1/retry", `{"reason":[]}`, `"reason" takes a string, not an array`},
		{"a force token whose ttl is a number", "POST", "/admin/routes/get-patient/force-token", `{"ttl":5,"reason":"go"}`, `"ttl" takes a string, not a number`},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			resp, body := p.call(t, tc.method, tc.path, aliceToken, tc.body, "If-Match", `"0"`)
			msg, _ := body["error"].(string)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, tc.says) {
				t.Errorf("got %d %q, want 400 saying %q", resp.StatusCode, msg, tc.says)
			}
			for _, w := range goTalk {
				if strings.Contains(msg, w) {
					t.Errorf("the error %q speaks Go (%q)", msg, w)
				}
			}
		})
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a refused change moved the route to %s", p.mode("get-patient"))
	}
}

// TestTheMuxsRefusalsAreJSONToo: a path no endpoint serves (404) and a
// method a path's endpoints do not take (405, with Allow) are answered
// like every other refusal of the admin API: a JSON body saying what is
// wrong, not net/http's plain text, which a client of the API (the CLI
// included) cannot read as an error. Neither echoes the method or the
// path a caller sent.
func TestTheMuxsRefusalsAreJSONToo(t *testing.T) {
	p := newPlane(t)
	for _, tc := range []struct {
		name, method, path, allow, says string
		status                          int
	}{
		{"a path no endpoint serves", "GET", "/admin/nowhere", "", "no endpoint of the admin listener serves this path", 404},
		{"a path below a route", "GET", "/admin/routes/get-patient/nowhere", "", "no endpoint of the admin listener serves this path", 404},
		{"a method the route's endpoints do not take", "PUT", "/admin/routes/get-patient", "GET, HEAD, PATCH", "the method is not allowed on this path; it takes GET, HEAD, PATCH", 405},
		{"a made-up method", "X-PATIENT-4711", "/admin/routes/get-patient", "GET, HEAD, PATCH", "the method is not allowed on this path", 405},
		{"OPTIONS, which grants no preflight", "OPTIONS", "/admin/routes/get-patient", "GET, HEAD, PATCH", "the method is not allowed on this path", 405},
		{"a GET of a change", "GET", "/admin/repairs/w-1/retry", "POST", "it takes POST", 405},
	} {
		t.Run(tc.name+" is a JSON "+http.StatusText(tc.status), func(t *testing.T) {
			req, err := http.NewRequest(tc.method, p.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+aliceToken)
			resp, err := p.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body map[string]any
			jsonErr := json.Unmarshal(raw, &body)
			msg, _ := body["error"].(string)
			if resp.StatusCode != tc.status || jsonErr != nil || !strings.Contains(msg, tc.says) {
				t.Errorf("got %d %q, want %d with a JSON error saying %q", resp.StatusCode, raw, tc.status, tc.says)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if strings.Contains(msg, "PATIENT") {
				t.Errorf("the error %q echoes the method", msg)
			}
		})
	}
	t.Run("a path that is not clean is still redirected to its clean form", func(t *testing.T) {
		client := *p.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := client.Get(p.URL + "/admin//routes")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/admin/routes" {
			t.Errorf("got %d Location %q, want 307 to /admin/routes", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// TestARepairThatDoesNotExistIsNamedInTheAPIsWords: an id, or a
// before_id, that names no journaled write answers 404 saying so, not
// the store's own error ("store: get repair …: not found"), and without
// quoting what the caller sent (here bytes that are not UTF-8).
func TestARepairThatDoesNotExistIsNamedInTheAPIsWords(t *testing.T) {
	p := newPlane(t)
	for _, tc := range []struct{ name, method, path, body, says string }{
		{"a read", "GET", "/admin/repairs/w-404", "", "no such repair"},
		{"a read of its body", "GET", "/admin/repairs/w-404?body=1", "", "no such repair"},
		{"a read by an id that is not UTF-8", "GET", "/admin/repairs/%ff%fe", "", "no such repair"},
		{"a retry", "POST", "/admin/repairs/w-404/retry", `{"reason":"go"}`, "no such repair"},
		{"a stop of its resends", "POST", "/admin/repairs/w-404/stop", `{"reason":"go"}`, "no such repair"},
		{"a stop by an id that is not UTF-8", "POST", "/admin/repairs/%ff%fe/stop", `{"reason":"go"}`, "no such repair"},
		{"a discard", "DELETE", "/admin/repairs/w-404", `{"reason":"go"}`, "no such repair"},
		{"a page after it", "GET", "/admin/repairs?before_id=w-404", "", "before_id names no journaled write"},
	} {
		t.Run(tc.name+" answers 404 in the API's words", func(t *testing.T) {
			resp, body := p.call(t, tc.method, tc.path, aliceToken, tc.body)
			msg, _ := body["error"].(string)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(msg, tc.says) {
				t.Errorf("got %d %q, want 404 saying %q", resp.StatusCode, msg, tc.says)
			}
			for _, w := range []string{"store:", "w-404", "\ufffd", "not found"} {
				if strings.Contains(msg, w) {
					t.Errorf("the error %q holds %q", msg, w)
				}
			}
		})
	}
}

// TestTwoAuthorizationHeadersAreRefused: a request with two
// Authorization headers names two callers; the admin listener refuses it
// (400), as the public listener does, instead of acting as whichever
// came first, so that a proxy in front that adds its own header never has
// the client's taken in its place, and the audit log never names an actor
// the request did not unambiguously present.
func TestTwoAuthorizationHeadersAreRefused(t *testing.T) {
	p := newPlane(t)
	for _, tc := range []struct {
		name, method, path, body string
		first, second            string
	}{
		{"a read by a viewer and an admin", "GET", "/admin/routes", "", veraToken, aliceToken},
		{"a flip by an operator and a viewer", "PATCH", "/admin/routes/get-patient", `{"mode":"modern","reason":"go"}`, bobToken, veraToken},
		{"a flip by a wrong token and an operator", "PATCH", "/admin/routes/get-patient", `{"mode":"modern","reason":"go"}`, "wrong-token-0123456789", bobToken},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			var rd io.Reader
			if tc.body != "" {
				rd = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, p.URL+tc.path, rd)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Add("Authorization", "Bearer "+tc.first)
			req.Header.Add("Authorization", "Bearer "+tc.second)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("If-Match", `"0"`)
			resp, err := p.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			msg, _ := body["error"].(string)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "one Authorization header") {
				t.Errorf("got %d %q, want 400 asking for one Authorization header", resp.StatusCode, msg)
			}
		})
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a request with two callers moved the route to %s", p.mode("get-patient"))
	}
	if got := p.auditActions(t); len(got) != 0 {
		t.Errorf("the audit log holds %q; want nothing: a malformed request is not audited", got)
	}
}

// TestAChangeBodyIsTakenOnlyAsPlainJSON: a change's body is read as JSON
// in UTF-8 as sent, so one declared compressed or in another charset is
// refused with 415 saying so, before anything changes. A gzip body was
// refused as "not valid UTF-8", which sends its sender looking in the
// wrong place, and a body in a coding the facade does not know whose
// bytes happen to be JSON was applied.
func TestAChangeBodyIsTakenOnlyAsPlainJSON(t *testing.T) {
	p := newPlane(t)
	flip := `{"mode":"fallback","percent":50,"reason":"half"}`
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(flip))
	w.Close()
	for _, tc := range []struct {
		name, body, says string
		header           []string
	}{
		{"a gzip body", gz.String(), "not compressed", []string{"Content-Encoding", "gzip"}},
		{"a body in a coding whose bytes are JSON", flip, "not compressed", []string{"Content-Encoding", "x-rot0"}},
		{"a body encoded twice, identity first", flip, "not compressed", []string{"Content-Encoding", "identity, br"}},
		{"a body in Latin-1", flip, "in UTF-8", []string{"Content-Type", "application/json; charset=iso-8859-1"}},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, tc.body, append([]string{"If-Match", `"0"`}, tc.header...)...)
			if msg, _ := body["error"].(string); resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(msg, tc.says) {
				t.Errorf("got %d %q, want 415 saying %q", resp.StatusCode, msg, tc.says)
			}
		})
	}
	if got := p.served("get-patient"); got != "fallback" {
		t.Fatalf("a refused body moved get-patient to %s", got)
	}
	resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, flip,
		"If-Match", `"0"`, "Content-Encoding", "identity", "Content-Type", "application/json; charset=UTF-8")
	if resp.StatusCode != http.StatusOK || p.served("get-patient") != "fallback 50%" {
		t.Errorf("a plain body declared identity in UTF-8: got %d %v, serving %s; want 200, fallback 50%%", resp.StatusCode, body, p.served("get-patient"))
	}
}

// TestASwitchOfTheQueryIsOneOrZero: ?noise=, ?schema= and ?body= take 1
// (or 0). Any other value was read as 0 and answered 200 with something
// else than was asked for: the mismatch samples for ?noise=yes, a repair
// without its body for ?body=true, which the caller could take for a
// write with none.
func TestASwitchOfTheQueryIsOneOrZero(t *testing.T) {
	p := newPlane(t)
	for _, path := range []string{"/admin/diffs?noise=yes", "/admin/diffs?schema=true", "/admin/diffs?noise=1&schema=2", "/admin/repairs/w-1?body=true"} {
		resp, body := p.call(t, "GET", path, aliceToken, "")
		if msg, _ := body["error"].(string); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "takes 1 (or 0)") {
			t.Errorf("GET %s: got %d %v, want 400 saying the switch takes 1 (or 0)", path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/admin/diffs?noise=1", "/admin/diffs?noise=0", "/admin/diffs?schema=0"} {
		if resp, body := p.call(t, "GET", path, aliceToken, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d %v, want 200", path, resp.StatusCode, body)
		}
	}
}

// TestAChangeWithTwoContentTypesIsRefused: a change whose Content-Type
// lines say JSON and something else is refused with 415, as the public
// listener refuses such a request: which line counts is each reader's
// choice, and a proxy or filter in front that reads the last takes the
// body for text while the admin API, reading the first, applied it as
// JSON (200, the route flipped).
func TestAChangeWithTwoContentTypesIsRefused(t *testing.T) {
	p := newPlane(t)
	for _, types := range [][]string{
		{"application/json", "text/plain"},
		{"text/plain", "application/json"},
		{"application/json", "application/json"},
	} {
		t.Run(strings.Join(types, " and "), func(t *testing.T) {
			req, err := http.NewRequest("PATCH", p.URL+"/admin/routes/get-patient", strings.NewReader(`{"mode":"modern","reason":"two types"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+bobToken)
			req.Header.Set("If-Match", `"0"`)
			for _, ct := range types {
				req.Header.Add("Content-Type", ct)
			}
			resp, err := p.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			if msg, _ := body["error"].(string); resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(msg, "one Content-Type") {
				t.Errorf("got %d %q, want 415 asking for one Content-Type header", resp.StatusCode, msg)
			}
		})
	}
	if got := p.mode("get-patient"); got != domain.ModeFallback {
		t.Errorf("a change with two Content-Type headers moved get-patient to %s", got)
	}
}
