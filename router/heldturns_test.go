package router

import (
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
	kp := newKeyedPair(t, timeout)
	d := newDualWriteReplica(t, dsn, kp.legacy.URL, kp.modern.URL, timeout, dualWriteRoutes)

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
	// At once: a write held behind v1's turn would be refused, as v2 was.
	if code, body := put(t, d, "/keyed/8", `{"v":1}`); code != http.StatusOK {
		t.Errorf("PUT of another item: got %d %s, want 200 at once", code, body)
	}
	if n := testkit.Gather(t, d.reg).Value("strangler_refused_total", "route", "put-keyed", "reason", "resource_busy"); n != 1 {
		t.Errorf("strangler_refused_total{reason=resource_busy} = %v, want 1", n)
	}

	kp.recoverThenWriteV3(t, d, dsn)
}

// keyedPair is a primary_idempotent primary that applies each
// Idempotency-Key once and holds v1 of /keyed/7 (also spelled
// /keyed/%37/) past the facade's timeout until the test ends, and a
// secondary; both keep the bodies of /keyed/7 they got, in order.
type keyedPair struct {
	legacy, modern     *testkit.Backend
	mu                 sync.Mutex
	applied, secondary []string
}

func newKeyedPair(t *testing.T, timeout time.Duration) *keyedPair {
	p := &keyedPair{}
	keys := map[string]bool{}
	stop := make(chan struct{})
	p.legacy = testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		item := strings.TrimSuffix(r.URL.Path, "/") == "/keyed/7"
		p.mu.Lock()
		again := keys[key]
		keys[key] = true
		if !again && item {
			p.applied = append(p.applied, string(body))
		}
		p.mu.Unlock()
		if !again && item && string(body) == `{"v":1}` {
			select { // applied, answered past the facade's timeout
			case <-stop:
			case <-time.After(20 * timeout):
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	p.modern = testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		if strings.TrimSuffix(r.URL.Path, "/") == "/keyed/7" {
			p.secondary = append(p.secondary, string(body))
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	// Registered last, so run first: the servers' Close waits for the
	// held answer.
	t.Cleanup(func() { close(stop) })
	return p
}

// appliedCount is how many bodies of the item the primary applied.
func (p *keyedPair) appliedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.applied)
}

// secondaryGot reports whether the secondary got body of the item.
func (p *keyedPair) secondaryGot(body string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.secondary, body)
}

// recoverThenWriteV3 lets recovery resend v1 of the item through d, whose
// store is at dsn, then writes v3: both sides must have got v1 and v3,
// in that order, and never a refused v2.
func (p *keyedPair) recoverThenWriteV3(t *testing.T, d *dualWriteFacade, dsn string) {
	t.Helper()
	testdb.LapseRepairLeases(t, dsn)
	runWorker(t, d)
	testkit.Eventually(t, 20*time.Second, "recovery sends v1 again and the secondary gets it", func() bool { return p.secondaryGot(`{"v":1}`) })
	if code, body := put(t, d, "/keyed/7", `{"v":3}`); code != http.StatusOK {
		t.Errorf("PUT v3 once recovery recorded v1: got %d %s, want 200", code, body)
	}
	testkit.Eventually(t, 20*time.Second, "v3 reaches the secondary", func() bool { return p.secondaryGot(`{"v":3}`) })
	p.mu.Lock()
	defer p.mu.Unlock()
	if want := []string{`{"v":1}`, `{"v":3}`}; !slices.Equal(p.applied, want) {
		t.Errorf("the primary applied %q to the item, want %q: never the refused v2", p.applied, want)
	}
	if want := []string{`{"v":1}`, `{"v":3}`}; !slices.Equal(p.secondary, want) {
		t.Errorf("the secondary got %q of the item, want %q, as the primary applied them", p.secondary, want)
	}
}
