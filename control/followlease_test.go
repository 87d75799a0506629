package control

import (
	"context"
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
// reads the flags again, and checks that they are current before it sends
// a write straight to a backend, as serve wires it.
func newFollowingReplica(t *testing.T, dsn, legacyURL, modernURL string) *servingReplica {
	t.Helper()
	return serveReplica(t, dsn, legacyURL, modernURL, legacyWrites, func(r *servingReplica, deps *router.Deps) {
		deps.Resync = func(ctx context.Context) { r.flags.Resync(ctx) }
		deps.Follows = func() bool { return r.flags.Follows() }
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.flags.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	<-b.flags.Watching()

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

// TestAReplicaCutOffFromTheStoreSendsNoWriteStraightPastItsLease: replica
// b loses the store; replica a flips put-item from legacy into dual-write
// meanwhile. Before, b sent its writes straight to legacy as its last
// known flags said, journaled nowhere, for as long as the cut lasted.
// Now a write b cannot tell is still the route's (its flags read from the
// store over a second ago, and not readable again) answers 503 with
// Retry-After and a JSON error saying why, and reaches no backend; once
// the store is back, b's writes are journaled as the flip says.
func TestAReplicaCutOffFromTheStoreSendsNoWriteStraightPastItsLease(t *testing.T) {
	dsn := testdb.Postgres(t)
	proxy, proxied := testdb.NewProxy(t, dsn)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: legacyWrites})
	b := newFollowingReplica(t, proxied, legacy.URL, modern.URL)

	proxy.Cut()
	flipIntoDualWrite(t, a)
	resp, answer := b.send(t, "/items/1", `{"v":1}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(answer, `"error":"this replica could not read its route flags from the state store`) {
		t.Errorf("a write through replica b without the store: got %d, Retry-After %q, %s; want 503, Retry-After 1 and a JSON error saying its flags could not be read",
			resp.StatusCode, resp.Header.Get("Retry-After"), answer)
	}
	if _, ok := legacy.body("/items/1"); ok {
		t.Errorf("legacy got the write refused without the store")
	}
	if _, ok := modern.body("/items/1"); ok {
		t.Errorf("modern got the write refused without the store")
	}

	proxy.Restore()
	// The first statements after the cut may meet the pool's dead
	// connections: a write refused so is retried, as its client would.
	var code int
	testkit.Eventually(t, 10*time.Second, "a write through replica b is served once the store is back", func() bool {
		code = b.put(t, "/items/2", `{"v":2}`)
		return code != http.StatusServiceUnavailable
	})
	if code != http.StatusOK {
		t.Errorf("the write once the store is back: got %d, want 200", code)
	}
	if got, ok := legacy.body("/items/2"); !ok || got != `{"v":2}` {
		t.Errorf("legacy holds %q (%t) for /items/2, want the write: it is the primary", got, ok)
	}
	if n := owedToModern(t, a); n != 1 {
		t.Errorf("the journal holds %d write(s) of put-item owed to modern, want the one written through replica b once the store was back", n)
	}
}
