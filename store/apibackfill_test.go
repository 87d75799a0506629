package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAPIBackfillLedgerKeepsFailuresOnlyUntilTheRowMigrates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil)
		run, err := s.StartAPIBackfill(ctx, "full")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _, err := s.APIBackfillCheckpoint(ctx, "patients", "p1"); ok || err != nil {
			t.Fatalf("a new ledger has a checkpoint (%v)", err)
		}
		cp := "40"
		fail := APIBackfillRow{Key: "17", Status: 422, Reason: "rejected", Message: "email is not an address", Payload: `{"email":"#a1b2"}`}
		if err := s.RecordAPIBackfill(ctx, run, "patients", "p1", []APIBackfillRow{{Key: "1"}, {Key: "2"}}, []APIBackfillRow{fail, {Key: "30", Status: 503, Reason: "retries_exhausted"}}, &cp); err != nil {
			t.Fatal(err)
		}
		if got, ok, _, _ := s.APIBackfillCheckpoint(ctx, "patients", "p1"); !ok || got != "40" {
			t.Errorf("checkpoint %q, %v; want 40", got, ok)
		}
		// Recorded for another plan of the table, it is none.
		if got, ok, stale, err := s.APIBackfillCheckpoint(ctx, "patients", "p2"); ok || !stale || err != nil {
			t.Errorf("checkpoint of plan p1 asked for p2: %q, ok %v, stale %v (%v); want none, stale", got, ok, stale, err)
		}
		page, err := s.APIBackfillFailures(ctx, "patients", "", 1)
		if err != nil || len(page) != 1 || page[0] != fail {
			t.Fatalf("first page of failures: %+v, %v; want %+v", page, err, fail)
		}
		if next, _ := s.APIBackfillFailures(ctx, "patients", page[0].Key, 10); len(next) != 1 || next[0].Key != "30" {
			t.Errorf("second page: %+v, want key 30", next)
		}
		// Key 17 migrates on a re-run of the failures; the checkpoint stays.
		if err := s.RecordAPIBackfill(ctx, run, "patients", "p1", []APIBackfillRow{{Key: "17", Status: 200, BodyHash: "h:17", IdempotencyKey: "patients:17"}}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.APIBackfillFailures(ctx, "patients", "", 10); len(left) != 1 || left[0].Key != "30" {
			t.Errorf("failures after 17 migrated: %+v, want only 30", left)
		}
		// Of a migrated row the ledger keeps what was sent (its hash and
		// key), not its earlier failure's message or payload.
		sent, err := s.APIBackfillSentRows(ctx, "patients", []string{"17", "30", "99"})
		if err != nil || len(sent) != 2 || sent["17"] != (APIBackfillSent{BodyHash: "h:17", IdempotencyKey: "patients:17", Migrated: true, Run: run}) ||
			sent["30"] != (APIBackfillSent{Reason: "retries_exhausted", Run: run}) {
			t.Errorf("rows sent: %+v, %v", sent, err)
		}
		if n, err := s.APIBackfillSentCount(ctx, "patients"); n != 1 || err != nil {
			t.Errorf("%d rows sent, %v; want 1", n, err)
		}
		var kept []string
		rows, err := s.db.QueryContext(ctx, "SELECT row_key FROM strangler_api_backfill_rows WHERE state = 'failed' OR message <> '' OR payload <> '' ORDER BY row_key")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			rows.Scan(&k)
			kept = append(kept, k)
		}
		rows.Close()
		if !slices.Equal(kept, []string{"30"}) {
			t.Errorf("the ledger holds rows %v, want only the failed 30", kept)
		}
		if got, _, _, _ := s.APIBackfillCheckpoint(ctx, "patients", "p1"); got != "40" {
			t.Errorf("a re-run by key moved the checkpoint to %q", got)
		}
		if err := s.FinishAPIBackfill(ctx, run, "succeeded", []byte(`{"mode":"full"}`)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAPIBackfillGroupsAreLeasedOnceAndTakenOverWhenTheLeaseRunsOut: two
// workers lease different groups, a group whose lease ran out goes to
// the next worker that asks, and its former holder can no longer record
// rows of it. A SQLite store refuses shared runs.
func TestAPIBackfillGroupsAreLeasedOnceAndTakenOverWhenTheLeaseRunsOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newClock()
		s := openStore(t, b.fresh(t), clock)
		if b.name == "sqlite" {
			if err := s.CanShareRuns(); err == nil || !strings.Contains(err.Error(), "SQLite") {
				t.Fatalf("a SQLite store shares runs (%v)", err)
			}
			if _, err := s.ShareAPIBackfillGroups(ctx, "nightly", "patients", "p1", func(context.Context) ([]APIBackfillGroup, error) { return nil, nil }); err == nil {
				t.Fatal("a SQLite store took a shared run's groups")
			}
			return
		}
		h1, h2 := "h1", "h2"
		cuts := 0
		cut := func(context.Context) ([]APIBackfillGroup, error) {
			cuts++
			return []APIBackfillGroup{{Value: &h1}, {Value: &h2}}, nil
		}
		// A second worker does not cut the table again.
		for range 2 {
			if stale, err := s.ShareAPIBackfillGroups(ctx, "nightly", "patients", "p1", cut); stale || err != nil {
				t.Fatal(stale, err)
			}
		}
		if cuts != 1 {
			t.Errorf("two workers cut the table %d times, want once", cuts)
		}
		// A worker with another plan of the table cuts it afresh.
		if stale, err := s.ShareAPIBackfillGroups(ctx, "nightly", "patients", "p2", cut); !stale || err != nil || cuts != 2 {
			t.Errorf("a worker of plan p2 found the groups of p1 stale: %v (%v), and cut the table %d times; want stale, twice", stale, err, cuts)
		}
		// and a worker of the plan before may lease none of them.
		if g, ok, err := s.ClaimAPIBackfillGroup(ctx, "nightly", "patients", "p1", "w0", time.Hour); ok || !errors.Is(err, ErrAPIGroupsOfAnotherPlan) {
			t.Fatalf("a worker of plan p1 leased %+v, %v (%v) of the groups cut for p2; want ErrAPIGroupsOfAnotherPlan", g, ok, err)
		}
		run, _ := s.StartAPIBackfill(ctx, "full")
		g1, ok1, err1 := s.ClaimAPIBackfillGroup(ctx, "nightly", "patients", "p2", "w1", time.Hour)
		g2, ok2, err2 := s.ClaimAPIBackfillGroup(ctx, "nightly", "patients", "p2", "w2", time.Minute)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || g1.No == g2.No || *g1.Value != "h1" || *g2.Value != "h2" {
			t.Fatalf("leases %+v %v %v, %+v %v %v; want h1 and h2, one each", g1, ok1, err1, g2, ok2, err2)
		}
		if _, ok, _ := s.ClaimAPIBackfillGroup(ctx, "nightly", "patients", "p2", "w3", time.Minute); ok {
			t.Fatal("a third worker leased a group both others hold")
		}
		k := "7"
		if err := s.RecordAPIBackfillGroup(ctx, "nightly", run, g2, "w2", []APIBackfillRow{{Key: "7"}}, nil, &k, false); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute) // w2's lease runs out, w1's does not
		g3, ok, err := s.ClaimAPIBackfillGroup(ctx, "nightly", "patients", "p2", "w3", time.Minute)
		if !ok || err != nil || g3.No != g2.No || g3.Last == nil || *g3.Last != "7" {
			t.Fatalf("after w2's lease ran out, w3 leased %+v, %v, %v; want w2's group from key 7", g3, ok, err)
		}
		if err := s.RecordAPIBackfillGroup(ctx, "nightly", run, g2, "w2", []APIBackfillRow{{Key: "8"}}, nil, nil, true); !errors.Is(err, ErrAPIGroupLeaseLost) {
			t.Errorf("w2 recorded rows of a group it lost: %v", err)
		}
		if held, err := s.RenewAPIBackfillGroup(ctx, "nightly", g2, "w2", time.Minute); held || err != nil {
			t.Errorf("w2 renewed a lease it lost (%v)", err)
		}
		for _, g := range []APIBackfillGroup{g1, g3} {
			owner := map[int64]string{g1.No: "w1", g3.No: "w3"}[g.No]
			if err := s.RecordAPIBackfillGroup(ctx, "nightly", run, g, owner, nil, nil, nil, true); err != nil {
				t.Fatal(err)
			}
		}
		if left, err := s.APIBackfillGroupsLeft(ctx, "nightly", "patients"); left || err != nil {
			t.Errorf("groups left after both were done (%v)", err)
		}
		// A finished group is its last owner's: the recording of its last
		// batch, tried again after its answer was lost, goes through; the
		// worker it was taken from is still refused, and nobody leases it.
		if err := s.RecordAPIBackfillGroup(ctx, "nightly", run, g3, "w3", nil, nil, nil, true); err != nil {
			t.Errorf("w3's last recording of its finished group, tried again: %v, want it to go through", err)
		}
		if err := s.RecordAPIBackfillGroup(ctx, "nightly", run, g2, "w2", []APIBackfillRow{{Key: "8"}}, nil, nil, true); !errors.Is(err, ErrAPIGroupLeaseLost) {
			t.Errorf("w2 recorded rows of a group it lost, once finished: %v", err)
		}
		clock.Advance(2 * time.Hour)
		if g, ok, err := s.ClaimAPIBackfillGroup(ctx, "nightly", "patients", "p2", "w4", time.Minute); ok || err != nil {
			t.Errorf("w4 leased finished group %d (%v)", g.No, err)
		}
	})
}

