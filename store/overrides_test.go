package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

func pct(f float64) *float64 { return &f }

func flip(route, from, to string) domain.AuditEntry {
	return domain.AuditEntry{Actor: "alice", Action: "flip", Route: route, FromMode: domain.Mode(from), ToMode: domain.Mode(to), Reason: "ticket 42"}
}

func auditCount(t *testing.T, s *Store) int {
	t.Helper()
	log, err := s.AuditLog(context.Background(), AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(log)
}

func TestOverrides(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)

		t.Run("a first override gets version 1 and an audit entry", func(t *testing.T) {
			o, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: "fallback", Percent: pct(25), Actor: "alice", Reason: "ticket 42"},
				0, flip("get-patient", "legacy", "fallback"))
			if err != nil {
				t.Fatal(err)
			}
			if o.Version != 1 {
				t.Errorf("got version %d, want 1", o.Version)
			}
			all, err := s.Overrides(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := all["get-patient"]
			if got.Mode != "fallback" || got.Percent == nil || *got.Percent != 25 || got.Version != 1 ||
				got.Actor != "alice" || got.Reason != "ticket 42" || !got.UpdatedAt.Equal(clk.Now()) {
				t.Errorf("got %+v, want fallback 25%% version 1 by alice at %v", got, clk.Now())
			}
			if n := auditCount(t, s); n != 1 {
				t.Errorf("got %d audit entries, want 1", n)
			}
		})

		t.Run("a change from a stale version is a conflict and writes nothing", func(t *testing.T) {
			for _, stale := range []int64{0, 2} {
				_, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: "modern"}, stale, flip("get-patient", "fallback", "modern"))
				if !errors.Is(err, ErrConflict) {
					t.Errorf("expecting version %d: got %v, want ErrConflict", stale, err)
				}
			}
			if _, _, err := s.ClearOverride(ctx, "get-patient", 2, domain.AuditEntry{Actor: "bob", Action: "clear"}); !errors.Is(err, ErrConflict) {
				t.Errorf("clearing version 2: got %v, want ErrConflict", err)
			}
			if n := auditCount(t, s); n != 1 {
				t.Errorf("got %d audit entries, want still 1", n)
			}
			if got := mustOverrides(t, s)["get-patient"]; got.Mode != "fallback" || got.Version != 1 {
				t.Errorf("got %+v, want fallback at version 1 unchanged", got)
			}
		})

		t.Run("a change from the current version wins", func(t *testing.T) {
			clk.Advance(time.Minute)
			from := flip("get-patient", "fallback", "modern")
			from.FromPercent = pct(25)
			o, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: "modern", Actor: "bob"}, 1, from)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustOverrides(t, s)["get-patient"]; got.Version != 2 || got.Mode != "modern" || got.Percent != nil || o.Version != 2 {
				t.Errorf("got %+v, want modern at version 2 with no percent", got)
			}
		})

		t.Run("two operators flipping at once: exactly one wins", func(t *testing.T) {
			var wg sync.WaitGroup
			results := make(chan error, 2)
			for _, mode := range []string{"legacy", "fallback"} {
				wg.Go(func() {
					_, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: domain.Mode(mode)}, 2, flip("get-patient", "modern", mode))
					results <- err
				})
			}
			wg.Wait()
			close(results)
			won, lost := 0, 0
			for err := range results {
				switch {
				case err == nil:
					won++
				case errors.Is(err, ErrConflict):
					lost++
				default:
					t.Error(err)
				}
			}
			if won != 1 || lost != 1 {
				t.Errorf("got %d winners and %d conflicts, want 1 and 1", won, lost)
			}
			if n := auditCount(t, s); n != 3 {
				t.Errorf("got %d audit entries, want 3", n)
			}
		})

		t.Run("clearing removes the override and moves the version", func(t *testing.T) {
			version, _, err := s.ClearOverride(ctx, "get-patient", 3, domain.AuditEntry{Actor: "bob", Action: "clear", Route: "get-patient"})
			if err != nil {
				t.Fatal(err)
			}
			if version != 4 {
				t.Errorf("the route's version after the clear: got %d, want 4", version)
			}
			if _, ok := mustOverrides(t, s)["get-patient"]; ok {
				t.Error("the override is still there")
			}
			if _, _, err := s.ClearOverride(ctx, "get-patient", 4, domain.AuditEntry{Actor: "bob", Action: "clear"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("clearing again: got %v, want ErrNotFound", err)
			}
			if n := auditCount(t, s); n != 4 {
				t.Errorf("got %d audit entries, want 4", n)
			}
			if o, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: "shadow"}, 4, flip("get-patient", "legacy", "shadow")); err != nil || o.Version != 5 {
				t.Errorf("setting again after a clear, at its version: got version %d, %v; want version 5", o.Version, err)
			}
		})
	})
}

