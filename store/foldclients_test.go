package store

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// oldName is a client version a release before migration 0240 counted
// by name: a fake person's name after the version.
const oldName = "5.2.1-JaneDoeFake"

// TestClientVersionsOfAnEarlierReleaseAreFoldedIntoOther: rows a release
// before migration 0240 counted by a name this one does not count by
// (free text after the version, build metadata) are, once the store is
// opened by this release, counted as this one counts them, their
// requests summed into the row already there, and the name is gone from
// the store and from TopLegacyClients.
func TestClientVersionsOfAnEarlierReleaseAreFoldedIntoOther(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		h1 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		h2 := h1.Add(time.Hour)
		dsn := before(t, 240, b.fresh(t), nil, func(s *Store) {
			if err := s.AddLegacyClients(ctx, []domain.ClientCount{
				{Route: "records", Hour: h1, Client: oldName, Requests: 3},
				{Route: "records", Hour: h1, Client: "other", Requests: 2},
				{Route: "records", Hour: h1, Client: "unknown", Requests: 1},
				{Route: "records", Hour: h1, Client: "5.2.1", Requests: 10},
				{Route: "records", Hour: h1, Client: "5.2.1+sha.1a2b", Requests: 4},
				{Route: "records", Hour: h2, Client: oldName, Requests: 5},
				{Route: "records", Hour: h2, Client: "5.2.1_MRN99", Requests: 6},
				{Route: "orders", Hour: h1, Client: oldName, Requests: 7},
				{Route: "orders", Hour: h1, Client: "PatientApp/5.2.1-rc1", Requests: 8},
			}); err != nil {
				t.Fatal(err)
			}
		})
		s := openStore(t, dsn, nil)
		type row struct {
			route  string
			hour   time.Time
			client string
			n      int64
		}
		var got []row
		rs, err := s.db.QueryContext(ctx, `SELECT route, hour, client, requests FROM strangler_legacy_clients ORDER BY route, hour, client`)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.route, scanTime(&r.hour), &r.client, &r.n); err != nil {
				t.Fatal(err)
			}
			r.hour = r.hour.UTC()
			got = append(got, r)
		}
		if err := rs.Close(); err != nil {
			t.Fatal(err)
		}
		want := []row{
			{"orders", h1, "PatientApp/5.2.1-rc1", 8},
			{"orders", h1, "other", 7},
			{"records", h1, "5.2.1", 14},
			{"records", h1, "other", 5},
			{"records", h1, "unknown", 1},
			{"records", h2, "other", 11},
		}
		if !slices.Equal(got, want) {
			t.Errorf("rows after the upgrade\n got %v\nwant %v", got, want)
		}
		top, err := s.TopLegacyClients(ctx, "records", h1, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range top {
			if strings.Contains(c.Client, "JaneDoe") || strings.Contains(c.Client, "MRN") {
				t.Errorf("routes report still shows %q", c.Client)
			}
		}
		// Again, as a second replica's open would: nothing changes.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		unapply(t, dsn, 240)
		again := openStore(t, dsn, nil)
		top2, err := again.TopLegacyClients(ctx, "records", h1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(top, top2) {
			t.Errorf("folding again changed the counts: %v, then %v", top, top2)
		}
	})
}

// TestAFoldedClientVersionLeavesNoByteInTheSQLiteFiles: the name an
// earlier release stored is gone from the database file and its
// write-ahead log too, once that is checkpointed, as an erased write is
// (secure_delete, journal_size_limit).
func TestAFoldedClientVersionLeavesNoByteInTheSQLiteFiles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	hour := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	dsn := before(t, 240, "sqlite:"+path, nil, func(s *Store) {
		if err := s.AddLegacyClients(ctx, []domain.ClientCount{
			{Route: "records", Hour: hour, Client: oldName, Requests: 3},
			{Route: "records", Hour: hour, Client: "5.2.1", Requests: 1},
		}); err != nil {
			t.Fatal(err)
		}
	})
	if b, err := os.ReadFile(path); err != nil || !bytes.Contains(b, []byte(oldName)) {
		t.Fatalf("the earlier release's file does not hold the name (%v): the test shows nothing", err)
	}
	s := openStore(t, dsn, nil)
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLegacyClients(ctx, []domain.ClientCount{{Route: "other", Hour: hour, Client: "1.0", Requests: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte(oldName)); n > 0 {
			t.Errorf("%s holds the folded name %d times", filepath.Base(path+suffix), n)
		}
	}
}