// plantAPIBackfill records a failed row of the API backfill whose message
// and payload hold the canary and, on PostgreSQL, a shared run's group
// whose group_by value is the canary.
func plantAPIBackfill(t *testing.T, s *Store, key string) APIBackfillRow {
	t.Helper()
	ctx := context.Background()
	run, err := s.StartAPIBackfill(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	fail := APIBackfillRow{Key: key, Status: 422, Reason: "rejected", Message: "mrn " + canary + " is taken", Payload: `{"mrn":"` + canary + `"}`}
	if err := s.RecordAPIBackfill(ctx, run, "patients", "p1", nil, []APIBackfillRow{fail}, nil); err != nil {
		t.Fatal(err)
	}
	if s.CanShareRuns() == nil {
		v := canary
		cut := func(context.Context) ([]APIBackfillGroup, error) { return []APIBackfillGroup{{Value: &v}}, nil }
		if _, err := s.ShareAPIBackfillGroups(ctx, "run-"+key, "patients", "p1", cut); err != nil {
			t.Fatal(err)
		}
	}
	return fail
}

// apiBackfillReadsBack checks that the failed rows and groups
// plantAPIBackfill recorded read back in clear.
func apiBackfillReadsBack(t *testing.T, s *Store, want ...APIBackfillRow) {
	t.Helper()
	ctx := context.Background()
	got, err := s.APIBackfillFailures(ctx, "patients", "", 10)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("failed rows %+v, %v; want %+v", got, err, want)
	}
	if s.CanShareRuns() != nil {
		return
	}
	for _, f := range want {
		g, ok, err := s.ClaimAPIBackfillGroup(ctx, "run-"+f.Key, "patients", "p1", "w1", time.Millisecond)
		if !ok || err != nil || g.Value == nil || *g.Value != canary {
			t.Errorf("group of run-%s: %+v, %v, %v; want its value %s", f.Key, g, ok, err, canary)
		}
	}
}

