package router

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/shadow"
	"strangler/store"
)

// pgSamples keeps samples in the state store, as the facade does.
type pgSamples struct{ st *store.Store }

func (p pgSamples) Add(ctx context.Context, s shadow.Sample) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return p.st.AddSample(ctx, s.Route, s.At, b, 100)
}

func (p pgSamples) List(context.Context, string, int) ([]shadow.Sample, error) { return nil, nil }

// TestMismatchSamplesDoNotTakeTheStoresConnections: another session holds
// a lock on PostgreSQL's samples table (a maintenance job, a stuck
// transaction) while a shadow route mismatches 40 times. Storing samples
// holds at most one of the store's connections, for a bounded time: the
// store still answers the facade's other statements (the journal's among
// them), the shadow copies end instead of waiting for the lock, and once
// it is released samples are stored again.
func TestMismatchSamplesDoNotTakeTheStoresConnections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn := testdb.Postgres(t)
	st, err := store.Start(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testkit.Eventually(t, 10*time.Second, "the store's hash key", st.Hasher().Ready)

	locker, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	lock, err := locker.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `LOCK TABLE strangler_samples IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	legacy := newBackend(t, answer(200, `{"v":1}`))
	modern := newBackend(t, answer(200, `{"v":2}`))
	cfg, err := configfile.Parse("test.yaml", fmt.Appendf(nil, `backends:
  legacy: {url: %q}
  modern: {url: %q}
routes:
  - {name: s, match: "GET /patients/{id}", mode: shadow}
`, legacy.URL, modern.URL), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := New(Deps{Metrics: NewMetrics(reg), Log: slog.New(slog.DiscardHandler), Samples: pgSamples{st}, Hasher: st.Hasher()})
	table, err := r.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Swap(table)
	srv := testkit.NewBackend(t, r.ServeHTTP)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(i int) {
		resp, err := client.Get(fmt.Sprintf("%s/patients/%d", srv.URL, i))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /patients/%d: %v, %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(-1)
	// Its copy is compared, then waits on the lock with its sample.
	testkit.Eventually(t, 30*time.Second, "the first copy compared", func() bool {
		return testkit.Gather(t, reg).Value("strangler_shadow_comparisons_total", "route", "s", "result", "mismatch") == 1
	})

	const mismatches = 40
	for i := range mismatches {
		get(i)
	}
	testkit.Eventually(t, 10*time.Second, "every copy compared", func() bool {
		return testkit.Gather(t, reg).Value("strangler_shadow_comparisons_total", "route", "s", "result", "mismatch") == mismatches+1
	})
	probe, done := context.WithTimeout(ctx, 3*time.Second)
	defer done()
	if _, err := st.Overrides(probe); err != nil {
		t.Errorf("with the samples table locked, after %d mismatches the store did not answer another statement within 3 s: %v", mismatches, err)
	}
	client.CloseIdleConnections()
	// The copies themselves are counted, not all goroutines: under load
	// the pool and the test's servers keep a varying few of their own,
	// which a margin on the total let through or not by chance.
	testkit.Eventually(t, 15*time.Second, "the shadow copies end", func() bool { return shadowJobsRunning() == 0 })

	lock.Rollback()
	get(mismatches)
	testkit.Eventually(t, 15*time.Second, "a sample stored once the lock is gone", func() bool {
		rows, err := st.Samples(ctx, "s", 0)
		return err == nil && len(rows) > 0
	})
}

// shadowJobsRunning counts the goroutines running a shadow copy.
func shadowJobsRunning() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "router.(*shadowJob).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}
