package backfill_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/internal/testdb"
	"strangler/modern"
	"strangler/store"
)

// apiWorld is a legacy MariaDB table of patients in hospitals, the
// reference modern API serving imports over HTTP, and a SQLite state
// store for the ledger.
type apiWorld struct {
	legacy  *sql.DB
	modern  *modern.Imports
	pool    *pgxpool.Pool
	srv     *httptest.Server
	store   *store.Store
	cfgPath string
	// arrivals are when each import request reached the API.
	mu       sync.Mutex
	arrivals []time.Time
}

// appliedOnce checks that the API applied want imports, each under a key
// and for a patient of its own (none applied twice); when says at what
// point of the test.
func (w *apiWorld) appliedOnce(t *testing.T, when string, want int64) {
	t.Helper()
	var imports, keys, patients int64
	if err := w.pool.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT idempotency_key), count(DISTINCT patient_id) FROM import_log").
		Scan(&imports, &keys, &patients); err != nil {
		t.Fatal(err)
	}
	if imports != want || keys != want || patients != want {
		t.Errorf("%sthe API applied %d imports of %d keys and %d patients, want %d, each once", when, imports, keys, patients, want)
	}
}

const apiConfig = `
backends:
  legacy: { url: "http://legacy.internal:8080" }
  modern: { url: "%[2]s" }
backfill:
  source: %[1]s
  api: { url: "%[2]s", timeout: 5s, headers: { Authorization: "Bearer t0ken" } }
  batch: 2000
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      target_api:
        method: PUT
        path: "/imports/patients/{PatientSerNum}"
        body:
          first_name: { from: FirstName, transform: [trim] }
          last_name: LastName
          email: Email
          birth_date: DateOfBirth
        group_by: HospitalSerNum
        concurrency: 8
        retry: { max_attempts: 5, backoff: 10ms, max_backoff: 100ms }
      redact: [first_name, email]
  before: [ { method: POST, path: /admin/workflows/disable } ]
  after:  [ { method: POST, path: /admin/workflows/enable } ]
  wait_until: { path: /admin/jobs, field: pending, equals: "0", every: 50ms, timeout: 30s }
`

