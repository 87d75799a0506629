package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/modern"
	"strangler/store"
)

// apistoreStore opens a PostgreSQL state store through a proxy the test
// can silence.
func apistoreStore(t *testing.T, dsn string) (*store.Store, *testdb.Proxy) {
	t.Helper()
	p, via := testdb.NewProxy(t, dsn)
	st, err := store.Open(context.Background(), via, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, p
}

// appliedOnce checks that the API applied every row the fixture does not
// have it refuse, each once.
func (w *apiWorld) appliedOnce(t *testing.T, rows int) {
	t.Helper()
	want := int64(0)
	for k := 1; k <= rows; k++ {
		if !rejected(k) {
			want++
		}
	}
	var imports, distinct int64
	if err := w.pool.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT patient_id) FROM import_log").Scan(&imports, &distinct); err != nil {
		t.Fatal(err)
	}
	if imports != want || distinct != want {
		t.Errorf("the API applied %d imports of %d patients, want each of the %d once", imports, distinct, want)
	}
}

// TestAPIBackfillStopsOnASilentStateStoreAndAReRunFinishes: the state
// store (PostgreSQL) drops every packet in the middle of a plain run.
// The run must stop within a bound, saying the state store did not
// answer, rather than wait on TCP for a quarter of an hour; once the
// store is back a re-run sends the rest, every row applied once.
func TestAPIBackfillStopsOnASilentStateStoreAndAReRunFinishes(t *testing.T) {
	const rows = 1500
	w := newAPIWorld(t, rows, 10, modern.Faults{})
	cfg := w.config(t)
	cfg.Batch, cfg.Rate = 100, 300
	cfg.BatchTimeout = config.Duration(time.Second)
	dsn := testdb.Postgres(t)
	st, proxy := apistoreStore(t, dsn)
	opts := backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard()}
	done := make(chan error, 1)
	go func() {
		_, err := backfill.Run(context.Background(), cfg, opts)
		done <- err
	}()
	testkit.Eventually(t, 60*time.Second, "300 rows sent", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.arrivals) >= 300
	})
	proxy.Silence()
	silenced := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the run still waits on the silent state store after 3 minutes")
	}
	t.Logf("the run stopped %s after the state store went silent: %v", time.Since(silenced).Round(time.Second), err)
	if err == nil || !strings.Contains(err.Error(), "the state store did not answer within batch_timeout (1s)") {
		t.Fatalf("run error %v, want it to say the state store did not answer within batch_timeout", err)
	}

	proxy.Restore()
	// The stopped run could not let go of its tables: its hold lapses.
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), "DELETE FROM strangler_api_backfill_holds"); err != nil {
		t.Fatal(err)
	}
	rep, err := backfill.Run(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if tr := rep.Tables[0]; tr.Read != rows {
		t.Errorf("the re-run read %d rows, want all %d compared", tr.Read, rows)
	}
	w.appliedOnce(t, rows)
}