func TestAnEncryptedStoreKeepsTheAPIBackfillLedgerEncryptedAndRekeysIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		plain := openWith(t, dsn, newClock())
		clear := plantAPIBackfill(t, plain, "17")
		want := []string{"strangler_api_backfill_rows.message", "strangler_api_backfill_rows.payload"}
		if b.name == "postgres" {
			want = append([]string{"strangler_api_backfill_groups.group_value"}, want...)
		}
		if got := holding(t, plain); !slices.Equal(got, want) {
			t.Fatalf("without store_encryption the canary is in clear in %v, want %v", got, want)
		}
		plain.Close()

		one := openWith(t, dsn, newClock(), key(1))
		sealed := plantAPIBackfill(t, one, "18")
		if got := holding(t, one); !slices.Equal(got, want) {
			t.Errorf("with store_encryption, before rekey, the canary is in clear in %v, want only the older rows' %v", got, want)
		}
		apiBackfillReadsBack(t, one, clear, sealed)
		rep, err := one.Rekey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		groups := 0
		if b.name == "postgres" {
			groups = 1
		}
		if rep.APIBackfill != 1+groups || rep.Unreadable != 0 {
			t.Errorf("rekey encrypted %+v, want the clear failed row and group value", rep)
		}
		if where := holding(t, one); len(where) > 0 {
			t.Errorf("after rekey the canary is in clear in %v", where)
		}
		one.Close()

		// Under a second key: rekey re-encrypts what the first sealed,
		// and the ledger reads back without the first.
		both := openWith(t, dsn, newClock(), key(2), key(1))
		if rep, err := both.Rekey(ctx); err != nil || rep.APIBackfill != 2+2*groups {
			t.Errorf("rekey under key 2 re-encrypted %+v, %v; want both failed rows and group values", rep, err)
		}
		both.Close()
		two := openWith(t, dsn, newClock(), key(2))
		apiBackfillReadsBack(t, two, clear, sealed)
		two.Close()

		// A lost key loses the messages and payloads, not the rows.
		lost := openWith(t, dsn, newClock(), key(3))
		got, err := lost.APIBackfillFailures(ctx, "patients", "", 10)
		if err != nil || len(got) != 2 {
			t.Fatalf("with a lost key: failed rows %+v, %v; want both", got, err)
		}
		for i, r := range got {
			if r.Key != []string{"17", "18"}[i] || r.Status != 422 || r.Reason != "rejected" || r.Payload != "" ||
				!errors.Is(r.Unreadable, ErrKeyLost) || !strings.Contains(r.Unreadable.Error(), "intact") {
				t.Errorf("with a lost key: row %+v; want its key, status and reason, and Unreadable wrapping ErrKeyLost", r)
			}
		}
		if b.name == "postgres" {
			if _, _, err := lost.ClaimAPIBackfillGroup(ctx, "run-17", "patients", "p1", "w2", time.Minute); !errors.Is(err, ErrKeyLost) {
				t.Errorf("leasing a group whose value's key is lost: %v, want ErrKeyLost", err)
			}
		}
	})
}

