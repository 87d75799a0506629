package backfill_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/internal/testdb"
	"strangler/legacy"
	"strangler/modern"
	"strangler/store"
)

// world is a legacy and a modern database, each with its reference API,
// and the reference backfill configuration between them.
type world struct {
	legacy *sql.DB
	modern *pgxpool.Pool
	cfg    *config.Backfill
	// legacyURL and modernDSN are what the configuration names.
	legacyURL, modernDSN string
	legacyAPI, modernAPI http.Handler
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newWorld makes fresh databases, fills legacy with sizes and loads the
// reference configuration with vars overriding its defaults.
func newWorld(t *testing.T, sizes fixture.Sizes, vars map[string]string) *world {
	t.Helper()
	ctx := context.Background()
	myDSN, pgURL := testdb.MySQL(t), testdb.Postgres(t)
	ldb, err := legacy.Open(ctx, myDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldb.Close() })
	if sizes.Patients > 0 {
		if err := fixture.Generate(ctx, ldb, sizes); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := modern.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w := &world{legacy: ldb, modern: pool, legacyURL: fixture.MySQLURL(myDSN), modernDSN: pgURL,
		legacyAPI: legacy.New(ldb, discard()), modernAPI: modern.New(pool, discard())}
	w.cfg = w.config(t, vars)
	return w
}

// pacedRows is how many patients a pacedPatients world copies.
const pacedRows = 1200

// pacedPatients is a world whose backfill copies the pacedRows patients
// of its one table in batches of 100 at rate rows a second: a run slow
// enough for a test to cut, silence or change something while it copies.
func pacedPatients(t *testing.T, rate int) *world {
	t.Helper()
	w := newWorld(t, fixture.Sizes{Patients: pacedRows}, nil)
	w.cfg.Tables = w.cfg.Tables[:1]
	w.cfg.Batch, w.cfg.Rate = 100, rate
	return w
}

func (w *world) config(t *testing.T, vars map[string]string) *config.Backfill {
	t.Helper()
	all := map[string]string{"LEGACY_DSN": w.legacyURL, "MODERN_DSN": w.modernDSN, "BACKFILL_BATCH": "500"}
	maps.Copy(all, vars)
	cfg, err := configfile.Load("testdata/reference.yaml", configfile.Env{Getenv: func(k string) string { return all[k] }, ReadFile: filecap.Read})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Backfill
}

func (w *world) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := w.legacy.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (w *world) count(t *testing.T, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := w.modern.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// openStore opens the state store at dsn, which an API run keeps its
// ledger in; it is closed when the test ends.
func openStore(t *testing.T, dsn string, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, discard(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// get fetches path from an API and returns status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// waitFor polls cond for up to a minute: generous, as a loaded CI machine
// took over 10 s for an API run to import its first 600 rows.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counter reads one sample of a counter or gauge from reg; labels are
// name, value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