// TestFoldingClientVersionsLosesNoFlushOfAnEarlierRelease: a replica of
// the earlier release flushing its counts while a new one's migration
// folds them (a rolling upgrade on PostgreSQL) neither loses requests nor
// deadlocks with it. Without the table lock, the fold read a name's rows,
// waited for the flush's row, then deleted the row the flush had added
// to meanwhile: its request was lost.
func TestFoldingClientVersionsLosesNoFlushOfAnEarlierRelease(t *testing.T) {
	ctx := context.Background()
	h := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	dsn := before(t, 240, testdb.Postgres(t), nil, func(s *Store) {
		if err := s.AddLegacyClients(ctx, []domain.ClientCount{
			{Route: "a", Hour: h, Client: oldName, Requests: 1},
			{Route: "a", Hour: h, Client: "other", Requests: 1},
			{Route: "b", Hour: h, Client: oldName, Requests: 1},
		}); err != nil {
			t.Fatal(err)
		}
	})
	_, db, err := openDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The earlier release's flush, as AddLegacyClients writes: route a's
	// rows, then route b's.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var pid int
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	add := func(route, client string) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO strangler_legacy_clients AS c (route, hour, client, requests) VALUES ($1, $2, $3, 1)
			ON CONFLICT (route, hour, client) DO UPDATE SET requests = c.requests + excluded.requests`, route, h, client)
		return err
	}
	if err := add("a", "other"); err != nil {
		t.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := Open(octx, dsn, testLogger(t))
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	testkit.Eventually(t, 20*time.Second, "the migration waits for the flush", func() bool {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n)
		return err == nil && n > 0
	})
	if err := add("b", oldName); err != nil {
		t.Fatalf("the flush: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the flush: %v", err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("the upgrade: %v", err)
	}
	got := map[string]int64{}
	rs, err := db.QueryContext(ctx, `SELECT route, client, requests FROM strangler_legacy_clients`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var route, client string
		var n int64
		if err := rs.Scan(&route, &client, &n); err != nil {
			t.Fatal(err)
		}
		got[route+" "+client] = n
	}
	if want := map[string]int64{"a other": 3, "b other": 2}; !maps.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

// TestTheHourlyPurgeFoldsWhatAnEarlierReleaseCountsAfterTheUpgrade: a
// replica of an earlier release still running after the migration (a
// rolling upgrade) goes on counting client versions by name; the next
// purge folds them as the migration did, keeping their requests.
func TestTheHourlyPurgeFoldsWhatAnEarlierReleaseCountsAfterTheUpgrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil) // on the clock the migration was recorded by
		hour := time.Now().UTC().Truncate(time.Hour)
		// As the earlier release's flush writes them.
		if err := s.AddLegacyClients(ctx, []domain.ClientCount{
			{Route: "records", Hour: hour, Client: oldName, Requests: 3},
			{Route: "records", Hour: hour, Client: "other", Requests: 1},
			{Route: "records", Hour: hour, Client: "5.2.1", Requests: 2},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PurgeCounts(ctx, hour.Add(-90*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		top, err := s.TopLegacyClients(ctx, "records", hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.ClientCount{{Route: "records", Client: "other", Requests: 4}, {Route: "records", Client: "5.2.1", Requests: 2}}
		if !slices.Equal(top, want) {
			t.Errorf("after the purge %v, want %v", top, want)
		}
	})
}
