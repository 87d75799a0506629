package router

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAnUnansweredWriteKeepsItsResourcesTurnUntilRecoveryRecordsIt: a
// PUT of an item to a primary that honours Idempotency-Key, which
// applies it and answers too late (504), stays sent for recovery to
// send again. Were a second PUT of the item (spelled /keyed/%37/) to
// reach the primary meanwhile, it would be applied after the first and
// recorded before it, as recovery records the first only once its lease
// passes: the secondary would end with the older body, for good. The
// second waits its turn, is refused with 503 resource_busy and reaches no
// backend; a PUT of another item is not held. Once recovery has sent the
// first again and recorded it, a third PUT of the item goes through and
// both sides end with it. The same on SQLite, which one process uses, as
// on PostgreSQL, which replicas share.
func TestAnUnansweredWriteKeepsItsResourcesTurnUntilRecoveryRecordsIt(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		unansweredWriteKeepsItsTurn(t, "sqlite:"+filepath.Join(t.TempDir(), "strangler.db"))
	})
	t.Run("postgres", func(t *testing.T) { unansweredWriteKeepsItsTurn(t, testdb.Postgres(t)) })
}

func unansweredWriteKeepsItsTurn(t *testing.T, dsn string) {
	const timeout = 300 * time.Millisecond
	var mu sync.Mutex
	var applied []string // the primary's bodies of /keyed/7, in the order applied
	keys := map[string]bool{}
	stop := make(chan struct{})
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		item := strings.TrimSuffix(r.URL.Path, "/") == "/keyed/7" // also /keyed/%37/
		mu.Lock()
		again := keys[key]
		keys[key] = true
		if !again && item {
			applied = append(applied, string(body))
		}
		mu.Unlock()
		if !again && item && string(body) == `{"v":1}` {
			select { // applied, answered past the facade's timeout
			case <-stop:
			case <-time.After(20 * timeout):
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	defer close(stop)
	var smu sync.Mutex
	var secondary []string // the secondary's bodies of /keyed/7, in the order got
	modern := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		smu.Lock()
		if strings.TrimSuffix(r.URL.Path, "/") == "/keyed/7" {
			secondary = append(secondary, string(body))
		}
		smu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	d := newDualWriteReplica(t, dsn, legacy.URL, modern.URL, timeout, dualWriteRoutes)

	if code, body := put(t, d, "/keyed/7", `{"v":1}`); code != http.StatusGatewayTimeout {
		t.Fatalf("PUT v1: got %d %s, want 504", code, body)
	}
	start := time.Now()
	code, body := put(t, d, "/keyed/%37/", `{"v":2}`)
	var e struct{ Error string }
	if json.Unmarshal([]byte(body), &e); code != http.StatusServiceUnavailable || e.Error != errResourceBusy.Error() {
		t.Errorf("PUT v2 while v1 is with recovery: got %d %s, want 503 saying earlier writes are with the primary", code, body)
	}
	if took := time.Since(start); took < 2*timeout {
		t.Errorf("PUT v2 was refused after %v, want after its wait of %v", took, 2*timeout)
	}
	start = time.Now()
	if code, body := put(t, d, "/keyed/8", `{"v":1}`); code != http.StatusOK || time.Since(start) >= timeout {
		t.Errorf("PUT of another item: got %d %s after %v, want 200 at once", code, body, time.Since(start))
	}
	if n := testkit.Gather(t, d.reg).Value("strangler_refused_total", "route", "put-keyed", "reason", "resource_busy"); n != 1 {
		t.Errorf("strangler_refused_total{reason=resource_busy} = %v, want 1", n)
	}

	lapseWriteLeases(t, dsn)
	runWorker(t, d)
	testkit.Eventually(t, 20*time.Second, "recovery sends v1 again and the secondary gets it", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return slices.Contains(secondary, `{"v":1}`)
	})
	if code, body := put(t, d, "/keyed/7", `{"v":3}`); code != http.StatusOK {
		t.Errorf("PUT v3 once recovery recorded v1: got %d %s, want 200", code, body)
	}
	testkit.Eventually(t, 20*time.Second, "v3 reaches the secondary", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return slices.Contains(secondary, `{"v":3}`)
	})
	mu.Lock()
	defer mu.Unlock()
	smu.Lock()
	defer smu.Unlock()
	if want := []string{`{"v":1}`, `{"v":3}`}; !slices.Equal(applied, want) {
		t.Errorf("the primary applied %q to the item, want %q: never the refused v2", applied, want)
	}
	if want := []string{`{"v":1}`, `{"v":3}`}; !slices.Equal(secondary, want) {
		t.Errorf("the secondary got %q of the item, want %q, as the primary applied them", secondary, want)
	}
}

// lapseWriteLeases ends the leases of the sent writes in the store at
// dsn, as the passing of the lease (tens of seconds) on the store's
// clock would: recovery then takes them up.
func lapseWriteLeases(t *testing.T, dsn string) {
	t.Helper()
	driver, name, past := "pgx", dsn, any(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name, past = "sqlite", path, "2000-01-01T00:00:00.000000Z"
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE strangler_repairs SET lease_until = $1 WHERE state = 'sent'`, past); err != nil {
		t.Fatal(err)
	}
}
