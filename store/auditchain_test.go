package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"strangler/domain"
)

// TestAuditHashIsTheDocumentedCanonicalForm: the canonical form is a
// promise to auditors who recompute hashes from an export, and every
// stored chain depends on it: it never changes unnoticed.
func TestAuditHashIsTheDocumentedCanonicalForm(t *testing.T) {
	e := domain.AuditEntry{
		PrevHash: GenesisHash, At: time.Date(2030, 3, 4, 10, 15, 0, 123456000, time.UTC),
		Actor: "alice", Action: "flip", Route: "get-patient", FromMode: "legacy", ToMode: "fallback",
		ToPercent: pct(12.5), Reason: "ticket 42: ünïcode", Detail: "a\nb",
	}
	canonical := "18:strangler-audit-v1\n" +
		"64:" + GenesisHash + "\n" +
		"27:2030-03-04T10:15:00.123456Z\n" +
		"5:alice\n" + "4:flip\n" + "11:get-patient\n" + "6:legacy\n" + "8:fallback\n" +
		"0:\n" + "4:12.5\n" +
		"20:ticket 42: ünïcode\n" + "5:false\n" + "3:a\nb\n"
	sum := sha256.Sum256([]byte(canonical))
	if got, want := auditHash(e), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("got %s, want %s: the canonical form changed", got, want)
	}
}

// TestAuditChainNamesTheFirstEntryThatDoesNotMatch: a few hundred
// entries written as the facade writes them (flips, clears, refusals)
// verify; then an UPDATE, a DELETE and a swap of two rows made directly
// in the database are each reported at the right entry. Each tampering
// is earlier in the chain than the one before, so each is the first
// break when it is made.
func TestAuditChainNamesTheFirstEntryThatDoesNotMatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		ids := writeAuditHistory(t, s, clk, 300)

		v := verify(t, s)
		if v.Break != nil || v.Entries != int64(len(ids)) || v.Head.ID != ids[len(ids)-1] {
			t.Fatalf("intact chain: got %d entries, head %d, break %+v; want %d entries, head %d, no break",
				v.Entries, v.Head.ID, v.Break, len(ids), ids[len(ids)-1])
		}

		t.Run("a swap of two rows is reported at the first of them", func(t *testing.T) {
			a, c := entry(t, s, ids[250]), entry(t, s, ids[251])
			overwrite(t, s, a.ID, c)
			overwrite(t, s, c.ID, a)
			wantBreak(t, verify(t, s), ids[250], ids[249], "does not follow")
		})
		t.Run("a deleted row is reported at the entry after it", func(t *testing.T) {
			if _, err := s.db.ExecContext(ctx, `DELETE FROM strangler_audit WHERE id = $1`, ids[150]); err != nil {
				t.Fatal(err)
			}
			wantBreak(t, verify(t, s), ids[151], ids[149], fmt.Sprintf("entry %d does not follow entry %d: an entry between them was deleted", ids[151], ids[149]))
		})
		t.Run("an edited row is reported at itself", func(t *testing.T) {
			if _, err := s.db.ExecContext(ctx, `UPDATE strangler_audit SET reason = 'nothing to see' WHERE id = $1`, ids[50]); err != nil {
				t.Fatal(err)
			}
			wantBreak(t, verify(t, s), ids[50], ids[49], fmt.Sprintf("entry %d was changed after it was written", ids[50]))
		})
		t.Run("an edited row whose hash was recomputed breaks the link after it", func(t *testing.T) {
			e := entry(t, s, ids[20])
			e.Reason = "nothing to see"
			e.Hash = auditHash(e)
			overwrite(t, s, e.ID, e)
			wantBreak(t, verify(t, s), ids[21], ids[20], "does not follow")
		})
		t.Run("a deleted first row is reported at the new first", func(t *testing.T) {
			if _, err := s.db.ExecContext(ctx, `DELETE FROM strangler_audit WHERE id = $1`, ids[0]); err != nil {
				t.Fatal(err)
			}
			wantBreak(t, verify(t, s), ids[1], 0, "does not start the chain")
		})
	})
}