func mustOverrides(t *testing.T, s *Store) map[string]domain.Override {
	t.Helper()
	all, err := s.Overrides(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestAuditLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		entries := []domain.AuditEntry{
			{Actor: "alice", Action: "flip", Route: "a", FromMode: "legacy", ToMode: "fallback", ToPercent: pct(10), Reason: "start"},
			{Actor: "gate", Action: "denied", Route: "a", FromMode: "fallback", ToMode: "modern", Detail: "fallback rate 3% > 1%"},
			{Actor: "carol", Action: "flip", Route: "b", FromMode: "shadow", ToMode: "fallback", FromPercent: pct(0), Forced: true},
			{Actor: "guard", Action: "rollback", Route: "a", FromMode: "fallback", ToMode: "legacy"},
		}
		for _, e := range entries {
			clk.Advance(time.Second)
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		// at is when the i-th entry was stamped: by the test's clock on
		// SQLite, by the server's on PostgreSQL (see appendAudit).
		at := func(i int) time.Time {
			if b.name == "postgres" {
				log, err := s.AuditLog(ctx, AuditFilter{})
				if err != nil {
					t.Fatal(err)
				}
				return log[len(log)-i].At
			}
			return t0.Add(time.Duration(i) * time.Second)
		}

		t.Run("entries come back newest first, as written", func(t *testing.T) {
			log, err := s.AuditLog(ctx, AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != len(entries) {
				t.Fatalf("got %d entries, want %d", len(log), len(entries))
			}
			for i, got := range log {
				want := entries[len(entries)-1-i]
				want.ID, want.At = got.ID, at(len(entries)-i)
				if !auditEqual(got, want) {
					t.Errorf("entry %d: got %+v, want %+v", i, got, want)
				}
			}
			if log[0].ID <= log[1].ID {
				t.Errorf("ids %d, %d: want later entries to have higher ids", log[0].ID, log[1].ID)
			}
		})

		t.Run("the log filters by route, time and count", func(t *testing.T) {
			log, err := s.AuditLog(ctx, AuditFilter{Route: "a", Before: new(at(4)), Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != 1 || log[0].Action != "denied" {
				t.Errorf("got %+v, want only the denied flip", log)
			}
		})

		t.Run("an entry needs an action", func(t *testing.T) {
			if err := s.AppendAudit(ctx, domain.AuditEntry{Actor: "x"}); err == nil {
				t.Error("got no error")
			}
		})
	})
}

func auditEqual(a, b domain.AuditEntry) bool {
	eqf := func(x, y *float64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return a.ID == b.ID && a.At.Equal(b.At) && a.Actor == b.Actor && a.Action == b.Action && a.Route == b.Route &&
		a.FromMode == b.FromMode && a.ToMode == b.ToMode && eqf(a.FromPercent, b.FromPercent) &&
		eqf(a.ToPercent, b.ToPercent) && a.Reason == b.Reason && a.Forced == b.Forced && a.Detail == b.Detail
}

// TestAnOverrideIsClearedUnderTheNameItWasSetUnder: SetOverride stores a
// route name as text both back-ends take (clean); ClearOverride looked
// the name up as given, so a name that is not UTF-8 or holds a NUL, set
// without a fault, could not be cleared (SQLite found no route, and
// PostgreSQL refused the name) and its override stayed.
func TestAnOverrideIsClearedUnderTheNameItWasSetUnder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		const route = "caf\xe9\x00s"
		o, err := s.SetOverride(ctx, domain.Override{Route: route, Mode: "modern", Actor: "alice"}, 0, flip(route, "legacy", "modern"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ClearOverride(ctx, route, o.Version, domain.AuditEntry{Actor: "bob", Action: "clear", Route: route}); err != nil {
			t.Fatalf("clearing the override it set: %v", err)
		}
		if all := mustOverrides(t, s); len(all) != 0 {
			t.Errorf("overrides after the clear: %+v, want none", all)
		}
	})
}

// TestAClearIsMadeWithItsLinkedWritesOrNotAtAll: a clear whose linked
// write refuses it (here the journal's check, as a clear that would send
// writes straight to a backend they are still owed to) is not made: the
// override stays, and nothing is audited; one whose linked writes pass
// is made.
func TestAClearIsMadeWithItsLinkedWritesOrNotAtAll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		o, err := s.SetOverride(ctx, domain.Override{Route: "put-item", Mode: "modern", Actor: "alice"}, 0, flip("put-item", "dual-write", "modern"))
		if err != nil {
			t.Fatal(err)
		}
		owed := errors.New("1 dual write still owed to legacy")
		refuse := CheckJournal(func(map[string]map[domain.Backend]int) error { return owed })
		clear := domain.AuditEntry{Actor: "bob", Action: "clear", Route: "put-item"}
		if _, _, err := s.ClearOverride(ctx, "put-item", o.Version, clear, refuse); !errors.Is(err, owed) {
			t.Fatalf("a clear its journal check refuses: got %v, want the check's error", err)
		}
		if got, ok := mustOverrides(t, s)["put-item"]; !ok || got.Mode != "modern" || auditCount(t, s) != 1 {
			t.Errorf("after the refused clear: override %+v (kept %t), %d audit entries; want modern kept and 1 entry", got, ok, auditCount(t, s))
		}
		pass := CheckJournal(func(map[string]map[domain.Backend]int) error { return nil })
		if _, _, err := s.ClearOverride(ctx, "put-item", o.Version, clear, pass); err != nil {
			t.Fatal(err)
		}
		if all := mustOverrides(t, s); len(all) != 0 {
			t.Errorf("after the clear: %+v, want no override", all)
		}
	})
}
