package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"strangler/backfill"
	"strangler/internal/human"
)

// actsOnTerminal is the first character in out a terminal would act on
// (a control character but newline, or a bidirectional formatting
// character), or 0.
func actsOnTerminal(out string) rune {
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			return r
		}
	}
	return 0
}

// TestRepairsShowWritesNoControlCharactersFromTheClient: a dual write's
// journaled request is what a client on the internet sent. `repairs show
// --body` printed its body and header values as they were, so an escape
// sequence (ESC ] 0 ; … BEL retitles a terminal, ESC [ 2 J clears it), a
// C1 control or a bidirectional override in them reached the terminal of
// the admin reading it; now each is a visible \u escape.
func TestRepairsShowWritesNoControlCharactersFromTheClient(t *testing.T) {
	legacy := backendAnswering(t, `{"ok":true}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such patient", http.StatusBadRequest)
	})
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write, primary: legacy}
`)
	req, _ := http.NewRequest("PUT", "http://"+f.public+"/patients/1", strings.NewReader("{\"name\":\"Ann\x1b]0;pwned\x07\x1b[2J\u202eeman\u009b\x7f\"}"))
	// Raw control characters in a string are no JSON: typed JSON, the
	// facade refuses the write (SameJSONEverywhere). As text it goes.
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-Note", "a\u009b2Jb\u202ec")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /patients/1: %s", resp.Status)
	}
	id := repairIDs(t, f, 1)[0]
	out := cli(f.admin)(t, "repairs", "show", "--body", id).must(t)
	for _, want := range []string{`{"name":"Ann\u001b]0;pwned\u0007\u001b[2J\u202eeman\u009b\u007f"}`, `X-Note: a\u009b2Jb\u202ec`} {
		if !strings.Contains(out, want) {
			t.Errorf("repairs show --body lacks %s:\n%q", want, out)
		}
	}
	if r := actsOnTerminal(out); r != 0 {
		t.Errorf("repairs show --body writes the control character %U:\n%q", r, out)
	}
}

