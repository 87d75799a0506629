package backfill_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/modern"
	"strangler/store"
)

// TestApiupgradeFirstRunAfterUpgradingCreatesNoPatientTwice: the release
// before per-row hashes deleted a migrated row's ledger row and kept only
// the checkpoint. The first plain run after upgrading, on a table whose
// request creates (POST /patients) against a service that ignores
// Idempotency-Key, takes the rows at or below that checkpoint with no
// ledger row as sent: it records their request, creates no second
// patient, and does not send the row changed before the upgrade (not
// detected, as documented). Rows past the checkpoint are sent; a change
// made after the upgrade is detected; the mark is cleared.
func TestApiupgradeFirstRunAfterUpgradingCreatesNoPatientTwice(t *testing.T) {
	for _, ledger := range []string{"sqlite", "postgres"} {
		t.Run(ledger, func(t *testing.T) { apiupgradeFirstRun(t, ledger == "postgres") })
	}
}

func apiupgradeFirstRun(t *testing.T, pgLedger bool) {
	ctx := context.Background()
	w, cfg, exec, patients := apiupgradeWorld(t, pgLedger, nil)
	if first := w.run(t, cfg, backfill.Options{}).Tables[0]; first.Inserted != 9 || patients() != 9 { // row 1's e-mail is refused
		t.Fatalf("first run: inserted %d, %d patients; want 9, 9", first.Inserted, patients())
	}
	// The ledger as the release before wrote it, as migration 0090 finds
	// it: no migrated rows, no hashes, the checkpoint marked.
	for _, q := range apiupgradeOldLedger {
		if err := exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"UPDATE Patient SET LastName = 'Byron' WHERE PatientSerNum = 5", // before the upgrade: not detected
		"INSERT INTO Patient VALUES (11, 1, 'New', 'Lovelace', 'p11@example.org', '1980-02-02')",
	} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	reg := prometheus.NewRegistry()
	report := w.run(t, cfg, backfill.Options{Metrics: backfill.NewMetrics(reg)})
	r := report.Tables[0]
	if got := counter(t, reg, "strangler_backfill_rows_total", "table", "patients", "result", "migrated"); got != 1 {
		t.Errorf(`strangler_backfill_rows_total{table="patients",result="migrated"} = %v, want 1 (row 11): rows taken as sent were migrated by the release before`, got)
	}
	var text bytes.Buffer
	report.WriteText(&text)
	if !strings.Contains(text.String(), "patients: 9 rows at or below the checkpoint of the release before per-row hashes were taken as sent by it, not sent; "+
		"a change made to them before the upgrade is not detected") {
		t.Errorf("the report does not say which rows were taken as sent:\n%s", text.String())
	}
	if n := patients(); n != 10 {
		t.Errorf("first run after upgrading: %d patients, want 10 (%d created twice)", n, n-10)
	}
	if r.Inserted != 1 || r.TakenAsSent != 9 || r.Present != 9 || r.Failed != 1 || len(r.Failures) != 1 {
		t.Errorf("first run after upgrading: inserted %d, taken as sent %d, already present %d, failed %d %+v; want 1 (row 11), 9, 9, 1 (row 1 refused again)",
			r.Inserted, r.TakenAsSent, r.Present, r.Failed, r.Failures)
	}
	var byron int64
	if err := w.pool.QueryRow(ctx, "SELECT count(*) FROM patients WHERE last_name = 'Byron'").Scan(&byron); err != nil || byron != 0 {
		t.Errorf("row 5, changed before the upgrade, was sent (%d, %v); want not sent", byron, err)
	}
	if _, ok, err := w.store.APIBackfillBaseline(ctx, "patients"); ok || err != nil {
		t.Errorf("the baseline mark is still set (%v) after the run recorded it", err)
	}
	if n, err := w.store.APIBackfillSentCount(ctx, "patients"); n != 11 || err != nil {
		t.Errorf("the ledger has %d rows sent (%v), want 11: 9 taken as sent, row 11 and row 1", n, err)
	}

	// Now the ledger is whole: a change made after the upgrade is seen.
	if _, err := w.legacy.Exec("UPDATE Patient SET LastName = 'Byron' WHERE PatientSerNum = 6"); err != nil {
		t.Fatal(err)
	}
	again := w.run(t, cfg, backfill.Options{}).Tables[0]
	if again.Inserted != 0 || again.TakenAsSent != 0 || again.Present != 9 || again.Failed != 2 || patients() != 10 {
		t.Errorf("second run: inserted %d, taken as sent %d, already present %d, failed %d (%+v), %d patients; want 0, 0, 9, 2 (row 1, row 6 changed), 10",
			again.Inserted, again.TakenAsSent, again.Present, again.Failed, again.Failures, patients())
	}
}