func newAPIWorld(t *testing.T, rows, groups int, faults modern.Faults) *apiWorld {
	t.Helper()
	ctx := context.Background()
	myDSN := testdb.MySQL(t)
	db, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE Patient (PatientSerNum INT PRIMARY KEY, HospitalSerNum INT NOT NULL,
		FirstName VARCHAR(50) NOT NULL, LastName VARCHAR(50) NOT NULL, Email VARCHAR(100), DateOfBirth DATE)`); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for k := 1; k <= rows; k++ {
		if sb.Len() > 0 {
			sb.WriteString(",")
		}
		email := fmt.Sprintf("'p%d@example.org'", k)
		if rejected(k) {
			email = fmt.Sprintf("'p%d at example.org'", k) // the API refuses it: 422
		}
		fmt.Fprintf(&sb, "(%d, %d, '  Ada%d ', 'Lovelace', %s, '1970-01-31')", k, k%groups, k, email)
		if k%2000 == 0 || k == rows {
			if _, err := db.Exec("INSERT INTO Patient VALUES " + sb.String()); err != nil {
				t.Fatal(err)
			}
			sb.Reset()
		}
	}
	// The modern service's commits need not wait for the disk here: the
	// test is about what the backfill sends, not the service's durability.
	pool, err := modern.Open(ctx, withParam(testdb.Postgres(t), "synchronous_commit=off"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w := &apiWorld{legacy: db, pool: pool}
	w.modern = modern.NewImports(pool, faults, discard())
	h := w.modern.Handler()
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/imports/") {
			w.mu.Lock()
			w.arrivals = append(w.arrivals, time.Now())
			w.mu.Unlock()
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.srv.Close)
	dir := t.TempDir()
	w.store = openStore(t, "sqlite:"+filepath.Join(dir, "state.db"))
	w.cfgPath = filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(w.cfgPath, fmt.Appendf(nil, apiConfig, fixture.MySQLURL(myDSN), w.srv.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}

// rejected picks 2% of the keys, spread over the groups, for an e-mail
// address the API refuses.
func rejected(k int) bool { return k%97 < 2 }

func (w *apiWorld) config(t *testing.T) *config.Backfill {
	t.Helper()
	cfg, err := configfile.Load(w.cfgPath, configfile.Env{Getenv: func(string) string { return "" }, ReadFile: filecap.Read})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Backfill
}

func (w *apiWorld) run(t *testing.T, cfg *config.Backfill, opts backfill.Options) *backfill.Report {
	t.Helper()
	opts.APILedger, opts.Hasher, opts.Log = w.store, w.store.Hasher(), discard()
	report, err := backfill.Run(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	return report
}

func TestAPIBackfillAppliesEveryRowOnceInGroupOrderAndReRunsOnlyTheFailures(t *testing.T) {
	// 100 rows a group, ~100 of them rejected: the order, the 503s, the
	// failures and the paced retry are all there at a quarter of the time
	// 20,000 rows took (74 s under -race).
	const rows, groups = 5000, 50
	w := newAPIWorld(t, rows, groups, modern.Faults{Unavailable: 5, JobTime: 200 * time.Millisecond})
	ctx := context.Background()
	start := time.Now()
	report := w.run(t, w.config(t), backfill.Options{})
	t.Logf("%d rows in %s", rows, time.Since(start))

	wantRejected := rows - accepted(rows)
	tr := report.Tables[0]
	if tr.Read != rows || tr.Written() != rows-wantRejected || tr.Failed != wantRejected {
		t.Fatalf("report: read %d, migrated %d, failed %d; want %d, %d, %d", tr.Read, tr.Written(), tr.Failed, rows, rows-wantRejected, wantRejected)
	}
	if len(tr.Failures) != 1 || tr.Failures[0].Reason != "rejected by the API (422)" || tr.Failures[0].Count != wantRejected {
		t.Errorf("failures by reason: got %+v, want %d rejected by the API (422), its message held back (redacted fields)", tr.Failures, wantRejected)
	}
	// The API applied every accepted row once, whatever the 503s.
	w.appliedOnce(t, "", rows-wantRejected)
	// Within each group, the API saw the rows in key order.
	var outOfOrder int64
	if err := w.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT patient_id,
		lag(patient_id) OVER (PARTITION BY patient_id %% %d ORDER BY seq) AS prev FROM import_log) x WHERE prev > patient_id`, groups)).Scan(&outOfOrder); err != nil {
		t.Fatal(err)
	}
	if outOfOrder != 0 {
		t.Errorf("%d imports reached the API before a row of their group with a lower key", outOfOrder)
	}
	// The ledger holds each failure with its status and a payload whose
	// redacted fields are hashed; no API message, which may quote a value
	// of a table with redacted fields.
	failed, err := w.store.APIBackfillFailures(ctx, "patients", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(failed)) != wantRejected {
		t.Fatalf("the ledger holds %d failures, want %d", len(failed), wantRejected)
	}
	f := failed[0]
	if f.Status != 422 || f.Reason != "rejected" || f.Message != "" {
		t.Errorf("failure of %s: status %d, reason %q, message %q; want 422, rejected and no message", f.Key, f.Status, f.Reason, f.Message)
	}
	if strings.Contains(f.Payload, "Ada") || strings.Contains(f.Payload, " at example.org") || !strings.Contains(f.Payload, `"last_name":"Lovelace"`) {
		t.Errorf("payload %s: want first_name and email hashed, last_name as it is", f.Payload)
	}
	// The steps ran in order: before, the rows, waiting for the jobs, after.
	ev := w.modern.Events()
	if len(ev) < 3 || ev[0] != "workflows disable" || ev[len(ev)-2] != "jobs pending=0" || ev[len(ev)-1] != "workflows enable" {
		t.Errorf("admin calls: %v; want workflows disable, jobs polled until pending=0, then workflows enable", ev)
	}

	// Fix the data, then re-run only the failures, at a capped request rate.
	if _, err := w.legacy.Exec("UPDATE Patient SET Email = CONCAT('p', PatientSerNum, '@example.org') WHERE Email LIKE '% at %'"); err != nil {
		t.Fatal(err)
	}
	cfg := w.config(t)
	const rate = 50
	cfg.Tables[0].TargetAPI.Rate = rate
	w.mu.Lock()
	w.arrivals = nil
	w.mu.Unlock()
	report = w.run(t, cfg, backfill.Options{OnlyFailed: true})
	if tr := report.Tables[0]; tr.Written() != wantRejected || tr.Failed != 0 {
		t.Errorf("--only-failed: migrated %d, failed %d; want %d and 0", tr.Written(), tr.Failed, wantRejected)
	}
	w.appliedOnce(t, "after --only-failed ", rows)
	if failed, _ := w.store.APIBackfillFailures(ctx, "patients", "", 10); len(failed) != 0 {
		t.Errorf("the ledger still holds failures: %+v", failed)
	}
	w.mu.Lock()
	arr := w.arrivals
	w.mu.Unlock()
	// The rate is a limit that protects the modern service: never more
	// than 10% over it. Below it, a loaded 2-core machine (the API, both
	// databases and the backfill share it) rather than the pacer can set
	// the pace, so the lower bound only catches a pacer that waits far too
	// long.
	got := float64(len(arr)-1) / arr[len(arr)-1].Sub(arr[0]).Seconds()
	if got > rate*1.1 || got < rate*0.6 {
		t.Errorf("%d requests came at %.1f/s, want at most %d/s + 10%% (and not under 60%% of it)", len(arr), got, rate)
	}
}