// TestTheAdminAPIWritesNoControlCharactersFromTheClient: operators read
// the admin API with curl too, and encoding/json escapes only C0
// controls, so GET /admin/repairs/{id}?body=1 wrote a client's C1
// control (ESC [ to a terminal) and U+202E in a journaled header value
// raw; now each is a \u escape and the answer decodes the same.
func TestTheAdminAPIWritesNoControlCharactersFromTheClient(t *testing.T) {
	legacy := backendAnswering(t, `{"ok":true}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such patient", http.StatusBadRequest)
	})
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write, primary: legacy}
`)
	const note = "a\u009b2Jb\u202ec"
	req, _ := http.NewRequest("PUT", "http://"+f.public+"/patients/1", strings.NewReader(`{"name":"Ann"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Note", note)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := repairIDs(t, f, 1)[0]
	req, _ = http.NewRequest("GET", "http://"+f.admin+"/admin/repairs/"+id+"?body=1", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if r := actsOnTerminal(string(b)); r != 0 {
		t.Errorf("the answer writes the control character %U:\n%s", r, b)
	}
	var got struct{ Header map[string][]string }
	if err := json.Unmarshal(b, &got); err != nil || len(got.Header["X-Note"]) != 1 || got.Header["X-Note"][0] != note {
		t.Errorf("the answer does not decode to the journaled header (%v):\n%s", err, b)
	}
}

// checkJSONActsOnNoTerminal checks that a --json output holds no
// character a terminal would act on, and is still JSON with key in it.
func checkJSONActsOnNoTerminal(t *testing.T, out, key string) {
	t.Helper()
	if r := actsOnTerminal(out); r != 0 {
		t.Errorf("--json writes the control character %U:\n%q", r, out)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json wrote no JSON: %v\n%q", err, out)
	}
	again, _ := json.Marshal(v)
	quoted, _ := json.Marshal(key)
	if !strings.Contains(string(again), strings.Trim(string(quoted), `"`)) {
		t.Errorf("--json lost %q:\n%q", key, out)
	}
}

// TestPrintableKeepsCharactersCutBetweenWrites: a character whose bytes
// arrive in two writes is written whole, and one a terminal would act on
// is escaped whole; bytes that never make a character are escaped too.
func TestPrintableKeepsCharactersCutBetweenWrites(t *testing.T) {
	var b strings.Builder
	p := human.NewPrintableWriter(&b)
	in := []byte("Zoë \u202e\x1b[2J\n\t\xc3")
	for i := range in {
		if _, err := p.Write(in[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "Zoë \\u202e\\u001b[2J\n\t\\ufffd"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestTheLogWritesNoControlCharactersFromTheClient: a route's log_path
// puts the decoded path in its fallback lines, and encoding/json escapes
// only C0 controls, so a path holding %C2%9B (a C1 control, ESC [ to a
// terminal) and %E2%80%AE (U+202E) wrote them raw to the log that
// operators tail; now each is a \u escape and the line means the same.
func TestTheLogWritesNoControlCharactersFromTheClient(t *testing.T) {
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: get-patient, match: "GET /patients/{id}", mode: fallback, log_path: true}
`)
	if code, _ := getBody(t, "http://"+f.public+"/patients/%C2%9B2J%E2%80%AEeman"); code != http.StatusOK {
		t.Fatalf("GET through the fallback route: %d, want 200 from legacy", code)
	}
	f.logs.waitFor(t, "fallback", map[string]any{"path": "/patients/\u009b2J\u202eeman"}, 10*time.Second)
	if r := actsOnTerminal(f.logs.String()); r != 0 {
		t.Errorf("the log writes the control character %U:\n%q", r, f.logs.String())
	}
}

// TestTheJSONReportWritesNoControlCharactersFromTheData: a backfill's
// --report-json quotes legacy keys and the databases' messages, and
// encoding/json escapes only C0 controls, so a C1 control (ESC [ to a
// terminal) and U+202E in them reached --report-json /dev/stdout as they
// were; now each is a \u escape and the report decodes to the same.
func TestTheJSONReportWritesNoControlCharactersFromTheData(t *testing.T) {
	const hostile = "7\u009b2J\u202eeman\x1b]0;pwned\x07"
	report := &backfill.Report{Mode: "copy", Started: time.Unix(0, 0).UTC(), Finished: time.Unix(1, 0).UTC(), Tables: []backfill.TableReport{{
		Table: "patients", Read: 1, Failed: 1,
		Failures: []backfill.FailureGroup{{Reason: `invalid input syntax for type integer: "` + hostile + `"`, Count: 1, SampleKeys: []string{hostile}}},
	}}, Error: "stopped: " + hostile}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := writeReports(report, path, ""); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := actsOnTerminal(string(b)); r != 0 {
		t.Errorf("the JSON report writes the control character %U:\n%s", r, b)
	}
	var got backfill.Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if f := got.Tables[0].Failures[0]; f.SampleKeys[0] != hostile || f.Reason != report.Tables[0].Failures[0].Reason || got.Error != report.Error {
		t.Errorf("the JSON report does not decode to the report: %+v", got)
	}
}

// TestTheErrorACommandEndsWithActsOnNoTerminal: main printed the error a
// command returned as it was; a backfill table that stopped returns the
// database's message, which may quote a legacy row. Now each character a
// terminal acts on is a \u escape.
func TestTheErrorACommandEndsWithActsOnNoTerminal(t *testing.T) {
	var b strings.Builder
	printError(&b, fmt.Errorf("backfill: %w", errors.New("patients: ERROR: bad name \"Ann\x1b]0;pwned\x07\u009b2J\u202eeman\" (SQLSTATE P0001)")))
	if r := actsOnTerminal(b.String()); r != 0 {
		t.Errorf("the error line writes the control character %U: %q", r, b.String())
	}
	if want := `strangler: backfill: patients: ERROR: bad name "Ann\u001b]0;pwned\u0007\u009b2J\u202eeman" (SQLSTATE P0001)` + "\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
