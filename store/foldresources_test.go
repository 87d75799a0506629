package store

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/internal/testkit"
	"strangler/phi"
)

// beforeFolding makes dsn a store whose journal a release before
// migration 0170 wrote, and returns dsn: write journals in it, opened
// with keys (store_encryption), the writes that release journaled, each
// named by the resource its router gave (the canonical path unfolded,
// which the tests spell out); then the record of 0170, which changes no
// schema, is removed, so that the next open migrates the store as an
// upgrade does.
func beforeFolding(t *testing.T, dsn string, keys [][32]byte, write func(s *Store)) string {
	return before(t, 170, dsn, keys, write)
}

// before is beforeFolding for the release before migration version,
// which changes no schema either.
func before(t *testing.T, version int, dsn string, keys [][32]byte, write func(s *Store)) string {
	t.Helper()
	old := openLogged(t, dsn, testLogger(t), keys)
	write(old)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	unapply(t, dsn, version)
	return dsn
}

// unapply removes the record of migration version from dsn's store.
func unapply(t *testing.T, dsn string, version int) {
	t.Helper()
	_, db, err := openDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM strangler_schema_migrations WHERE version = $1`, version); err != nil {
		t.Fatal(err)
	}
}

// openLogged opens dsn with keys, logging to log, for the rest of the
// test (closing it before is fine).
func openLogged(t *testing.T, dsn string, log *slog.Logger, keys [][32]byte) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, log, WithEncryption(keys))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// oldWrite is a write to path through a route of pattern, its resource
// as a release before 0170 named it: the path itself, unfolded.
func oldWrite(s *Store, id, method, pattern, path string) domain.Intent {
	return domain.Intent{
		ID: id, Route: "records", Resource: path, ResourceView: s.Hasher().Path(pattern, path),
		Method: method, StandsFor: method, Target: path + "?notify=1",
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    []byte(`{"v":"` + id + `"}`),
		Primary: domain.Legacy,
	}
}

// journalRows is id, resource, resource_view and whether the write holds
// its turn, of every write in the journal, by id.
func journalRows(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.db.Query(`SELECT id, resource, resource_view, turn AND state = 'sent' FROM strangler_repairs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, resource, view string
		var turn bool
		if err := rows.Scan(&id, &resource, &view, &turn); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{id, resource, view, map[bool]string{true: "turn"}[turn]}, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenWritesOfAnEarlierReleaseAreOrderedWithNewOnesToTheSameRecord:
// a release before 0170 named a write's resource by its path unfolded,
// this one by the path as backends read it loosely (/records/4.json and
// /Records/5 are /records/4 and /records/5). After the upgrade, a new
// write to a record waits for the writes that release journaled to it
// under another spelling and left open: a pending PUT, creates whose
// Location (under the primary's base path) or id named the record, and a
// write left sent holding the record's turn. Two old writes left sent
// holding the turn under two spellings (the upgrade's cause: they were
// with the primary at once) leave one holding it, the first journaled,
// and the other waits for it. The re-keyed writes are shown by the
// resource a new one is. A write whose target no longer parses keeps its
// key, and the log counts it without its path; a settled write is not
// counted. With store_encryption the
// same, from the sealed requests; and running the migration's step again
// changes nothing.
func TestOpenWritesOfAnEarlierReleaseAreOrderedWithNewOnesToTheSameRecord(t *testing.T) {
	for _, enc := range []struct {
		name string
		keys [][32]byte
	}{{"clear", nil}, {"sealed", [][32]byte{key(7)}}} {
		t.Run(enc.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, b backend) {
				testOldWritesOrdered(t, b, enc.keys)
			})
		})
	}
}