// TestUpgradingDropsTheMigratedRowsOfAnEarlierLedger: a ledger of an
// earlier release kept a row for every row migrated; migration 0052
// deletes those and keeps the failures, readable.
func TestUpgradingDropsTheMigratedRowsOfAnEarlierLedger(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		s := openStore(t, dsn, nil)
		// Back to the schema before 0052, as an earlier release left it.
		for _, q := range []string{
			"ALTER TABLE strangler_api_backfill_rows DROP COLUMN sealed",
			"ALTER TABLE strangler_api_backfill_groups DROP COLUMN sealed",
			"DELETE FROM strangler_schema_migrations WHERE version = 52",
			`INSERT INTO strangler_api_backfill_rows (table_name, row_key, state, status, reason, message, payload, run_id, updated_at)
				VALUES ('patients', '1', 'migrated', 200, '', '', '', 1, '2026-01-01T00:00:00Z'),
				       ('patients', '2', 'failed', 422, 'rejected', 'no email', '{}', 1, '2026-01-01T00:00:00Z')`,
		} {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		s.Close()
		s = openStore(t, dsn, nil)
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM strangler_api_backfill_rows").Scan(&n); err != nil || n != 1 {
			t.Errorf("after the upgrade the ledger holds %d rows (%v), want only the failed one", n, err)
		}
		got, err := s.APIBackfillFailures(ctx, "patients", "", 10)
		if err != nil || len(got) != 1 || got[0].Key != "2" || got[0].Message != "no email" {
			t.Errorf("failures after the upgrade: %+v, %v; want row 2 as it was", got, err)
		}
	})
}

// TestApiupgradeCheckpointsWrittenBeforeMigration0090AreBaselines: the
// checkpoints the release before per-row hashes wrote, whose migrated
// rows it deleted from the ledger, come out of migration 0090 marked as
// baselines at their key; checkpoints written since are not, and a
// cleared mark stays cleared.
func TestApiupgradeCheckpointsWrittenBeforeMigration0090AreBaselines(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn, d, db := migratedBefore(t, b, 90)
		if _, err := db.ExecContext(ctx, `INSERT INTO strangler_api_backfill_checkpoints (table_name, last_key, updated_at)
			VALUES ('apiupgrade_patients', '42', $1)`, d.encodeTime(t0)); err != nil {
			t.Fatal(err)
		}
		db.Close()

		s := openStore(t, dsn, newClock())
		if key, ok, err := s.APIBackfillBaseline(ctx, "apiupgrade_patients"); key != "42" || !ok || err != nil {
			t.Errorf("baseline of a checkpoint from before 0090: %q, %v, %v; want 42", key, ok, err)
		}
		last := "7"
		if err := s.RecordAPIBackfill(ctx, 1, "apiupgrade_consents", "p1", nil, nil, &last); err != nil {
			t.Fatal(err)
		}
		if key, ok, err := s.APIBackfillBaseline(ctx, "apiupgrade_consents"); ok || err != nil {
			t.Errorf("baseline of a checkpoint written since: %q, %v, %v; want none", key, ok, err)
		}
		if err := s.ClearAPIBackfillBaseline(ctx, "apiupgrade_patients"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAPIBackfill(ctx, 1, "apiupgrade_patients", "p1", nil, nil, &last); err != nil {
			t.Fatal(err)
		}
		if key, ok, err := s.APIBackfillBaseline(ctx, "apiupgrade_patients"); ok || err != nil {
			t.Errorf("baseline once cleared: %q, %v, %v; want none", key, ok, err)
		}
		if key, ok, _, err := s.APIBackfillCheckpoint(ctx, "apiupgrade_patients", "p1"); key != "7" || !ok || err != nil {
			t.Errorf("checkpoint %q, %v, %v; want 7", key, ok, err)
		}
	})
}
