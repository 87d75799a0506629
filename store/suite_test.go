package store

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

// backend is one kind of database the shared suite runs against.
type backend struct {
	name string
	// fresh returns the DSN of a new, empty store, removed after the test.
	fresh func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "strangler.db")
		}},
		{"postgres", func(t *testing.T) string { return testdb.Postgres(t) }},
	}
}

// forEachBackend runs test once per back-end, in parallel subtests: every
// behaviour of the store is tested on both.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

// openStore opens dsn for the rest of the test, on clock c if not nil.
func openStore(t *testing.T, dsn string, c *testClock) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if c != nil {
		s.now, s.leaseNow = c.Now, c.Now
		if s.dialect.name == "postgres" {
			c.follow(t, dsn, s)
		}
	}
	return s
}

// newStore opens a new, empty store of kind b on clock c.
func newStore(t *testing.T, b backend, c *testClock) *Store {
	t.Helper()
	return openStore(t, b.fresh(t), c)
}

// testLogger logs to the test's output, shown when it fails.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// testClock is a clock tests move by hand. The PostgreSQL stores on it
// run their leases, due times, keys' and sessions' ages on the server's clock, which no test
// can move: for them, moving the clock moves every lease and due time of
// their schema as much the other way, which is the same to every lease
// and due condition.
type testClock struct {
	mu     sync.Mutex
	t      time.Time
	leases map[string]func(time.Duration) // by DSN: stores sharing a schema share its leases
}

// t0 is where test clocks start: a time with no sub-microsecond part.
var t0 = time.Date(2030, 3, 4, 10, 15, 0, 0, time.UTC)

func newClock() *testClock { return &testClock{t: t0} }

// longAgo is a time before every clock a test runs on, the store's
// included: a row the test writes due then is due at once.
var longAgo = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	for _, pass := range c.leases {
		pass(d)
	}
	return c.t
}

// follow makes the leases and due times of s's schema pass as c advances.
func (c *testClock) follow(t *testing.T, dsn string, s *Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leases == nil {
		c.leases = map[string]func(time.Duration){}
	}
	if _, ok := c.leases[dsn]; ok {
		return
	}
	c.leases[dsn] = func(d time.Duration) {
		for _, q := range []string{
			`UPDATE strangler_repairs SET lease_until = lease_until - $1 * interval '1 microsecond' WHERE lease_until IS NOT NULL`,
			`UPDATE strangler_repairs SET next_attempt_at = next_attempt_at - $1 * interval '1 microsecond' WHERE next_attempt_at IS NOT NULL`,
			`UPDATE strangler_leases SET until = until - $1 * interval '1 microsecond'`,
			`UPDATE strangler_api_backfill_groups SET lease_until = lease_until - $1 * interval '1 microsecond' WHERE lease_until IS NOT NULL`,
			`UPDATE strangler_idempotency_keys SET at = at - $1 * interval '1 microsecond'`,
			`UPDATE strangler_sessions SET created_at = created_at - $1 * interval '1 microsecond', last_seen = last_seen - $1 * interval '1 microsecond'`,
		} {
			if _, err := s.db.Exec(q, d.Microseconds()); err != nil {
				t.Errorf("passing %v of lease time: %v", d, err)
			}
		}
	}
}

// intent returns a write to resource with a plausible payload.
func intent(id, resource string) domain.Intent {
	return domain.Intent{
		ID:        id,
		Route:     "update-patient",
		Resource:  resource,
		Method:    http.MethodPut,
		StandsFor: http.MethodPut,
		Target:    "/patients/42?notify=1",
		Header: http.Header{
			"Content-Type": {"application/json"},
			"X-Request-Id": {"req-" + id},
		},
		Body:    []byte(`{"name":"` + id + `"}`),
		Primary: "legacy",
	}
}

// journal journals a write to resource that the primary accepted, as the
// facade does: BeginWrite, then RecordOutcome with 200.
func journal(t *testing.T, s *Store, id, resource string) {
	t.Helper()
	ctx := context.Background()
	if err := s.BeginWrite(ctx, intent(id, resource), time.Minute); err != nil {
		t.Fatalf("BeginWrite(%s): %v", id, err)
	}
	if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: 200}); err != nil {
		t.Fatalf("RecordOutcome(%s): %v", id, err)
	}
}

// ids returns the ids of repairs, in order.
func ids(rs []domain.Repair) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// claimIDs claims what is due now for owner and returns the ids.
func claimIDs(t *testing.T, s *Store, owner string) []string {
	t.Helper()
	rs, err := s.ClaimRepairs(context.Background(), owner, 100, time.Minute)
	if err != nil {
		t.Fatalf("ClaimRepairs: %v", err)
	}
	return ids(rs)
}

func state(t *testing.T, s *Store, id string) domain.State {
	t.Helper()
	r, err := s.GetRepair(context.Background(), id, false)
	if err != nil {
		t.Fatalf("GetRepair(%s): %v", id, err)
	}
	return r.State
}

// leasedFor reports whether a lease taken just now on a store of kind b
// runs until until for lease: on the test clock c with SQLite, on the
// server's clock (the machine's, for the test server) with PostgreSQL.
func leasedFor(b backend, c *testClock, until time.Time, lease time.Duration) bool {
	if b.name == "sqlite" {
		return until.Equal(c.Now().Add(lease))
	}
	left := time.Until(until)
	return left > lease-10*time.Second && left <= lease+time.Second
}
