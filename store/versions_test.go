package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"strangler/domain"
)

// versionOf is route's version as a replica reading the flags on s
// finds it.
func versionOf(t *testing.T, s *Store, route string) int64 {
	t.Helper()
	_, versions, _, err := s.RouteFlags(context.Background(), []string{route})
	if err != nil {
		t.Fatal(err)
	}
	return versions[route]
}

// TestAVersionNamesOneStateOfTheRoute: alice sets a route to modern
// (version 1), bob clears it and sets it to fallback 10%. A change
// decided at version 1, on the route as alice left it, is refused, and
// the flip at the version of the route without an override, which the
// clear gave it, is taken. Before, a clear took the version back to 0,
// so the flip after it was version 1 again, and the change at 1 was
// taken: it overwrote bob's flip, which nobody had seen.
func TestAVersionNamesOneStateOfTheRoute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		const route = "get-patient"
		if v := versionOf(t, s, route); v != 0 {
			t.Fatalf("a route never changed is at version %d, want 0", v)
		}
		set, err := s.SetOverride(ctx, domain.Override{Route: route, Mode: domain.ModeModern, Actor: "alice"}, 0, flip(route, "legacy", "modern"))
		if err != nil {
			t.Fatal(err)
		}
		if b.name == "sqlite" && set.Fence != 0 {
			t.Errorf("the flip's fence on SQLite, which fences nothing, is %d, want 0", set.Fence)
		}
		cleared, _, err := s.ClearOverride(ctx, route, set.Version, domain.AuditEntry{Actor: "bob", Action: "clear", Route: route, FromMode: "modern"})
		if err != nil {
			t.Fatal(err)
		}
		if cleared == set.Version || versionOf(t, s, route) != cleared {
			t.Fatalf("after the clear: the route is at version %d, RouteFlags says %d; want one other than the flip's %d",
				cleared, versionOf(t, s, route), set.Version)
		}
		audited := auditCount(t, s)
		if _, err := s.SetOverride(ctx, domain.Override{Route: route, Mode: domain.ModeFallback, Percent: pct(10), Actor: "bob"}, set.Version,
			flip(route, "legacy", "fallback")); !errors.Is(err, ErrConflict) {
			t.Errorf("a flip at the version before the clear: got %v, want ErrConflict", err)
		}
		again, err := s.SetOverride(ctx, domain.Override{Route: route, Mode: domain.ModeFallback, Percent: pct(10), Actor: "bob"}, cleared,
			flip(route, "legacy", "fallback"))
		if err != nil {
			t.Fatalf("a flip at the version of the route without an override: %v", err)
		}
		if again.Version == set.Version || again.Version == cleared {
			t.Errorf("the flip after the clear is at version %d, which the route had before (%d, %d)", again.Version, set.Version, cleared)
		}
		for _, stale := range []int64{0, set.Version, cleared} {
			if _, err := s.SetOverride(ctx, domain.Override{Route: route, Mode: domain.ModeLegacy, Actor: "alice"}, stale,
				flip(route, "modern", "legacy")); !errors.Is(err, ErrConflict) {
				t.Errorf("a flip at version %d, read before the flip to fallback 10%%: got %v, want ErrConflict", stale, err)
			}
			if _, _, err := s.ClearOverride(ctx, route, stale, domain.AuditEntry{Actor: "alice", Action: "clear", Route: route}); !errors.Is(err, ErrConflict) {
				t.Errorf("a clear at version %d, read before the flip to fallback 10%%: got %v, want ErrConflict", stale, err)
			}
		}
		if got := mustOverrides(t, s)[route]; got.Mode != domain.ModeFallback || domain.FullPercent(got.Percent) != 10 || got.Version != again.Version {
			t.Errorf("the route is %+v, want bob's fallback 10%% at version %d", got, again.Version)
		}
		if n := auditCount(t, s); n != audited+1 {
			t.Errorf("the audit log grew by %d entries, want 1 (bob's flip)", n-audited)
		}
	})
}

