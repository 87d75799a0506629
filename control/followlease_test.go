package control

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/router"
)

// legacyWrites has one route whose writes go straight to legacy until it
// is flipped into dual-write (primary legacy).
const legacyWrites = `
routes:
  - name: put-item
    match: "PUT /items/{id}"
    mode: legacy
`

// newFollowingReplica is a servingReplica of legacyWrites whose router
// reads the flags again, and checks whether they are current before it
// sends a write straight to a backend, as serve wires it.
func newFollowingReplica(t *testing.T, dsn, legacyURL, modernURL string) *servingReplica {
	t.Helper()
	return serveReplica(t, dsn, legacyURL, modernURL, legacyWrites, func(r *servingReplica, deps *router.Deps) {
		deps.Resync = func(ctx context.Context) { r.flags.Resync(ctx) }
		deps.Follows = func(ctx context.Context) (bool, time.Time) { return r.flags.Follows(ctx) }
	})
}

// flipIntoDualWrite flips put-item into dual-write on replica a; it fails
// the test unless the flip answers 200.
func flipIntoDualWrite(t *testing.T, a *plane) {
	t.Helper()
	if resp, body := a.patch(t, "put-item", aliceToken, `{"mode": "dual-write", "reason": "start writing both"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("the flip into dual-write on replica a: got %d %v, want 200", resp.StatusCode, body)
	}
}

// owedToModern is how many of put-item's writes the journal of a holds
// open with legacy their primary: journaled, owed to modern.
func owedToModern(t *testing.T, a *plane) int {
	t.Helper()
	open, err := a.store.OpenPrimaries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return open["put-item"][domain.Legacy]
}

// TestAChangeIntoDualWriteIsFollowedByAReplicaThatMissedItBeforeItsNextWrite:
// replica b follows no change on its own (its notification late, its
// listening connection broken: its Run is not started), and had read the
// flags just before replica a flipped put-item from legacy into
// dual-write. Before, b's write after the flip answered went straight to
// legacy, journaled nowhere: modern never got it. Now the flip answers
// once b's flags are too old to send a write straight, so b reads them
// again first and journals the write, owed to modern.
func TestAChangeIntoDualWriteIsFollowedByAReplicaThatMissedItBeforeItsNextWrite(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: legacyWrites})
	b := newFollowingReplica(t, dsn, legacy.URL, modern.URL)
	if code := b.put(t, "/items/1", `{"v":1}`); code != http.StatusOK {
		t.Fatalf("the write through replica b before the flip: got %d, want 200", code)
	}
	if n := owedToModern(t, a); n != 0 {
		t.Fatalf("the journal holds %d write(s) of put-item before the flip, want none: it is in legacy", n)
	}

	b.flags.Resync(context.Background()) // b's flags are as current as they get
	flipIntoDualWrite(t, a)
	if code := b.put(t, "/items/2", `{"v":2}`); code != http.StatusOK {
		t.Fatalf("the write through replica b after the flip: got %d, want 200", code)
	}
	if got, ok := legacy.body("/items/2"); !ok || got != `{"v":2}` {
		t.Errorf("legacy holds %q (%t) for /items/2, want the write: it is the primary", got, ok)
	}
	if n := owedToModern(t, a); n != 1 {
		t.Errorf("the journal holds %d write(s) of put-item owed to modern after the flip answered, want the one written through replica b since", n)
	}
	if rf, _ := b.flags.Get("put-item"); rf.Mode != domain.ModeDualWrite {
		t.Errorf("replica b serves put-item in %s after its write, want dual-write: it read the flags again", rf.Mode)
	}
}

// TestAReplicaThatHearsNoNotificationJournalsTheWritesAfterAChangeIntoDualWrite:
// replica b runs as serve runs it, but the store's notifications never
// reach it (a connection that silently stopped delivering them). Before,
// it followed a change only at its re-read every 5 s, and its writes
// until then went straight to legacy after the flip answered. Now it
// reads the flags a few times a second to keep sending writes straight,
// and the flip answers once every replica has read it or sends them no
// more: b's writes after the answer are journaled, none refused.
func TestAReplicaThatHearsNoNotificationJournalsTheWritesAfterAChangeIntoDualWrite(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: legacyWrites})
	b := newFollowingReplica(t, dsn, legacy.URL, modern.URL)
	b.flags.store = deaf{b.store}
	follow(t, b.flags)

	flipIntoDualWrite(t, a)
	const writes = 5
	for i := range writes {
		path := "/items/" + string(rune('a'+i))
		if code := b.put(t, path, `{"v":1}`); code != http.StatusOK {
			t.Fatalf("write %d through replica b after the flip: got %d, want 200", i+1, code)
		}
	}
	if n := owedToModern(t, a); n != writes {
		t.Errorf("the journal holds %d write(s) of put-item owed to modern, want the %d written through replica b after the flip answered", n, writes)
	}
}

// follow runs f as serve does (Run: notifications, re-reads and
// retries) until the test ends, and returns once f listens for flips.
func follow(t *testing.T, f *Flags) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	<-f.Watching()
}

// staleWrites is strangler_stale_flags_writes_total of put-item on r,
// and the lines r logged about them.
func staleWrites(t *testing.T, r *servingReplica) (float64, []map[string]any) {
	t.Helper()
	var lines []map[string]any
	for _, l := range r.logs.Lines(t, "") {
		if l["level"] == "WARN" && l["route"] == "put-item" && strings.Contains(l["msg"].(string), "route flags this replica could not read") {
			lines = append(lines, l)
		}
	}
	return testkit.Gather(t, r.reg).Value("strangler_stale_flags_writes_total", "route", "put-item"), lines
}

// TestAReplicaCutOffFromTheStoreServesWritesOnItsLastFlagsWithinTheLease:
// replica b's store stops answering (a network that drops packets: a read
// waits for its 5 s timeout); replica a flips put-item from legacy into
// dual-write meanwhile. Before (fence2), b's write waited for that read,
// then answered 503: an outage of the store refused every write of the
// API. Now the write waits for the read at most the lease (a second),
// then goes to legacy as b's last flags say, counted in
// strangler_stale_flags_writes_total and logged (route, method, count,
// when the flags were read: nothing of the request), so that a backfill
// can bring modern what it missed; once the store is back, b follows the
// flip and journals the route's writes.
func TestAReplicaCutOffFromTheStoreServesWritesOnItsLastFlagsWithinTheLease(t *testing.T) {
	dsn := testdb.Postgres(t)
	proxy, proxied := testdb.NewProxy(t, dsn)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: legacyWrites})
	b := newFollowingReplica(t, proxied, legacy.URL, modern.URL)
	follow(t, b.flags)

	proxy.Silence()
	flipIntoDualWrite(t, a)
	began := time.Now()
	resp, answer := b.send(t, "/items/1", `{"v":1}`)
	if waited := time.Since(began); waited >= storeTimeout {
		t.Errorf("the write through replica b without the store took %v, want less than the store's timeout (%v): it waits for a read at most the lease", waited, storeTimeout)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a write through replica b without the store: got %d %s, want 200 from legacy", resp.StatusCode, answer)
	}
	if got, ok := legacy.body("/items/1"); !ok || got != `{"v":1}` {
		t.Errorf("legacy holds %q (%t) for /items/1, want the write: b's last flags send put-item there", got, ok)
	}
	if _, ok := modern.body("/items/1"); ok {
		t.Errorf("modern got the write sent on b's last flags")
	}
	n, lines := staleWrites(t, b)
	if n != 1 {
		t.Errorf("strangler_stale_flags_writes_total{route=put-item} is %v, want 1: the write sent on flags b could not read again", n)
	}
	if len(lines) != 1 || lines[0]["method"] != http.MethodPut || lines[0]["writes"] != 1.0 || lines[0]["flags_read_at"] == "never" {
		t.Errorf("replica b logged %v about writes on stale flags, want one WARN line of put-item, PUT, 1 write, and when its flags were read", lines)
	}
	if strings.Contains(b.logs.String(), `{\"v\":1}`) || strings.Contains(b.logs.String(), "/items/1") {
		t.Errorf("replica b's log holds the write's body or path: %s", b.logs.String())
	}

	proxy.Restore()
	// Writes sent before b reads the store again go on its last flags, as
	// the first did; once it has read it, they are journaled.
	i := 1
	testkit.Eventually(t, 10*time.Second, "a write through replica b is journaled once the store is back", func() bool {
		i++
		if code := b.put(t, fmt.Sprintf("/items/%d", i), `{"v":2}`); code != http.StatusOK {
			t.Fatalf("write %d through replica b: got %d, want 200", i, code)
		}
		return owedToModern(t, a) == 1
	})
}

// TestAReplicaThatKnowsItIsCutOffFromTheStoreKeepsServingWrites: replica
// b follows the store as serve runs it, and the store goes away (its
// connections closed, new ones refused). Before (fence2), once b's last
// read was a second old, every write of every route answered 503
// writes_held, routes that never needed the store included: the outage
// of the facade's store became an outage of every write. Now b, knowing
// its reads fail, serves them on its last flags at once, counts each,
// logs one line for them (paced by route), and /readyz says since when
// its flags were read.
func TestAReplicaThatKnowsItIsCutOffFromTheStoreKeepsServingWrites(t *testing.T) {
	dsn := testdb.Postgres(t)
	proxy, proxied := testdb.NewProxy(t, dsn)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	b := newFollowingReplica(t, proxied, legacy.URL, modern.URL)
	follow(t, b.flags)

	proxy.Cut()
	testkit.Eventually(t, 10*time.Second, "replica b knows it is cut off and its lease lapsed", func() bool {
		ok, _ := b.flags.StoreOK()
		return !ok && !b.flags.leased()
	})
	const writes = 3
	for i := range writes {
		path := fmt.Sprintf("/items/%d", i)
		if code := b.put(t, path, `{"v":1}`); code != http.StatusOK {
			t.Fatalf("write %d through replica b during the outage: got %d, want 200", i+1, code)
		}
		if _, ok := legacy.body(path); !ok {
			t.Errorf("legacy did not get write %d", i+1)
		}
	}
	n, lines := staleWrites(t, b)
	if n != writes {
		t.Errorf("strangler_stale_flags_writes_total{route=put-item} is %v, want %d", n, writes)
	}
	if len(lines) != 1 {
		t.Errorf("replica b logged %d lines about writes on stale flags, want 1: they are paced, a line a minute per route", len(lines))
	}
	if text := (&admin{AdminDeps: AdminDeps{Flags: b.flags}}).readyText(); !strings.Contains(text, "writes are served on route flags last read at ") {
		t.Errorf("/readyz says %q, want it to say since when the flags writes are served on were read", text)
	}
}
