package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// TestReadRepairDuringAStoreOutage: PostgreSQL goes away while a fallback
// route with read repair serves 1,124 not_found fallbacks (more than the
// queue holds). The store gets one attempt per backoff, not one per
// fallback; the log has a line per attempt and one for the full queue,
// not one per key; and once the store is back the keys the queue held
// reach it.
func TestReadRepairDuringAStoreOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxy, dsn := testdb.NewProxy(t, testdb.Postgres(t))
	st, err := store.Start(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	legacy := newBackend(t, answer(200, "legacy"))
	modern := newBackend(t, answer(404, "missing"))
	cfg, err := configfile.Parse("test.yaml", fmt.Appendf(nil, `backends:
  legacy: {url: %q}
  modern: {url: %q}
routes:
  - {name: p, match: "GET /patients/{id}", mode: fallback, entity: patients, read_repair: true}
`, legacy.URL, modern.URL), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Logs{}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: logs.Logger(slog.LevelInfo), RepairKeys: st})
	table, err := r.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Swap(table)
	done := make(chan error)
	go func() { done <- r.RunRepairs(ctx) }()
	defer func() { cancel(); <-done }()
	srv := testkit.NewBackend(t, r.ServeHTTP)

	proxy.Cut()
	const fallbacks = repairQueue + 100
	start := time.Now()
	for i := range fallbacks {
		resp, err := http.Get(fmt.Sprintf("%s/patients/%d", srv.URL, i))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /patients/%d with the store away: %v, %v; want legacy's 200", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(time.Second) // the outage goes on a little without traffic
	outage := time.Since(start)
	failed := 0
	for _, l := range logs.Lines(t, "") {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "recording a read-repair key failed") {
			failed++
		}
	}
	// 100 ms doubling to 5 s: a dozen attempts in 10 s at most.
	if limit := 2 + int(outage/(100*time.Millisecond)); failed > 12 || failed > limit {
		t.Errorf("over a %v outage the store got %d attempts to record read-repair keys (one per failure line), want at most 12: one per backoff, not one per fallback",
			outage.Round(time.Millisecond), failed)
	}
	if full := logs.Lines(t, "read-repair queue full; keys are not recorded until it has room (no line per key)"); len(full) != 1 {
		t.Errorf("%d log lines for a full read-repair queue, want 1 for the run of %d keys it dropped", len(full), fallbacks-repairQueue-1)
	}

	proxy.Restore()
	var got []string
	testkit.Eventually(t, 20*time.Second, "the held keys are recorded once the store is back", func() bool {
		got, err = st.PendingRepairKeys(ctx, "patients", 2*fallbacks)
		return err == nil && len(got) >= repairQueue+1
	})
	want := map[string]bool{}
	for i := range repairQueue + 1 { // the key in hand and the queue's
		want[fmt.Sprint(i)] = true
	}
	for _, k := range got {
		if !want[k] {
			t.Errorf("key %q recorded; only the first %d fallbacks' keys had room", k, repairQueue+1)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("%d keys the queue held were not recorded once the store was back", len(want))
	}
}