// TestAnUpgradeGivesNoRouteAVersionItHadBefore: an earlier release
// counted an override's version from 1 again after each clear, so it
// may have handed out any version up to the number of the route's
// audit entries. After the upgrade, the route's version is past all of
// them, so an ETag read before it names no state after it.
func TestAnUpgradeGivesNoRouteAVersionItHadBefore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn, d, db := migratedBefore(t, b, 190)
		// Flipped to versions 1, 2 and 3, cleared, flipped to 1 and 2
		// again, a refused attempt between: seven entries.
		for i, action := range []string{"flip", "flip", "flip", "clear", "flip", "denied", "flip"} {
			if _, err := db.ExecContext(ctx, `
				INSERT INTO strangler_audit (at, actor, action, route, from_mode, to_mode, reason, forced, detail)
				VALUES ($1, 'alice', $2, 'get-patient', 'legacy', 'modern', '', false, '')`, d.encodeTime(t0.Add(time.Duration(i)*time.Second)), action); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `
			INSERT INTO strangler_overrides (route, mode, percent, version, actor, reason, updated_at)
			VALUES ('get-patient', 'modern', NULL, 2, 'alice', '', $1)`, d.encodeTime(t0)); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		s := openStore(t, dsn, nil)
		v := versionOf(t, s, "get-patient")
		if v < 7 {
			t.Fatalf("the route is at version %d after the upgrade, want at least 7: its 7 audit entries allow any version up to 7 before it", v)
		}
		if o := mustOverrides(t, s)["get-patient"]; o.Mode != domain.ModeModern || o.Version != v {
			t.Errorf("the override after the upgrade: %+v, want modern at version %d", o, v)
		}
		for stale := range v {
			if _, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: domain.ModeLegacy, Actor: "bob"}, stale,
				flip("get-patient", "modern", "legacy")); !errors.Is(err, ErrConflict) {
				t.Fatalf("a flip at version %d, read before the upgrade: got %v, want ErrConflict", stale, err)
			}
		}
		if o, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: domain.ModeLegacy, Actor: "bob"}, v,
			flip("get-patient", "modern", "legacy")); err != nil || o.Version <= v {
			t.Errorf("a flip at the version read after the upgrade: version %d, %v; want one past %d", o.Version, err, v)
		}
		if v := versionOf(t, s, "put-item"); v != 0 {
			t.Errorf("a route with no audit entry is at version %d, want 0", v)
		}
	})
}

