package dualwrite

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRecoveryAfterARestartResendsFirstTheWriteThePrimaryHad: a facade
// dies with three PUTs of one item journaled on a route whose primary
// honours Idempotency-Key: v1 with the primary (applied), v2 and v3
// waiting their turn behind it, their journal entries written before
// v1's (their commits raced ahead of its, or a reload shortened the
// primary's timeout and so their leases). After the restart, recovery
// must send v1 again first: the primary applied it before the others,
// and the secondary gets the writes in the order recovery records them.
// Were v2 and v3 resent first, the primary would end with v3 and the
// secondary with v1, for good, every write acknowledged by the primary.
// On SQLite, which one process uses, the process's note of which write
// had the primary went with it; before the fix recovery followed the
// leases, and the secondary ended with v1 (bodies v2, v3, v1). A new
// write to the item waits until recovery has resent v1.
func TestRecoveryAfterARestartResendsFirstTheWriteThePrimaryHad(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) { restartResendsTheHeldWriteFirst(t, dsn(t)) })
	}
}

func restartResendsTheHeldWriteFirst(t *testing.T, dsn string) {
	ctx := context.Background()
	r := newRig(t, dsn, testSettings)
	r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
	var mu sync.Mutex
	var applied, secondary []string
	seen := map[string]bool{}
	r.legacy.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		if key := req.Header.Get("Idempotency-Key"); !seen[key] {
			seen[key] = true
			applied = append(applied, string(body))
		}
		mu.Unlock()
	})
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		secondary = append(secondary, string(body))
		mu.Unlock()
	})

	// The waiters, journaled first, with leases that pass first.
	for i, id := range []string{"w1", "w2"} {
		in := put(id, "7", `{"v":`+string(rune('2'+i))+`}`)
		if err := r.store.BeginWrite(ctx, r.asJournaled(in), -time.Duration(3-i)*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The write with the primary, as the router sends it: journaled
	// holding the process's turn, then the store's.
	held := put("w3", "7", `{"v":1}`)
	turn, err := r.store.BeginWriteTurn(ctx, r.asJournaled(held), -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !turn {
		if taken, err := r.store.TakeTurn(ctx, held.ID, held.Resource, time.Minute); err != nil || !taken {
			t.Fatalf("TakeTurn(w3) = %v, %v; want its turn: no other write had the primary", taken, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, r.legacy.URL+held.Target, strings.NewReader(string(held.Body)))
	req.Header.Set("Idempotency-Key", held.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The facade dies; another starts on the same store.
	r.store.Close()
	r.store = openStore(t, dsn)
	w := r.newWorker(r.store, testSettings)
	// A new write to the item before recovery resent v1 waits its turn:
	// it would be applied after v1 and recorded before it.
	late := put("w4", "7", `{"v":4}`)
	if turn, err := r.store.BeginWriteTurn(ctx, r.asJournaled(late), time.Minute); err != nil || turn {
		t.Fatalf("BeginWriteTurn of a new write while v1 is with recovery = %v, %v; want journaled without the turn", turn, err)
	}
	if taken, err := r.store.TakeTurn(ctx, late.ID, late.Resource, time.Minute); err != nil || taken {
		t.Errorf("TakeTurn of a new write while v1 is with recovery = %v, %v; want no turn", taken, err)
	}
	for range 5 { // a pass resends what has its turn; the rest waits for the next
		w.recover(ctx)
		r.deliverDue(w)
	}
	if taken, err := r.store.TakeTurn(ctx, late.ID, late.Resource, time.Minute); err != nil || !taken {
		t.Errorf("TakeTurn of the new write once recovery is done = %v, %v; want its turn", taken, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{`{"v":1}`, `{"v":2}`, `{"v":3}`}; !slices.Equal(applied, want) {
		t.Fatalf("the primary applied %v, want %v", applied, want)
	}
	if !slices.Equal(secondary, applied) {
		t.Errorf("the secondary got %v, want the primary's order %v", secondary, applied)
	}
}