// TestAuditChainNoticesTheEnd: entries cut off the end, an entry inserted
// without the chain, and a rewritten head are reported too.
func TestAuditChainNoticesTheEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		ids := writeAuditHistory(t, s, clk, 10)

		t.Run("entries deleted from the end", func(t *testing.T) {
			if _, err := s.db.ExecContext(ctx, `DELETE FROM strangler_audit WHERE id >= $1`, ids[8]); err != nil {
				t.Fatal(err)
			}
			wantBreak(t, verify(t, s), ids[9], ids[7], "is missing: entries after entry")
		})
		t.Run("a head moved back over them", func(t *testing.T) {
			e := entry(t, s, ids[7])
			if _, err := s.db.ExecContext(ctx, `UPDATE strangler_audit_head SET last_id = $1, hash = $2`, e.ID, GenesisHash); err != nil {
				t.Fatal(err)
			}
			wantBreak(t, verify(t, s), ids[7], ids[6], "does not match the chain's head")
		})
		t.Run("an entry inserted without the chain", func(t *testing.T) {
			e := entry(t, s, ids[7])
			if _, err := s.db.ExecContext(ctx, `UPDATE strangler_audit_head SET hash = $1`, e.Hash); err != nil {
				t.Fatal(err)
			}
			if v := verify(t, s); v.Break != nil {
				t.Fatalf("the head restored: got %+v, want no break", v.Break)
			}
			insertUnchained(t, s, domain.AuditEntry{At: clk.Now(), Actor: "mallory", Action: "flip", Route: "x"})
			v := verify(t, s)
			if v.Break == nil || v.Break.After != ids[7] || !strings.Contains(v.Break.Problem, "is not chained") {
				t.Errorf("got %+v, want a break after entry %d saying it is not chained", v.Break, ids[7])
			}
		})
	})
}