// TestAnUpgradeMovesWhatWasDecidedAtTheRoutesVersionWithIt: a ramp and
// a pending change request decided at a route's version before the
// upgrade are at its version after it, so the ramp goes on and the
// request can be approved; one decided on a route that moved since
// stays behind it, as does a request already decided. An override
// whose audit entries are fewer than its version (an audit log
// trimmed) keeps a version past every one it had, the override's row
// keeps the route's version, which a replica of the release before
// reads as the ETag, and on PostgreSQL no route's fence moves back, so
// a dual write journaled under a fence before the upgrade is not taken
// for one under a fence after it.
func TestAnUpgradeMovesWhatWasDecidedAtTheRoutesVersionWithIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn, d, db := migratedBefore(t, b, 190)
		exec := func(query string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, query, args...); err != nil {
				t.Fatal(err)
			}
		}
		at := d.encodeTime(t0)
		audit := func(route string, n int) {
			for range n {
				exec(`INSERT INTO strangler_audit (at, actor, action, route, from_mode, to_mode, reason, forced, detail)
					VALUES ($1, 'alice', 'flip', $2, 'legacy', 'modern', '', false, '')`, at, route)
			}
		}
		override := func(route string, version int) {
			exec(`INSERT INTO strangler_overrides (route, mode, percent, version, actor, reason, updated_at)
				VALUES ($1, 'modern', NULL, $2, 'alice', '', $3)`, route, version, at)
		}
		ramp := func(route string, atVersion int) {
			exec(`INSERT INTO strangler_ramps (route, mode, steps, every_ns, taken, state, next_at, waiting, waiting_since, note,
					at_mode, at_percent, at_version, actor, reason, approved_by, created_at, updated_at, version)
				VALUES ($1, 'modern', '[10,50]', 60000000000, 0, 'running', $2, '', NULL, '', 'modern', NULL, $3, 'alice', '', '', $2, $2, 1)`,
				route, at, atVersion)
		}
		change := func(route, state string, baseVersion int) {
			exec(`INSERT INTO strangler_changes (route, kind, mode, percent, forced, ramp_steps, ramp_every_ns, from_mode, from_percent,
					base_version, requester, reason, needed, approvers, state, decided_by, decision, decided_at, created_at, expires_at, version)
				VALUES ($1, 'flip', 'legacy', NULL, $2, '', 0, 'modern', NULL, $3, 'alice', '', 1, '[]', $4, '', '', NULL, $5, $5, 1)`,
				route, false, baseVersion, state, at)
		}
		// get-patient: a ramp and a request that found it as it is.
		audit("get-patient", 7)
		override("get-patient", 2)
		ramp("get-patient", 2)
		change("get-patient", "pending", 2)
		// list-photos: a ramp and a request that found it before its
		// last flip, and a request applied at the version it has.
		audit("list-photos", 5)
		override("list-photos", 3)
		ramp("list-photos", 1)
		change("list-photos", "pending", 1)
		change("list-photos", "applied", 3)
		// put-item: flipped nine times, its audit log trimmed.
		override("put-item", 9)
		if b.name == "postgres" {
			// search: no override, its fence moved by 19 changes
			// since migration 0180, its audit log trimmed to 2.
			exec(`INSERT INTO strangler_route_fences (route, epoch) VALUES ('search', 20)`)
			audit("search", 2)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		s := openStore(t, dsn, nil)
		_, versions, fences, err := s.RouteFlags(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		patient, photos := versions["get-patient"], versions["list-photos"]
		ramps, err := s.Ramps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := ramps["get-patient"].AtVersion; got != patient {
			t.Errorf("get-patient's ramp, at its version before the upgrade, is at version %d, want the route's %d", got, patient)
		}
		if got := ramps["list-photos"].AtVersion; got != 1 {
			t.Errorf("list-photos's ramp, behind the route before the upgrade, is at version %d, want 1 still (the route is at %d)", got, photos)
		}
		for _, c := range []struct {
			route string
			state ChangeState
			want  int64
		}{{"get-patient", ChangePending, patient}, {"list-photos", ChangePending, 1}, {"list-photos", ChangeApplied, 3}} {
			got, err := s.Changes(ctx, ChangeFilter{Route: c.route, State: c.state})
			if err != nil || len(got) != 1 || got[0].BaseVersion != c.want {
				t.Errorf("%s's %s request after the upgrade: %+v %v, want one at version %d", c.route, c.state, got, err, c.want)
			}
		}
		if v := versions["put-item"]; v < 9 {
			t.Errorf("put-item, at version 9 before the upgrade, is at version %d", v)
		}
		var row int64
		if err := s.db.QueryRowContext(ctx, `SELECT version FROM strangler_overrides WHERE route = 'get-patient'`).Scan(&row); err != nil || row != patient {
			t.Errorf("get-patient's override row says version %d (%v), want the route's %d, which the release before shows", row, err, patient)
		}
		o, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: domain.ModeLegacy, Actor: "bob"}, patient, flip("get-patient", "modern", "legacy"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.QueryRowContext(ctx, `SELECT version FROM strangler_overrides WHERE route = 'get-patient'`).Scan(&row); err != nil || row != o.Version {
			t.Errorf("after a flip, get-patient's override row says version %d (%v), want the route's %d", row, err, o.Version)
		}
		if b.name == "postgres" && fences["search"] < 20 {
			t.Errorf("search's fence moved back from 20 to %d", fences["search"])
		}
	})
}
