package router

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/domain"
	"strangler/dualwrite"
	"strangler/edge/canonical"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// These tests run two replicas, each a router with a store of its own
// on one PostgreSQL database, as replicas behind a load balancer share
// one store.

// newReplicas serves dualWriteRoutes through two replicas sharing a new
// PostgreSQL store, with backends that time out after timeout.
func newReplicas(t *testing.T, legacyURL, modernURL string, timeout time.Duration) (a, b *dualWriteFacade) {
	t.Helper()
	dsn := testdb.Postgres(t)
	a = newDualWriteReplica(t, dsn, legacyURL, modernURL, timeout, dualWriteRoutes)
	b = newDualWriteReplica(t, dsn, legacyURL, modernURL, timeout, dualWriteRoutes)
	return a, b
}

// runWorker runs d's repair worker, delivering to the secondary and
// recovering abandoned writes, until the test ends.
func runWorker(t *testing.T, d *dualWriteFacade) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := dualwrite.New(d.store, d.router, nil,
		config.Repairs{MaxAttempts: 5, Backoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Second), Workers: 2, Keep: config.Duration(time.Hour)},
		prometheus.NewRegistry(), func(string, string) {}, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// put sends a PUT of body to d's path and returns the status and body
// of the answer.
func put(t *testing.T, d *dualWriteFacade, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, d.URL+path, strings.NewReader(body))
	resp, err := d.Client().Do(req)
	if err != nil {
		t.Errorf("PUT %s %s: %v", path, body, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWritesToOneResourceThroughTwoReplicasReachThePrimaryOneAtATime:
// PUT v1 of an item through replica A, whose answer is late, then PUT
// v2 of it (spelled /items/%37/) through replica B. Were v2 to reach the
// primary meanwhile, it would be applied second and recorded, so queued
// for the secondary, first: the secondary would end with v1, the primary
// with v2. v2 reaches the primary only once v1's outcome is recorded,
// and the secondary ends with v2.
func TestWritesToOneResourceThroughTwoReplicasReachThePrimaryOneAtATime(t *testing.T) {
	var mu sync.Mutex
	var applied []string
	var a *dualWriteFacade
	var v1WhenV2Came []domain.State
	v1Applied, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseV1 := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseV1()
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		applied = append(applied, string(body))
		mu.Unlock()
		switch string(body) {
		case `{"v":1}`:
			close(v1Applied)
			// Late, until v2's answer is at its client (the proof
			// against the old order), or long enough for the replicas
			// to keep v2 back.
			select {
			case <-release:
			case <-time.After(time.Second):
			}
		case `{"v":2}`:
			for _, w := range a.writes(t) {
				v1WhenV2Came = append(v1WhenV2Came, w.State)
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	var smu sync.Mutex
	var secondary []string
	modern := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		smu.Lock()
		secondary = append(secondary, r.URL.Path+" "+string(body))
		smu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	a, b := newReplicas(t, legacy.URL, modern.URL, 10*time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		if code, body := put(t, a, "/items/7", `{"v":1}`); code != http.StatusOK {
			t.Errorf("PUT v1 through replica A: got %d %s, want 200", code, body)
		}
	})
	<-v1Applied
	wg.Go(func() {
		if code, body := put(t, b, "/items/%37/", `{"v":2}`); code != http.StatusOK {
			t.Errorf("PUT v2 through replica B: got %d %s, want 200", code, body)
		}
		releaseV1()
	})
	wg.Wait()

	writes := a.writes(t)
	slices.SortFunc(writes, func(x, y domain.Repair) int { return int(x.Seq - y.Seq) })
	var queued []string
	for _, w := range writes {
		queued = append(queued, string(w.Body))
	}
	mu.Lock()
	if !slices.Equal(queued, applied) || len(applied) != 2 {
		t.Errorf("queued for the secondary in the order %q, the primary applied %q: the secondary would end with another body than the primary", queued, applied)
	}
	// Oldest first: v1, then v2, still sent.
	if want := []domain.State{domain.StatePending, domain.StateSent}; !slices.Equal(v1WhenV2Came, want) {
		t.Errorf("when v2 reached the primary the writes were %v, want v1's outcome recorded (%v)", v1WhenV2Came, want)
	}
	mu.Unlock()

	runWorker(t, a)
	testkit.Eventually(t, 10*time.Second, "both writes reach the secondary", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return len(secondary) == 2
	})
	smu.Lock()
	defer smu.Unlock()
	if last := secondary[len(secondary)-1]; !strings.HasSuffix(last, ` {"v":2}`) {
		t.Errorf("the secondary got %q, and ends with %s; want v2 last, as the primary", secondary, last)
	}
}

// TestAWriteWaitsForAnotherReplicasTurnAtMostTwiceThePrimarysTimeout: a
// keyed PUT through replica A that the primary does not answer in time
// stays with it (recovery resends it with its key: its outcome, and so
// its order, is still to come). A PUT of the same item through replica
// B waits for it twice the primary's timeout, then is refused with 503
// and JSON, reaches no backend, is settled skipped and counted
// resource_busy. A PUT of another item through B does not wait.
func TestAWriteWaitsForAnotherReplicasTurnAtMostTwiceThePrimarysTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	var mu sync.Mutex
	var got []string
	stop := make(chan struct{})
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.URL.Path+" "+string(body))
		mu.Unlock()
		if r.URL.Path == "/keyed/7" {
			select {
			case <-stop:
			case <-time.After(20 * timeout):
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	defer close(stop)
	a, b := newReplicas(t, legacy.URL, testkit.NewBackend(t, nil).URL, timeout)
	if code, body := put(t, a, "/keyed/7", `{"v":1}`); code != http.StatusGatewayTimeout {
		t.Fatalf("PUT v1 through replica A: got %d %s, want 504", code, body)
	}
	start := time.Now()
	code, body := put(t, b, "/keyed/7", `{"v":2}`)
	took := time.Since(start)
	if code != http.StatusServiceUnavailable || took < 2*timeout {
		t.Errorf("PUT v2 through replica B: got %d %s after %v, want 503 after %v", code, body, took, 2*timeout)
	}
	var e struct{ Error string }
	if json.Unmarshal([]byte(body), &e) != nil || e.Error != errResourceBusy.Error() {
		t.Errorf("PUT v2: got %s, want the JSON error saying earlier writes to the resource are with the primary", body)
	}
	// At once: a write held behind v1's turn would be refused, as v2 was.
	if code, body := put(t, b, "/keyed/8", `{"v":1}`); code != http.StatusOK {
		t.Errorf("PUT of another item through replica B: got %d %s, want 200 at once", code, body)
	}
	if w := b.writes(t); len(w) != 3 || w[1].State != domain.StateSkipped || w[1].Outcome.Status != http.StatusBadGateway {
		t.Errorf("journal: %d writes, want 3 with v2 (the second) skipped with 502: no backend got it", len(w))
		for _, w := range w {
			t.Logf("%s %s: %s %d", w.Method, w.Target, w.State, w.Outcome.Status)
		}
	}
	if n := testkit.Gather(t, b.reg).Value("strangler_refused_total", "route", "put-keyed", "reason", "resource_busy"); n != 1 {
		t.Errorf("strangler_refused_total{reason=resource_busy} = %v on replica B, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{`/keyed/7 {"v":1}`, `/keyed/8 {"v":1}`}; !slices.Equal(got, want) {
		t.Errorf("the primary got %q, want %q: never the refused write", got, want)
	}
}

// TestAReplicaThatDiesHoldingATurnHoldsItUntilRecoveryMarksItsWrite: a
// replica journals a PUT of an item, takes its turn and dies before the
// primary answers. A PUT of the item through replica B is refused (503,
// resource_busy) while that write is sent; once its lease passes and
// recovery marks it unknown, B's PUT goes to the primary. Meanwhile a
// PUT of another item, and a POST to the collection (a create takes no
// turn) go at once.
func TestAReplicaThatDiesHoldingATurnHoldsItUntilRecoveryMarksItsWrite(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var mu sync.Mutex
	var got []string
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		if r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"data":{"id":"9"}}`)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	a, b := newReplicas(t, legacy.URL, testkit.NewBackend(t, nil).URL, timeout)
	ctx := context.Background()
	// Replica A's last acts: the writes journaled with a short lease and
	// their turns taken, the item's and the collection's (which no
	// create waits for).
	for _, w := range []struct{ id, path string }{{"dead-7", "/items/7"}, {"dead-items", "/items"}} {
		in := domain.Intent{ID: w.id, Route: "put-item", Resource: canonical.Resource(w.path), Method: http.MethodPut,
			Target: w.path, Body: []byte(`{"v":0}`), Primary: domain.Legacy, CreatedAt: time.Now()}
		if err := a.store.BeginWrite(ctx, in, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if taken, err := a.store.TakeTurn(ctx, w.id, canonical.Resource(w.path), time.Minute); err != nil || !taken {
			t.Fatalf("replica A's turn for %s: %v %v", w.path, taken, err)
		}
	}
	a.Close()

	if code, body := put(t, b, "/items/7", `{"v":1}`); code != http.StatusServiceUnavailable || !strings.Contains(body, errResourceBusy.Error()) {
		t.Errorf("PUT v1 while the dead replica's write holds the turn: got %d %s, want 503 resource busy", code, body)
	}
	// "At once" is the status: a write that waited for the dead
	// replica's turn would wait until recovery, which has not run yet,
	// and be refused after its bound (twice the primary's timeout). A
	// bound on the elapsed time failed at load 20 (207 ms against 200).
	if code, body := put(t, b, "/items/8", `{"v":1}`); code != http.StatusOK {
		t.Errorf("PUT of another item: got %d %s, want 200 at once", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, b.URL+"/items", strings.NewReader(`{"v":1}`))
	resp, err := b.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("POST to the collection: got %d, want 201 at once", resp.StatusCode)
	}

	runWorker(t, b) // recovery, at once and every few seconds
	testkit.Eventually(t, 20*time.Second, "recovery marks the dead replica's write unknown", func() bool {
		r, err := b.store.GetRepair(ctx, "dead-7", false)
		return err == nil && r.State == domain.StateUnknown
	})
	if code, body := put(t, b, "/items/7", `{"v":2}`); code != http.StatusOK {
		t.Errorf("PUT v2 once the dead replica's write is unknown: got %d %s, want 200", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{`PUT /items/8 {"v":1}`, `POST /items {"v":1}`, `PUT /items/7 {"v":2}`}; !slices.Equal(got, want) {
		t.Errorf("the primary got %q, want %q: never the refused write", got, want)
	}
}

// TestAClientLeavingWhileItsWriteWaitsForAnotherReplicaSendsNothing: a
// PUT waiting for its item's turn, which another replica's write holds,
// whose client hangs up, reaches no backend and is settled skipped at
// once, not when its wait would have ended.
func TestAClientLeavingWhileItsWriteWaitsForAnotherReplicaSendsNothing(t *testing.T) {
	var mu sync.Mutex
	var got []string
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	a, b := newReplicas(t, legacy.URL, testkit.NewBackend(t, nil).URL, 10*time.Second)
	ctx := context.Background()
	in := domain.Intent{ID: "held", Route: "put-item", Resource: canonical.Resource("/items/7"), Method: http.MethodPut,
		Target: "/items/7", Body: []byte(`{"v":0}`), Primary: domain.Legacy, CreatedAt: time.Now()}
	if err := a.store.BeginWrite(ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if taken, err := a.store.TakeTurn(ctx, "held", canonical.Resource("/items/7"), time.Minute); err != nil || !taken {
		t.Fatalf("replica A's turn: %v %v", taken, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		req, _ := http.NewRequestWithContext(cctx, http.MethodPut, b.URL+"/items/7", strings.NewReader(`{"v":1}`))
		if resp, err := b.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("PUT v1 answered %d, want its client gone", resp.StatusCode)
		}
	})
	testkit.Eventually(t, 5*time.Second, "the write is journaled", func() bool { return len(b.writes(t)) == 2 })
	cancel()
	wg.Wait()
	testkit.Eventually(t, 5*time.Second, "the write whose client left is settled skipped", func() bool {
		return b.writes(t)[1].State == domain.StateSkipped
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("the primary got %q, want nothing", got)
	}
}

// TestWritesWaitingInAReplicaKeepTheirOrderWhenAnotherReplicasTurnEnds:
// PUT v0 of an item through replica B is with the primary; PUT v1 of it
// through replica A waits for B's turn in the store, and PUT v2 through
// A arrives just after v0's outcome is recorded, before v1 asks again.
// A write asks for the store's turn in its journal entry only holding
// its replica's own turn of the item: were v2 to take the store's turn
// there, it would either overtake v1 or hold the store's turn while
// waiting for A's behind v1, and v1 would wait for it until refused.
// Both are answered 200, and the primary gets v0, v1, v2 in that order.
func TestWritesWaitingInAReplicaKeepTheirOrderWhenAnotherReplicasTurnEnds(t *testing.T) {
	var mu sync.Mutex
	var applied []string
	v0Applied, release := make(chan struct{}), make(chan struct{})
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		applied = append(applied, string(body))
		mu.Unlock()
		if string(body) == `{"v":0}` {
			close(v0Applied)
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	a, b := newReplicas(t, legacy.URL, testkit.NewBackend(t, nil).URL, 2*time.Second)
	v0Done := make(chan struct{})
	go func() {
		defer close(v0Done)
		if code, body := put(t, b, "/items/7", `{"v":0}`); code != http.StatusOK {
			t.Errorf("PUT v0 through replica B: got %d %s, want 200", code, body)
		}
	}()
	<-v0Applied
	var wg sync.WaitGroup
	wg.Go(func() {
		if code, body := put(t, a, "/items/7", `{"v":1}`); code != http.StatusOK {
			t.Errorf("PUT v1 through replica A: got %d %s, want 200", code, body)
		}
	})
	testkit.Eventually(t, 10*time.Second, "v1 is journaled, waiting for B's turn", func() bool {
		return len(a.writes(t)) == 2
	})
	// v1 asks for the store's turn every 100 ms by now: v2 comes
	// between two of its tries.
	time.Sleep(300 * time.Millisecond)
	close(release)
	<-v0Done
	wg.Go(func() {
		if code, body := put(t, a, "/items/7", `{"v":2}`); code != http.StatusOK {
			t.Errorf("PUT v2 through replica A: got %d %s, want 200", code, body)
		}
	})
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if want := []string{`{"v":0}`, `{"v":1}`, `{"v":2}`}; !slices.Equal(applied, want) {
		t.Errorf("the primary got %q, want %q: the order the writes arrived in", applied, want)
	}
}

// TestRecoveryResendsAWriteInItsResourcesTurn: replica A dies with PUT
// v1 of an item with the primary (which applies it) and PUT v2 of it
// waiting behind v1, never sent. Recovery on replica B resends both to
// the primary, which honours Idempotency-Key: v1 is answered from the
// key, v2 is applied now. PUT v3 of the item through B while v2's
// resend is with the primary waits for it: were v3 sent, the primary
// would apply v2 then v3 and v3 could be recorded first, and the
// secondary would end with v2 while the primary has v3.
func TestRecoveryResendsAWriteInItsResourcesTurn(t *testing.T) {
	const timeout = time.Second
	var mu sync.Mutex
	var applied []string // the primary's bodies, in the order applied
	keys := map[string]bool{}
	v1Applied, v1Answer := make(chan struct{}), make(chan struct{})
	v2Resent, v3Answered := make(chan struct{}), make(chan struct{})
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		again := keys[key]
		keys[key] = true
		if !again {
			applied = append(applied, string(body))
		}
		mu.Unlock()
		switch {
		case again:
		case string(body) == `{"v":1}`:
			close(v1Applied)
			<-v1Answer
		case string(body) == `{"v":2}`:
			close(v2Resent)
			select { // until v3 is answered, or half the timeout
			case <-v3Answered:
			case <-time.After(timeout / 2):
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	var smu sync.Mutex
	var secondary []string
	modern := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		smu.Lock()
		secondary = append(secondary, string(body))
		smu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	dsn := testdb.Postgres(t)
	a := newDualWriteReplica(t, dsn, legacy.URL, modern.URL, timeout, dualWriteRoutes)
	b := newDualWriteReplica(t, dsn, legacy.URL, modern.URL, timeout, dualWriteRoutes)
	var wg sync.WaitGroup
	wg.Go(func() { put(t, a, "/keyed/7", `{"v":1}`) })
	<-v1Applied
	wg.Go(func() { put(t, a, "/keyed/7", `{"v":2}`) })
	testkit.Eventually(t, 10*time.Second, "v2 is journaled behind v1", func() bool {
		return len(a.writes(t)) == 2
	})
	// A dies: it writes nothing more to the store.
	a.store.Close()
	close(v1Answer)
	wg.Wait()
	a.Close()

	testdb.LapseRepairLeases(t, dsn)
	runWorker(t, b)
	select {
	case <-v2Resent:
	case <-time.After(20 * time.Second):
		t.Fatal("recovery did not resend v2")
	}
	if code, body := put(t, b, "/keyed/7", `{"v":3}`); code != http.StatusOK {
		t.Errorf("PUT v3 through B: got %d %s, want 200", code, body)
	}
	close(v3Answered)
	testkit.Eventually(t, 20*time.Second, "the secondary gets the three writes", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return len(secondary) == 3
	})
	mu.Lock()
	defer mu.Unlock()
	smu.Lock()
	defer smu.Unlock()
	want := []string{`{"v":1}`, `{"v":2}`, `{"v":3}`}
	if !slices.Equal(applied, want) {
		t.Errorf("the primary applied %q, want %q", applied, want)
	}
	if !slices.Equal(secondary, applied) {
		t.Errorf("the secondary got %q, the primary applied %q: they end with other bodies", secondary, applied)
	}
}