// TestAuditChainStaysLinearAcrossReplicas: replicas on one PostgreSQL
// database flipping and refusing at once append to one chain.
func TestAuditChainStaysLinearAcrossReplicas(t *testing.T) {
	b := backends()[1]
	dsn := b.fresh(t)
	replicas := []*Store{openStore(t, dsn, nil), openStore(t, dsn, nil)}
	ctx := context.Background()
	const workers, each = 4, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for r, s := range replicas {
		for w := range workers {
			route := fmt.Sprintf("route-%d", w%2)
			wg.Go(func() {
				for i := range each {
					var err error
					if i%2 == 0 {
						err = s.AppendAudit(ctx, domain.AuditEntry{Actor: fmt.Sprintf("replica-%d", r), Action: "denied", Route: route})
					} else {
						err = flipOnce(ctx, s, route, fmt.Sprintf("replica-%d/%d", r, w))
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("appending failed: %v", errs)
	}
	v := verify(t, replicas[0])
	if v.Break != nil {
		t.Fatalf("the chain broke: %s", v.Break.Problem)
	}
	if want := int64(len(replicas) * workers * each); v.Entries != want {
		t.Errorf("got %d entries in the chain, want %d", v.Entries, want)
	}
}

// flipOnce flips route once, reading its version first and trying again
// while another writer gets there first. Each try, taken or not, appends
// to the chain; only a taken one stays.
func flipOnce(ctx context.Context, s *Store, route, actor string) error {
	for {
		all, err := s.Overrides(ctx)
		if err != nil {
			return err
		}
		o := all[route]
		from := cmp.Or(o.Mode, "legacy") // the file's, without an override
		_, err = s.SetOverride(ctx, domain.Override{Route: route, Mode: "fallback", Actor: actor, Reason: "ramp"}, o.Version,
			domain.AuditEntry{Actor: actor, Action: "flip", Route: route, FromMode: from, FromPercent: o.Percent, ToMode: "fallback"})
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
}

// TestAuditChainCoversEntriesFromBeforeTheUpgrade: entries written before
// the store had a chain are chained by the upgrade, as they are then, and
// a later change to them is caught like any other.
func TestAuditChainCoversEntriesFromBeforeTheUpgrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		old := openBefore(t, dsn, "audit_chain")
		for i := range 5 {
			if _, err := old.db.ExecContext(ctx, `
				INSERT INTO strangler_audit (at, actor, action, route, from_mode, to_mode, from_percent, to_percent, reason, forced, detail)
				VALUES ($1, 'alice', 'flip', 'get-patient', 'legacy', 'fallback', NULL, $2, 'before the upgrade', false, '')`,
				old.ts(t0.Add(time.Duration(i)*time.Second)), float64(i*10)); err != nil {
				t.Fatal(err)
			}
		}
		old.db.Close()

		s := openStore(t, dsn, nil)
		if err := s.AppendAudit(ctx, domain.AuditEntry{Actor: "bob", Action: "flip", Route: "get-patient"}); err != nil {
			t.Fatal(err)
		}
		v := verify(t, s)
		if v.Break != nil || v.Entries != 6 || v.Head.PreChainLastID == 0 || v.Head.StartedAt.IsZero() {
			t.Fatalf("got %d entries, break %+v, head %+v; want 6 entries, no break, the 5 old ones recorded as pre-chain", v.Entries, v.Break, v.Head)
		}
		if first := entry(t, s, 1); v.Head.PreChainLastID != 5 || first.PrevHash != GenesisHash {
			t.Errorf("pre-chain entries up to %d, the first entry %+v; want up to 5, the first linked to the genesis hash", v.Head.PreChainLastID, first)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE strangler_audit SET actor = 'mallory' WHERE id = 3`); err != nil {
			t.Fatal(err)
		}
		wantBreak(t, verify(t, s), 3, 2, "entry 3 was changed")
	})
}

// openBefore opens dsn with the migrations before the one named name
// (without its version) applied, as an older release left it.
func openBefore(t *testing.T, dsn, name string) *Store {
	t.Helper()
	d, db, err := openDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	older := fstest.MapFS{}
	entries, err := fs.ReadDir(d.migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "_"+name+".sql") {
			break
		}
		b, err := fs.ReadFile(d.migrations, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		older[e.Name()] = &fstest.MapFile{Data: b}
	}
	d.migrations = older
	s := &Store{db: db, dialect: d, log: testLogger(t), now: time.Now, gate: d.gate}
	if err := s.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// writeAuditHistory writes n audit entries as the facade does, one second
// apart: flips and clears with their overrides, refusals, repair actions.
// It returns their ids in chain order.
func writeAuditHistory(t *testing.T, s *Store, clk *testClock, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	version := int64(0)
	for i := range n {
		clk.Advance(time.Second)
		var err error
		switch i % 4 {
		case 0:
			var o domain.Override
			o, err = s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: "fallback", Percent: pct(float64(i % 100)), Actor: "alice", Reason: "ramp"},
				version, domain.AuditEntry{Actor: "alice", Action: "flip", Route: "get-patient", FromMode: "legacy", ToMode: "fallback", ToPercent: pct(float64(i % 100)), Reason: "ramp"})
			version = o.Version
		case 1:
			version, _, err = s.ClearOverride(ctx, "get-patient", version, domain.AuditEntry{Actor: "bob", Action: "clear", Route: "get-patient", Reason: "back"})
		case 2:
			err = s.AppendAudit(ctx, domain.AuditEntry{Actor: "unauthenticated", Action: "denied", Route: "get-patient", Detail: "PATCH refused (401)"})
		case 3:
			err = s.AppendAudit(ctx, domain.AuditEntry{Actor: "carol", Action: "repair_retry", Route: "create-patient", Reason: "modern is back", Detail: fmt.Sprint("w-", i), Forced: true})
		}
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	var ids []int64
	err := s.WalkAudit(ctx, time.Time{}, func(e domain.AuditEntry) error {
		ids = append(ids, e.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n {
		t.Fatalf("wrote %d entries, found %d", n, len(ids))
	}
	return ids
}

func verify(t *testing.T, s *Store) AuditVerification {
	t.Helper()
	v, err := s.VerifyAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantBreak(t *testing.T, v AuditVerification, id, after int64, says string) {
	t.Helper()
	if v.Break == nil {
		t.Fatalf("got no break, want one at entry %d", id)
	}
	if v.Break.ID != id || v.Break.After != after || !strings.Contains(v.Break.Problem, says) {
		t.Errorf("got a break at entry %d after %d: %q; want entry %d after %d, saying %q",
			v.Break.ID, v.Break.After, v.Break.Problem, id, after, says)
	}
}

// entry reads one audit entry as stored.
func entry(t *testing.T, s *Store, id int64) domain.AuditEntry {
	t.Helper()
	var found domain.AuditEntry
	err := s.WalkAudit(context.Background(), time.Time{}, func(e domain.AuditEntry) error {
		if e.ID == id {
			found = e
		}
		return nil
	})
	if err != nil || found.ID != id {
		t.Fatalf("entry %d: %v", id, err)
	}
	return found
}

// overwrite writes e, hashes included, over the row id, as someone with
// access to the database could.
func overwrite(t *testing.T, s *Store, id int64, e domain.AuditEntry) {
	t.Helper()
	_, err := s.db.ExecContext(context.Background(), `
		UPDATE strangler_audit SET at = $2, actor = $3, action = $4, route = $5, from_mode = $6, to_mode = $7,
			from_percent = $8, to_percent = $9, reason = $10, forced = $11, detail = $12, prev_hash = $13, hash = $14
		WHERE id = $1`,
		id, s.ts(e.At), e.Actor, e.Action, e.Route, e.FromMode, e.ToMode, floatOrNull(e.FromPercent), floatOrNull(e.ToPercent),
		e.Reason, e.Forced, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		t.Fatal(err)
	}
}

// insertUnchained adds an entry without a hash, as an older release or
// someone with access to the database would.
func insertUnchained(t *testing.T, s *Store, e domain.AuditEntry) {
	t.Helper()
	_, err := s.db.ExecContext(context.Background(), `
		INSERT INTO strangler_audit (at, actor, action, route, from_mode, to_mode, reason, forced, detail)
		VALUES ($1, $2, $3, $4, '', '', '', false, '')`, s.ts(e.At), e.Actor, e.Action, e.Route)
	if err != nil {
		t.Fatal(err)
	}
}

// TestAnAuditWalkSinceATimeIsAPieceOfTheChain: times need not rise with
// ids (an entry's time is taken before it waits for the chain's head on
// SQLite; an earlier release's replicas stamped their own clocks on
// PostgreSQL). A walk since a time (an export with
// --since) starts at the first entry at or after it and goes on in chain
// order without a gap: each entry's prev_hash is the hash of the one
// before it, and an auditor finds no hole where there is none.
func TestAnAuditWalkSinceATimeIsAPieceOfTheChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.fresh(t), nil)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
		// Minutes after t0 of entries in id order: the third was timed
		// before the second, on a replica whose clock is behind.
		for _, m := range []int{0, 10, 9, 11, 12} {
			appendAuditAt(t, s, domain.AuditEntry{At: t0.Add(time.Duration(m) * time.Minute), Actor: "bob", Action: "denied", Route: "r"})
		}
		var got []domain.AuditEntry
		if err := s.WalkAudit(ctx, t0.Add(10*time.Minute), func(e domain.AuditEntry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for i, e := range got {
			ids = append(ids, e.ID)
			if i > 0 && e.PrevHash != got[i-1].Hash {
				t.Errorf("entry %d does not follow entry %d in the walk: one between them was left out", e.ID, got[i-1].ID)
			}
		}
		if len(ids) != 4 || ids[0] != 2 {
			t.Errorf("the walk since 10:10 gave entries %v, want 2 to 5", ids)
		}
	})
}

// TestARestoredBackupHoldsAWholeChainThatForgetsLaterEntries is what the
// README says of a restore: the entries written after the backup are not
// in it, its chain verifies, and the next entry takes an id the original
// gave to another: a head kept from after the backup is not in it.
func TestARestoredBackupHoldsAWholeChainThatForgetsLaterEntries(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	s := openStore(t, dsn, newClock())
	entry := func(detail string) domain.AuditEntry {
		return domain.AuditEntry{Actor: "bob", Action: "denied", Route: "r", Detail: detail}
	}
	for _, d := range []string{"one", "two"} {
		if err := s.AppendAudit(ctx, entry(d)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := Backup(ctx, dsn, out); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, entry("three, after the backup")); err != nil {
		t.Fatal(err)
	}
	kept, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restored := openStore(t, "sqlite:"+out, newClock())
	if err := restored.AppendAudit(ctx, entry("three, after the restore")); err != nil {
		t.Fatal(err)
	}
	v := verify(t, restored)
	if v.Break != nil || v.Entries != 3 {
		t.Fatalf("the restored chain: %d entries, break %+v; want 3 entries, whole", v.Entries, v.Break)
	}
	if v.Head.ID != kept.ID || v.Head.Hash == kept.Hash {
		t.Errorf("the restored head is entry %d, %s; want entry %d again with another hash than the kept %s", v.Head.ID, v.Head.Hash, kept.ID, kept.Hash)
	}
}

// TestTheAuditLogListsTheChainInOrder: times need not rise with ids (see
// TestAnAuditWalkSinceATimeIsAPieceOfTheChain). The log lists entries
// newest first in chain order, each the successor of the next, so an
// auditor finds no hole where there is none: whole, by route, before a
// time (the piece an export since that time leaves out) and page by
// page, with entries appended between pages neither skipped nor
// repeated.
func TestTheAuditLogListsTheChainInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.fresh(t), nil)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
		add := func(m int, route string) {
			t.Helper()
			appendAuditAt(t, s, domain.AuditEntry{At: t0.Add(time.Duration(m) * time.Minute), Actor: "bob", Action: "denied", Route: route})
		}
		// Minutes after t0 of entries in id order: the third was timed
		// before the second, on a replica whose clock is behind.
		for i, m := range []int{0, 10, 9, 11, 12} {
			add(m, []string{"r", "q"}[i%2])
		}
		list := func(f AuditFilter) (ids []int64) {
			t.Helper()
			got, err := s.AuditLog(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range got {
				ids = append(ids, e.ID)
				if f.Route == "" && i > 0 && got[i-1].PrevHash != e.Hash {
					t.Errorf("%+v: entry %d is listed after entry %d, which does not follow it", f, e.ID, got[i-1].ID)
				}
			}
			return ids
		}
		if got, want := list(AuditFilter{}), []int64{5, 4, 3, 2, 1}; !slices.Equal(got, want) {
			t.Errorf("the whole log lists entries %v, want %v", got, want)
		}
		if got, want := list(AuditFilter{Route: "r"}), []int64{5, 3, 1}; !slices.Equal(got, want) {
			t.Errorf("route r's entries are listed %v, want %v", got, want)
		}
		// Entry 2 is the first at or after 10:10: entry 3 (10:09) comes
		// after it in the chain and is exported since 10:10, not listed
		// before it.
		if got, want := list(AuditFilter{Before: new(t0.Add(10 * time.Minute))}), []int64{1}; !slices.Equal(got, want) {
			t.Errorf("before 10:10 the log lists %v, want %v", got, want)
		}
		if got, want := list(AuditFilter{Before: new(t0.Add(time.Hour))}), []int64{5, 4, 3, 2, 1}; !slices.Equal(got, want) {
			t.Errorf("before 11:00 the log lists %v, want %v", got, want)
		}
		var paged []int64
		page := list(AuditFilter{Limit: 2})
		for len(page) > 0 {
			paged = append(paged, page...)
			add(1, "r") // appended between pages, timed early
			page = list(AuditFilter{BeforeID: page[len(page)-1], Limit: 2})
		}
		if want := []int64{5, 4, 3, 2, 1}; !slices.Equal(paged, want) {
			t.Errorf("page by page the log lists %v, want %v", paged, want)
		}
	})
}

// TestAuditTimesPastTheYear9999: a time past the year 9999 (an operator's
// before= or audit export --since, 9999-12-31T23:59:59-23:00 being
// 10000-01-01 in UTC) is after every entry on both back-ends: the log
// lists all of them before it and an export from it has none. SQLite,
// comparing times as text, put "10000-…" before every entry. At the
// other end, before=0001-01-01T00:00:00Z (Go's zero time) is before
// every entry: it listed the newest, taken for "no filter".
func TestAuditTimesPastTheYear9999(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.fresh(t), nil)
		ctx := context.Background()
		t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
		for m := range 3 {
			if err := s.AppendAudit(ctx, domain.AuditEntry{At: t0.Add(time.Duration(m) * time.Minute), Actor: "bob", Action: "denied", Route: "r"}); err != nil {
				t.Fatal(err)
			}
		}
		far, err := time.Parse(time.RFC3339, "9999-12-31T23:59:59-23:00")
		if err != nil {
			t.Fatal(err)
		}
		listed, err := s.AuditLog(ctx, AuditFilter{Before: &far})
		if err != nil || len(listed) != 3 {
			t.Errorf("the log before %s: %d entries, %v; want all 3", far.UTC(), len(listed), err)
		}
		for _, early := range []time.Time{{}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)} {
			listed, err = s.AuditLog(ctx, AuditFilter{Before: &early})
			if err != nil || len(listed) != 0 {
				t.Errorf("the log before %s: %d entries, %v; want none", early, len(listed), err)
			}
		}
		walked := 0
		err = s.WalkAudit(ctx, far, func(domain.AuditEntry) error { walked++; return nil })
		if err != nil || walked != 0 {
			t.Errorf("the entries since %s: %d, %v; want none", far.UTC(), walked, err)
		}
	})
}

// appendAuditAt appends e at e.At, as the embedded store does, or as a
// replica of an earlier release stamped it on PostgreSQL, by its own
// clock (the hash then no longer matches: a walk or listing does not
// check it).
func appendAuditAt(t *testing.T, s *Store, e domain.AuditEntry) {
	t.Helper()
	ctx := context.Background()
	if err := s.AppendAudit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if s.dialect.name != "postgres" {
		return
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE strangler_audit SET at = $1 WHERE id = (SELECT max(id) FROM strangler_audit)`, e.At); err != nil {
		t.Fatal(err)
	}
}