func testOldWritesOrdered(t *testing.T, b backend, keys [][32]byte) {
	ctx := context.Background()
	dsn := beforeFolding(t, b.fresh(t), keys, func(s *Store) {
		answered := func(in domain.Intent, o domain.Outcome) {
			t.Helper()
			if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordOutcome(ctx, in.ID, o); err != nil {
				t.Fatal(err)
			}
		}
		answered(oldWrite(s, "a1-put-json", http.MethodPut, "/records/{id}", "/records/4.json"), domain.Outcome{Status: http.StatusOK})
		create := oldWrite(s, "a2-create", http.MethodPost, "/records", "/records")
		answered(create, domain.Outcome{Status: http.StatusCreated, Location: "http://legacy.internal:8080/api/records/7.json",
			Resource: "/records/7.json", ResourceView: s.Hasher().Path("/records", "/records/7.json")})
		create = oldWrite(s, "a3-create-id", http.MethodPost, "/items", "/items")
		answered(create, domain.Outcome{Status: http.StatusCreated, PrimaryID: "K9",
			Resource: "/items/K9", ResourceView: s.Hasher().Path("/items", "/items/K9")})
		for _, in := range []domain.Intent{oldWrite(s, "a4-sent", http.MethodPut, "/Records/{id}", "/Records/5"), oldWrite(s, "a5-sent-json", http.MethodPut, "/records/{id}", "/records/5.json")} {
			if turn, err := s.BeginWriteTurn(ctx, in, time.Hour); err != nil || !turn {
				t.Fatalf("%s journaled with its turn: %v, %v", in.ID, turn, err)
			}
		}
		// Settled: its request erased, nothing to re-key or count.
		answered(oldWrite(s, "a7-skipped", http.MethodPut, "/records/{id}", "/records/8.json"), domain.Outcome{Status: http.StatusBadGateway})
		bad := oldWrite(s, "a6-bad-target", http.MethodPut, "/patients/{id}", "/patients/"+canary+"%ZZ")
		if err := s.BeginWrite(ctx, bad, time.Hour); err != nil {
			t.Fatal(err)
		}
	})
	var logs testkit.Logs
	s := openLogged(t, dsn, logs.Logger(slog.LevelInfo), keys)

	if got := turnHolders(t, s); !slices.Equal(got, []string{"a4-sent"}) {
		t.Errorf("writes holding a turn after the upgrade: %v, want [a4-sent] (a5-sent-json's is /records/5's too)", got)
	}
	answeredWrites(t, s, map[string]string{"/records/4": "b1", "/records/7": "b2", "/items/K9": "b3"})
	claimed, err := s.ClaimRepairs(ctx, "worker", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(claimed); !slices.Equal(got, []string{"a1-put-json", "a2-create", "a3-create-id"}) {
		t.Errorf("claimed %v, want [a1-put-json a2-create a3-create-id]: new writes to their records wait for them", got)
	}
	turnStaysHeld(t, s, "b4", "/records/5", "a5-sent-json")

	list, err := s.ListRepairs(ctx, RepairFilter{})
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]string{}
	for _, r := range list {
		views[r.ID] = r.Resource
	}
	h := s.Hasher()
	for id, want := range map[string]string{
		"a1-put-json":   h.Path("/records/{id}", "/records/4"),
		"a2-create":     h.Path("/records", "/records/7"),
		"a3-create-id":  h.Path("/items", "/items/k9"),
		"a4-sent":       h.Path("/Records/{id}", "/records/5"),
		"a5-sent-json":  h.Path("/records/{id}", "/records/5"),
		"a6-bad-target": h.Path("/patients/{id}", "/patients/"+canary+"%ZZ"),
	} {
		if views[id] != want {
			t.Errorf("%s is shown as %s, want %s", id, views[id], want)
		}
	}

	var bad string
	if err := s.db.QueryRowContext(ctx, `SELECT resource FROM strangler_repairs WHERE id = 'a6-bad-target'`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != s.resourceKey("/patients/"+canary+"%ZZ") {
		t.Error("the write whose target does not parse was re-keyed")
	}
	left := logs.Lines(t, leftLine)
	if len(left) != 1 || left[0]["target_unparsable"] != 1.0 || left[0]["writes"] != 1.0 {
		t.Errorf("log lines about writes left: %v, want one counting the write whose target does not parse", left)
	}
	if strings.Contains(logs.String(), canary) {
		t.Errorf("the log names a path: %s", logs.String())
	}

	// Again: the step finds every write folded already.
	rerunChangesNothing(t, s, dsn, 170, keys)
}

// TestOpenWritesToAnIntegerIdSpelledOtherwiseAreOrderedWithNewOnes: a
// release from migration 0170 to 0200 named a write's resource by its
// path's loose reading, an integer segment as spelled (/Items/008.json
// was /items/008); this one reads it as backends read an id (/items/8).
// After the upgrade, a new write to a record waits for the writes that
// release left open to it under another spelling: a pending PUT, a
// create whose primary gave the id 0012, and writes left sent holding
// the turn of /items/07 and of /items/7 (with the primary at once: the
// red team's case), of which the one already under /items/7's key keeps
// it and the other waits for it. A create that named nothing keeps its
// own resource, and the log counts no write left unrecognised. Running
// the step again changes nothing.
func TestOpenWritesToAnIntegerIdSpelledOtherwiseAreOrderedWithNewOnes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// As that release's router named them: Fold of the path.
		loose := func(s *Store, id, method, pattern, path, resource string) domain.Intent {
			in := oldWrite(s, id, method, pattern, path)
			in.Resource, in.ResourceView = resource, s.Hasher().Path(pattern, resource)
			return in
		}
		dsn := before(t, 200, b.fresh(t), nil, func(s *Store) {
			answered := func(in domain.Intent, o domain.Outcome) {
				t.Helper()
				if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
					t.Fatal(err)
				}
				if err := s.RecordOutcome(ctx, in.ID, o); err != nil {
					t.Fatal(err)
				}
			}
			answered(loose(s, "c1-put", http.MethodPut, "/Items/{id}", "/Items/008.json", "/items/008"), domain.Outcome{Status: http.StatusOK})
			answered(loose(s, "c2-create", http.MethodPost, "/items", "/items", "/items"), domain.Outcome{Status: http.StatusCreated, PrimaryID: "0012",
				Resource: "/items/0012", ResourceView: s.Hasher().Path("/items", "/items/0012")})
			// A resource of its own, which no other write shares.
			answered(loose(s, "c5-create-own", http.MethodPost, "/Items/{id}/notes", "/Items/007/notes", "/items/007/notes"), domain.Outcome{Status: http.StatusCreated,
				Resource: "/items/007/notes#c5-create-own", ResourceView: s.Hasher().Path("/Items/{id}/notes", "/items/007/notes")})
			for _, in := range []domain.Intent{
				loose(s, "c3-sent-07", http.MethodPut, "/items/{id}", "/items/07", "/items/07"),
				loose(s, "c4-sent-7", http.MethodDelete, "/items/{id}", "/items/7", "/items/7"),
			} {
				if turn, err := s.BeginWriteTurn(ctx, in, time.Hour); err != nil || !turn {
					t.Fatalf("%s journaled with its turn: %v, %v", in.ID, turn, err)
				}
			}
		})
		var logs testkit.Logs
		s := openLogged(t, dsn, logs.Logger(slog.LevelInfo), nil)

		if got := turnHolders(t, s); !slices.Equal(got, []string{"c4-sent-7"}) {
			t.Errorf("writes holding a turn after the upgrade: %v, want [c4-sent-7] (c3-sent-07's is /items/7's too)", got)
		}
		answeredWrites(t, s, map[string]string{"/items/8": "d1", "/items/12": "d2"})
		claimed, err := s.ClaimRepairs(ctx, "worker", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(claimed); !slices.Equal(got, []string{"c1-put", "c2-create", "c5-create-own"}) {
			t.Errorf("claimed %v, want [c1-put c2-create c5-create-own]: new writes to /items/8 and /items/12 wait for them", got)
		}
		if left := logs.Lines(t, leftLine); len(left) != 0 {
			t.Errorf("log lines about writes left: %v, want none (c5-create-own's resource is its own by either rule)", left)
		}
		turnStaysHeld(t, s, "d3", "/items/7", "c3-sent-07")

		rerunChangesNothing(t, s, dsn, 200, nil)
	})
}