// apiupgradeOldLedger makes the ledger of a completed run look as the
// release before per-row hashes left it, once migration 0090 ran.
var apiupgradeOldLedger = []string{
	"DELETE FROM strangler_api_backfill_rows WHERE state = 'migrated'",
	"UPDATE strangler_api_backfill_rows SET body_hash = '', idempotency_key = ''",
	"UPDATE strangler_api_backfill_checkpoints SET baseline_key = last_key, plan = NULL", // as migration 0210 leaves it
}

// apiupgradeWorld is an API world whose table creates (POST /patients)
// behind a service that ignores Idempotency-Key, with a ledger on
// PostgreSQL or SQLite, exec running SQL on it and patients counting the
// service's patients. seen, if set, is called with each request.
func apiupgradeWorld(t *testing.T, pgLedger bool, seen func(*http.Request)) (w *apiWorld, cfg *config.Backfill, exec func(string) error, patients func() int64) {
	ctx := context.Background()
	w = newAPIWorld(t, 10, 2, modern.Faults{})
	// A service that does not honour Idempotency-Key: a request sent
	// again creates again.
	target, err := url.Parse(w.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Idempotency-Key")
			if seen != nil {
				seen(r.In)
			}
		},
		ErrorLog: log.New(io.Discard, "", 0), // a stopped run's requests
	}
	forgetful := httptest.NewServer(proxy)
	t.Cleanup(forgetful.Close)
	yaml, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	yaml = bytes.Replace(yaml, []byte(`method: PUT
        path: "/imports/patients/{PatientSerNum}"`), []byte(`method: POST
        path: "/patients"`), 1)
	yaml = bytes.ReplaceAll(yaml, []byte(w.srv.URL), []byte(forgetful.URL))
	if err := os.WriteFile(w.cfgPath, yaml, 0o600); err != nil {
		t.Fatal(err)
	}

	// The ledger, and a plain connection to it to make it look old.
	if pgLedger {
		dsn := testdb.Postgres(t)
		if w.store, err = store.Open(ctx, dsn, discard()); err != nil {
			t.Fatal(err)
		}
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		exec = func(q string) error { _, err := pool.Exec(ctx, q); return err }
	} else {
		path := filepath.Join(t.TempDir(), "apiupgrade_state.db")
		if w.store, err = store.Open(ctx, "sqlite:"+path, discard()); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		exec = func(q string) error { _, err := db.Exec(q); return err }
	}
	t.Cleanup(func() { w.store.Close() })

	cfg = w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	patients = func() int64 {
		var n int64
		if err := w.pool.QueryRow(ctx, "SELECT count(*) FROM patients WHERE last_name IN ('Lovelace', 'Byron')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return w, cfg, exec, patients
}

// TestApiupgradeARunStoppedBeforeTheBaselineIsWholeLeavesTheCheckpoint:
// the first run after upgrading stops while it records the baseline; the
// checkpoint must not move back to where it stopped, or the next run
// with --since-checkpoint would create the rows between it and the old
// checkpoint, which the ledger has nothing of, a second time. The mark
// stays until a plain run records the rest.
func TestApiupgradeARunStoppedBeforeTheBaselineIsWholeLeavesTheCheckpoint(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	stopAt := 0 // the request that stops the run, 0: none
	posts := 0
	w, cfg, exec, patients := apiupgradeWorld(t, false, func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost && r.URL.Path == "/patients" {
			if posts++; posts == stopAt {
				cancel()
			}
		}
	})
	cfg.Batch = 3
	if first := w.run(t, cfg, backfill.Options{}).Tables[0]; first.Inserted != 9 || patients() != 9 {
		t.Fatalf("first run: inserted %d, %d patients; want 9, 9", first.Inserted, patients())
	}
	// Row 5 failed under the release before (it went unanswered): the
	// run sends it again, and stops there, after rows 1 to 3 (row 1,
	// refused, is sent again too) were recorded.
	for _, q := range append(apiupgradeOldLedger[1:],
		"UPDATE strangler_api_backfill_rows SET state = 'failed', reason = 'retries_exhausted' WHERE row_key = '5'",
		apiupgradeOldLedger[0]) {
		if err := exec(q); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	posts, stopAt = 0, 2
	mu.Unlock()
	opts := backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()}
	if _, err := backfill.Run(ctx, cfg, opts); err == nil {
		t.Fatal("the run went on after it was cancelled")
	}
	// Recorded before plans were, it stands for any.
	if key, ok, _, err := w.store.APIBackfillCheckpoint(context.Background(), "patients", "any"); key != "10" || !ok || err != nil {
		t.Errorf("checkpoint %q (%v, %v) after a run stopped in the baseline, want 10, as the release before left it", key, ok, err)
	}
	if _, ok, err := w.store.APIBackfillBaseline(context.Background(), "patients"); !ok || err != nil {
		t.Errorf("the baseline mark was cleared (%v) by a run that stopped before recording it whole", err)
	}
	w.run(t, cfg, backfill.Options{SinceCheckpoint: true})
	w.run(t, cfg, backfill.Options{})
	// Row 5 may be created twice: the release before left it failed after
	// sending it, which no ledger can tell from not created. No other row
	// may be.
	var twice int64
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) - count(DISTINCT first_name) FROM patients
		WHERE first_name <> 'Ada5'`).Scan(&twice); err != nil || twice != 0 {
		t.Errorf("%d rows other than 5 created twice (%v) after --since-checkpoint and a plain run; want none", twice, err)
	}
	if _, ok, err := w.store.APIBackfillBaseline(context.Background(), "patients"); ok || err != nil {
		t.Errorf("the baseline mark is still set (%v) after a plain run recorded it", err)
	}
}

// TestApiupgradeWorkersWaitForThePlainRunThatRecordsTheBaseline: workers
// read every row, but take no baseline; while the mark is set they send
// nothing and say to run one plain run first.
func TestApiupgradeWorkersWaitForThePlainRunThatRecordsTheBaseline(t *testing.T) {
	w, cfg, exec, patients := apiupgradeWorld(t, true, nil)
	w.run(t, cfg, backfill.Options{})
	for _, q := range apiupgradeOldLedger {
		if err := exec(q); err != nil {
			t.Fatal(err)
		}
	}
	opts := backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard(), Worker: true, Run: "apiupgrade", WorkerID: "w1"}
	_, err := backfill.Run(context.Background(), cfg, opts)
	if err == nil || !strings.Contains(err.Error(), "run one plain run without --worker first") || patients() != 9 {
		t.Fatalf("a worker on a ledger from before the upgrade: %v, %d patients; want refused, 9 patients", err, patients())
	}
	w.run(t, cfg, backfill.Options{})
	if _, err := backfill.Run(context.Background(), cfg, opts); err != nil || patients() != 9 {
		t.Errorf("a worker after the plain run: %v, %d patients; want 9, none sent again", err, patients())
	}
}
