package backfill_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
)

// mapTable creates a source table in legacy and a target table in modern
// from their DDL, and makes bt the configuration's only table.
func (w *world) mapTable(t *testing.T, legacyDDL, modernDDL string, bt config.BackfillTable) {
	t.Helper()
	w.exec(t, legacyDDL)
	w.pg(t, modernDDL)
	w.cfg.Tables = []config.BackfillTable{bt}
}

// pg runs statements on modern.
func (w *world) pg(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := w.modern.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// legacyConn is one legacy connection in a monolith's session settings:
// sql_mode=” lets it store what strict mode refuses.
func (w *world) legacyConn(t *testing.T) *sql.Conn {
	t.Helper()
	conn, err := w.legacy.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), "SET SESSION sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// run backfills with opts and fails the test on an error.
func (w *world) run(t *testing.T, opts backfill.Options) *backfill.Report {
	t.Helper()
	if opts.Log == nil {
		opts.Log = discard()
	}
	rep, err := backfill.Run(context.Background(), w.cfg, opts)
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	return rep
}

// verify compares and fails the test on an error.
func (w *world) verify(t *testing.T, opts backfill.VerifyOptions) *backfill.VerifyReport {
	t.Helper()
	if opts.Log == nil {
		opts.Log = discard()
	}
	rep, err := backfill.Verify(context.Background(), w.cfg, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// tableReport is the report of one table.
func tableReport(t *testing.T, rep *backfill.Report, name string) backfill.TableReport {
	t.Helper()
	for _, tr := range rep.Tables {
		if tr.Table == name {
			return tr
		}
	}
	t.Fatalf("no table %s in the report", name)
	return backfill.TableReport{}
}

// cols maps each target column to the source column of the same name
// (lower-cased target names are fine: MariaDB column names are not case
// sensitive).
func cols(names ...string) map[string]config.Column {
	m := map[string]config.Column{}
	for _, n := range names {
		from, to, ok := strings.Cut(n, "=")
		if !ok {
			to = from
		}
		m[to] = config.Column{From: from}
	}
	return m
}

// failureReasons lists a report's failure reasons.
func failureReasons(tr backfill.TableReport) []string {
	var out []string
	for _, g := range tr.Failures {
		out = append(out, g.Reason)
	}
	return out
}

// keyRefusedThenQueryCopies checks that w's first table, of rows rows
// copied into target, is refused by backfill and verify alike with an
// error saying want before a row moves, and that the query the refusal
// suggests (keyed on key, its columns mapped as columns) copies every
// row, which verify then finds as on the source.
func keyRefusedThenQueryCopies(t *testing.T, w *world, target string, rows int64, want, key, query string, columns ...string) {
	t.Helper()
	rep, err := backfill.Run(t.Context(), w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), want) {
		read := int64(-1)
		if rep != nil && len(rep.Tables) > 0 {
			read = rep.Tables[0].Read
		}
		t.Errorf("backfill: %v (%d of %d rows read); want an error saying %q", err, read, rows, want)
	}
	if n := w.count(t, "SELECT count(*) FROM "+target); n != 0 {
		t.Errorf("%d rows copied before the refusal", n)
	}
	if _, err := backfill.Verify(t.Context(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: %v; want an error saying %q", err, want)
	}
	t.Run("the query the refusal suggests copies every row", func(t *testing.T) {
		bt := &w.cfg.Tables[0]
		bt.From, bt.Key, bt.Query, bt.Columns = "", key, query, cols(columns...)
		if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != rows || tr.Failed != 0 {
			t.Errorf("inserted %d, failed %d (%q); want %d and 0", tr.Inserted, tr.Failed, failureReasons(tr), rows)
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want no deviation", d.Tables)
		}
	})
}

// sentPaths counts the requests an API got, by path.
type sentPaths struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *sentPaths) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n[r.URL.Path]++
}

// newAlteredConsentAPI is newConsentAPI with its legacy table changed by
// queries, and the requests its API got counted.
func newAlteredConsentAPI(t *testing.T, queries ...string) (*apiWorld, *sentPaths) {
	t.Helper()
	sent := &sentPaths{n: map[string]int{}}
	w := newConsentAPI(t, sent)
	for _, q := range queries {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return w, sent
}

// sendsEveryConsentOnce runs w's six consents through API workers
// grouped by groupBy, sharing run on a PostgreSQL ledger, and checks
// that each was sent once.
func sendsEveryConsentOnce(t *testing.T, w *apiWorld, sent *sentPaths, groupBy, run string) {
	t.Helper()
	sent.mu.Lock()
	clear(sent.n)
	sent.mu.Unlock()
	cfg := w.config(t)
	cfg.Tables[0].TargetAPI.GroupBy = groupBy
	st := openStore(t, testdb.Postgres(t))
	rep, err := backfill.Run(context.Background(), cfg, backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard(),
		Worker: true, Run: run, WorkerID: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if tr := rep.Tables[0]; tr.Read != 6 || tr.Written() != 6 {
		t.Errorf("read %d, migrated %d; want all 6", tr.Read, tr.Written())
	}
	sent.mu.Lock()
	defer sent.mu.Unlock()
	for k := 1; k <= 6; k++ {
		if p := fmt.Sprintf("/consents/%d", k); sent.n[p] != 1 {
			t.Errorf("%s sent %d times, want once", p, sent.n[p])
		}
	}
}