// turnHolders are the ids of the sent writes holding their resource's
// turn.
func turnHolders(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.db.Query(`SELECT id FROM strangler_repairs WHERE turn AND state = 'sent' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOpenWritesWhoseRequestCannotBeReadKeepTheirKey: a write an earlier
// release journaled encrypted under a key no longer configured cannot be
// re-keyed (its path is only in its sealed request); the upgrade goes on,
// the write keeps its key and the log counts it.
func TestOpenWritesWhoseRequestCannotBeReadKeepTheirKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// The hash key was drawn before store_encryption was turned on,
		// and stays readable; the write is sealed under key(1).
		dsn := b.fresh(t)
		if err := openLogged(t, dsn, testLogger(t), nil).Close(); err != nil {
			t.Fatal(err)
		}
		var key0 string
		dsn = beforeFolding(t, dsn, [][32]byte{key(1)}, func(s *Store) {
			journal(t, s, "lost", "/records/4.json")
			key0 = s.resourceKey("/records/4.json")
		})
		var logs testkit.Logs
		s := openLogged(t, dsn, logs.Logger(slog.LevelInfo), [][32]byte{key(2)})
		var resource string
		if err := s.db.QueryRowContext(ctx, `SELECT resource FROM strangler_repairs WHERE id = 'lost'`).Scan(&resource); err != nil {
			t.Fatal(err)
		}
		if resource != key0 {
			t.Errorf("the unreadable write's resource changed")
		}
		left := logs.Lines(t, leftLine)
		if len(left) != 1 || left[0]["request_unreadable"] != 1.0 {
			t.Errorf("log lines about writes left: %v, want one counting the unreadable write", left)
		}
	})
}

// TestAReKeyedWriteIsShownAsANewWriteThroughItsRouteIs: the view of a
// re-keyed write, rebuilt from its old view without the route's pattern,
// is the one a new write to its folded resource through that route gets:
// parameters, a trailing wildcard, segments beyond the pattern (a
// create's new id) and a view hashing every segment.
func TestAReKeyedWriteIsShownAsANewWriteThroughItsRouteIs(t *testing.T) {
	s := &Store{hasher: phi.RandomHasher()}
	for _, c := range []struct{ pattern, old string }{
		{"/records/{id}", "/records/4.json"},
		{"/Records/{id:[0-9]+}", "/Records/5"},
		{"/files/*", "/files/A/B.json"},
		{"/records", "/records/7.json"},
		{"/records/{id}.json", "/records/X.json"},
		{"", "/Records/4.json"},
	} {
		folded := canonical.Resource(c.old)
		want := s.resourceView(s.hasher.Path(c.pattern, folded), folded)
		if got := s.foldedView(s.resourceView(s.hasher.Path(c.pattern, c.old), c.old), folded); got != want {
			t.Errorf("%s through %q re-keyed to %s is shown as %s, want %s", c.old, c.pattern, folded, got, want)
		}
	}
}

// answeredWrites journals a new write with each id to its path, keyed as
// the router keys it, which its primary answered 200.
func answeredWrites(t *testing.T, s *Store, byPath map[string]string) {
	t.Helper()
	for path, id := range byPath {
		in := intent(id, canonical.Resource(path))
		in.Target = path
		if err := s.BeginWrite(t.Context(), in, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(t.Context(), id, domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
	}
}

// turnStaysHeld checks that neither a new write id to path nor the sent
// write resend, re-keyed to path's resource beside another, takes the
// resource's turn, which the write already under its key holds.
func turnStaysHeld(t *testing.T, s *Store, id, path, resend string) {
	t.Helper()
	in := intent(id, canonical.Resource(path))
	in.Target = path
	if err := s.BeginWrite(t.Context(), in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if taken, err := s.TakeTurn(t.Context(), id, in.Resource, time.Minute); err != nil || taken {
		t.Errorf("a new write to %s took its turn (%v, %v) while a write re-keyed to it holds it", path, taken, err)
	}
	if taken, err := s.TakeResendTurn(t.Context(), resend, time.Minute); err != nil || taken {
		t.Errorf("%s took %s's turn (%v, %v) while the write already under its key holds it", resend, path, taken, err)
	}
}

// leftLine is the log line of an upgrade that left open writes keyed by
// an earlier rule.
const leftLine = "store migration: open dual writes of an earlier release keep their resource key, so new writes to the same resource under another spelling are not ordered with them"

// rerunChangesNothing closes s, takes the store at dsn back to before
// migration version, opens it again, so that the migration's step runs
// again, and checks that it left the journal as it was.
func rerunChangesNothing(t *testing.T, s *Store, dsn string, version int, keys [][32]byte) {
	t.Helper()
	before := journalRows(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	unapply(t, dsn, version)
	s = openLogged(t, dsn, testLogger(t), keys)
	if after := journalRows(t, s); !slices.Equal(after, before) {
		t.Errorf("the step run again changed the journal:\n%s\nwas\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
}