func TestAPIBackfillDryRunPrintsRedactedRequestsAndSendsNone(t *testing.T) {
	w := newAPIWorld(t, 20, 3, modern.Faults{})
	var out bytes.Buffer
	opts := backfill.Options{DryRun: true, Log: discard(), Requests: &out, Hasher: w.store.Hasher(), APILedger: w.store}
	report, err := backfill.Run(context.Background(), w.config(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	n := len(w.arrivals)
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	if report.Tables[0].Read != 20 {
		t.Errorf("a dry run read %d rows, want 20", report.Tables[0].Read)
	}
	text := out.String()
	for _, want := range []string{"POST /admin/workflows/disable (before step)", "PUT /imports/patients/7 Idempotency-Key: patients:7 {", `"last_name":"Lovelace"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the dry run's requests lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Ada7") || strings.Contains(text, "p7@example.org") {
		t.Errorf("the dry run shows a redacted value:\n%s", text)
	}
	if ev := w.modern.Events(); len(ev) != 0 {
		t.Errorf("a dry run made admin calls: %v", ev)
	}
}

// TestAPIBackfillRefusesTextJSONCannotCarry: JSON strings are UTF-8, and
// Go's encoder replaces bytes that are not with U+FFFD; a row holding
// such bytes (a VARBINARY or latin1-as-binary column) must fail, naming
// the field, not reach the API with its value silently changed.
func TestAPIBackfillRefusesTextJSONCannotCarry(t *testing.T) {
	w := newAPIWorld(t, 10, 2, modern.Faults{})
	ctx := context.Background()
	if _, err := w.legacy.Exec("ALTER TABLE Patient MODIFY LastName VARBINARY(50) NOT NULL"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.legacy.Exec("UPDATE Patient SET LastName = X'4C6F7665FF' WHERE PatientSerNum = 4"); err != nil {
		t.Fatal(err)
	}
	tr := w.run(t, w.config(t), backfill.Options{}).Tables[0]
	want := "not sent: field last_name is not valid UTF-8 text, which JSON cannot carry"
	// Patient 1's e-mail address is one the API refuses (see rejected).
	if tr.Written() != 8 || tr.Failed != 2 || !slices.ContainsFunc(tr.Failures, func(f backfill.FailureGroup) bool { return f.Reason == want }) {
		t.Errorf("migrated %d, failed %d (%+v); want 8 and 2, one of them %q", tr.Written(), tr.Failed, tr.Failures, want)
	}
	var n int64
	if err := w.pool.QueryRow(ctx, "SELECT count(*) FROM import_log WHERE patient_id = 4").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the API imported patient 4 %d times, want never", n)
	}
	failed, err := w.store.APIBackfillFailures(ctx, "patients", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	failed = slices.DeleteFunc(failed, func(f store.APIBackfillRow) bool { return f.Key == "1" })
	if len(failed) != 1 || failed[0].Key != "4" || failed[0].Reason != "invalid_text" || failed[0].Status != 0 {
		t.Errorf("ledger %+v, want patient 4 failed as invalid_text, never answered", failed)
	}
}

// newConsentAPI is a legacy table of three consents, sent by PUT to
// /consents/{key} of an API that h serves.
func newConsentAPI(t *testing.T, h http.Handler) *apiWorld {
	t.Helper()
	myDSN := testdb.MySQL(t)
	db, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		"CREATE TABLE Consent (ConsentSerNum INT PRIMARY KEY, Given BIT(1), Flags BIT(16))",
		"INSERT INTO Consent VALUES (1, b'1', b'1111111111111111'), (2, b'0', b'0'), (3, NULL, NULL)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"))
	w := &apiWorld{legacy: db, store: st, cfgPath: filepath.Join(t.TempDir(), "strangler.yaml")}
	yaml := fmt.Sprintf(`
backends:
  legacy: { url: "http://legacy.internal:8080" }
  modern: { url: "%[2]s" }
backfill:
  source: %[1]s
  api: { url: "%[2]s" }
  tables:
    - name: consents
      from: Consent
      key: ConsentSerNum
      target_api:
        method: PUT
        path: "/consents/{ConsentSerNum}"
        body: { given: Given, flags: Flags }
`, fixture.MySQLURL(myDSN), srv.URL)
	if err := os.WriteFile(w.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// sentBodies is an API that answers every request 200 and records the
// last body sent to each path.
type sentBodies struct {
	mu     sync.Mutex
	byPath map[string]string
}

func (s *sentBodies) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byPath == nil {
		s.byPath = map[string]string{}
	}
	s.byPath[r.URL.Path] = string(b)
}

// all is each path's last body so far.
func (s *sentBodies) all() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byPath)
}

// TestAPIBackfillSendsBitsAsNumbers: a BIT column arrives from MySQL as
// bytes; BIT(1), JPA's boolean, must reach the API as 1 or 0, not as the
// string "\u0001", and a wider BIT as its number.
func TestAPIBackfillSendsBitsAsNumbers(t *testing.T) {
	sent := &sentBodies{}
	w := newConsentAPI(t, sent)
	if tr := w.run(t, w.config(t), backfill.Options{}).Tables[0]; tr.Written() != 3 || tr.Failed != 0 {
		t.Errorf("migrated %d, failed %d (%+v); want 3 and 0", tr.Written(), tr.Failed, tr.Failures)
	}
	want := map[string]string{
		"/consents/1": `{"flags":65535,"given":1}`,
		"/consents/2": `{"flags":0,"given":0}`,
		"/consents/3": `{"flags":null,"given":null}`,
	}
	bodies := sent.all()
	for path, body := range want {
		if bodies[path] != body {
			t.Errorf("%s: body %s, want %s", path, bodies[path], body)
		}
	}
}

// TestAPIBackfillDoesNotFollowRedirects: Go's client follows a 301, 302
// or 303 to a PUT with a GET and no body; the GET's 200 would mark a row
// migrated that no one imported. A redirect is the answer: the row fails.
func TestAPIBackfillDoesNotFollowRedirects(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	w := newConsentAPI(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/consents/2":
			http.Redirect(rw, r, "/elsewhere", http.StatusMovedPermanently)
		case "/consents/3":
			http.Redirect(rw, r, "/elsewhere", http.StatusTemporaryRedirect)
		}
	}))
	tr := w.run(t, w.config(t), backfill.Options{}).Tables[0]
	if tr.Written() != 1 || tr.Failed != 2 {
		t.Errorf("migrated %d, failed %d (%+v); want 1 and 2", tr.Written(), tr.Failed, tr.Failures)
	}
	for _, want := range []string{"rejected by the API (301)", "rejected by the API (307)"} {
		if !slices.ContainsFunc(tr.Failures, func(f backfill.FailureGroup) bool { return strings.HasPrefix(f.Reason, want) }) {
			t.Errorf("failures %+v lack %q", tr.Failures, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(seen, "GET /elsewhere") || slices.Contains(seen, "PUT /elsewhere") {
		t.Errorf("requests %q: a redirect was followed", seen)
	}
}

// TestAPIBackfillRefusesAPathThatAddressesAnotherResource: a path column
// that is NULL or empty makes /wards//consents/1, one that is . or ..
// makes a path servers resolve to another resource (/wards/consents/2);
// the row fails, naming the column, and is never sent.
func TestAPIBackfillRefusesAPathThatAddressesAnotherResource(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	w := newConsentAPI(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath())
		mu.Unlock()
	}))
	if _, err := w.legacy.Exec("ALTER TABLE Consent ADD Ward VARCHAR(10)"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.legacy.Exec("INSERT INTO Consent (ConsentSerNum, Ward) VALUES (4, ''), (5, '.'), (6, 'a/b'), (7, '...')"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.legacy.Exec("UPDATE Consent SET Ward = IF(ConsentSerNum = 2, '..', 'east') WHERE ConsentSerNum IN (2, 3)"); err != nil {
		t.Fatal(err)
	}
	cfg := w.config(t)
	cfg.Tables[0].TargetAPI.Path = "/wards/{Ward}/consents/{ConsentSerNum}"
	tr := w.run(t, cfg, backfill.Options{}).Tables[0]
	if tr.Written() != 3 || tr.Failed != 4 {
		t.Errorf("migrated %d, failed %d (%+v); want 3 and 4", tr.Written(), tr.Failed, tr.Failures)
	}
	want := "not sent: path column Ward is empty, NULL, . or .., which would address another resource"
	if len(tr.Failures) != 1 || tr.Failures[0].Reason != want {
		t.Errorf("failures %+v, want 4 as %q", tr.Failures, want)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(seen)
	if want := []string{"/wards/.../consents/7", "/wards/a%2Fb/consents/6", "/wards/east/consents/3"}; !slices.Equal(seen, want) {
		t.Errorf("the API got %q, want %q", seen, want)
	}
}

// TestAPIBackfillKeepsNoByteOfAMalformedAnswer: net/http quotes the bytes
// of an answer it cannot parse (a status line, a Content-Length) in its
// error, and a modern service's stray bytes may be a patient's record;
// the ledger and the report say the answer was not valid HTTP, without
// them.
func TestAPIBackfillKeepsNoByteOfAMalformedAnswer(t *testing.T) {
	const secret = "Quimbyfrost"
	w := newConsentAPI(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		answer := map[string]string{
			"/consents/2": "HTTP/1.1 2" + secret + " OK\r\n\r\n",
			"/consents/3": "HTTP/1.1 200 OK\r\nContent-Length: " + secret + "\r\n\r\n",
		}[r.URL.Path]
		if answer == "" {
			return
		}
		conn, _, err := http.NewResponseController(rw).Hijack()
		if err != nil {
			return
		}
		io.WriteString(conn, answer)
		conn.Close()
	}))
	yaml, _ := os.ReadFile(w.cfgPath)
	os.WriteFile(w.cfgPath, bytes.Replace(yaml, []byte("target_api:\n"), []byte("target_api:\n        retry: {max_attempts: 2, backoff: 10ms}\n"), 1), 0o600)
	report := w.run(t, w.config(t), backfill.Options{})
	if tr := report.Tables[0]; tr.Written() != 1 || tr.Failed != 2 {
		t.Fatalf("migrated %d, failed %d (%+v); want 1 and 2", tr.Written(), tr.Failed, tr.Failures)
	}
	failed, err := w.store.APIBackfillFailures(context.Background(), "consents", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 2 {
		t.Fatalf("ledger %+v, want two failed rows", failed)
	}
	for _, f := range failed {
		if strings.Contains(f.Message, secret) || !strings.Contains(f.Message, "not valid HTTP") {
			t.Errorf("ledger row %s: message %q, want that the answer was not valid HTTP, without its bytes", f.Key, f.Message)
		}
	}
	var text bytes.Buffer
	report.WriteText(&text)
	if strings.Contains(text.String(), secret) {
		t.Errorf("the report quotes the answer:\n%s", text.String())
	}
}

// TestAPIBackfillKeepsTheAPIsMessagesOnlyEncrypted: with store_encryption
// an API's error message, which may quote the patient data it refused,
// is kept only encrypted, with the failed row; the run's report in the
// ledger holds no copy of it in clear.
func TestAPIBackfillKeepsTheAPIsMessagesOnlyEncrypted(t *testing.T) {
	const secret = "Quimbyfrost"
	w := newConsentAPI(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/consents/2" {
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(rw, `{"error":"no consent on file for Zelda `+secret+`"}`)
		}
	}))
	path := filepath.Join(t.TempDir(), "sealed.db")
	st := openStore(t, "sqlite:"+path, store.WithEncryption([][32]byte{{42}}))
	w.store = st
	report := w.run(t, w.config(t), backfill.Options{})
	if tr := report.Tables[0]; tr.Written() != 2 || tr.Failed != 1 {
		t.Fatalf("migrated %d, failed %d (%+v); want 2 and 1", tr.Written(), tr.Failed, tr.Failures)
	}
	failed, err := st.APIBackfillFailures(context.Background(), "consents", "", 10)
	if err != nil || len(failed) != 1 || !strings.Contains(failed[0].Message, secret) {
		t.Fatalf("ledger %+v (%v), want row 2 with the API's message", failed, err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cells, err := testdb.Contents(context.Background(), db, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cells {
		if strings.Contains(string(c.Value), secret) {
			t.Errorf("%s.%s holds the API's message in clear: %s", c.Table, c.Column, c.Value)
		}
	}
}
