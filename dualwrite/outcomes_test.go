package dualwrite

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/store"
)

// outcomesOnACuttableStore is a journal with a memory over a real
// PostgreSQL store the test can cut off and restore, and the ids it
// handed to delivery.
type outcomesOnACuttableStore struct {
	proxy    *testdb.Proxy
	direct   string // the store's DSN, not through the proxy
	st       *store.Store
	reg      *prometheus.Registry
	outcomes *Outcomes
	kicks    *Kicks
}

func newOutcomesOnACuttableStore(t *testing.T) *outcomesOnACuttableStore {
	t.Helper()
	direct := testdb.Postgres(t)
	proxy, dsn := testdb.NewProxy(t, direct)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &outcomesOnACuttableStore{proxy: proxy, direct: direct, st: st, reg: prometheus.NewRegistry(), kicks: NewKicks()}
	c.outcomes = NewOutcomes(st, c.kicks, c.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return c
}

// queued returns the ids handed to delivery so far.
func (c *outcomesOnACuttableStore) queued() []string {
	var ids []string
	for {
		select {
		case id := <-c.kicks.ids:
			ids = append(ids, id)
		default:
			return ids
		}
	}
}

func (c *outcomesOnACuttableStore) begin(t *testing.T, id, resource string) {
	t.Helper()
	err := c.outcomes.BeginWrite(context.Background(), domain.Intent{
		ID: id, Route: "put-item", Resource: resource, Method: http.MethodPut, Target: resource, Primary: "legacy",
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
}

func (c *outcomesOnACuttableStore) repair(t *testing.T, id string) domain.Repair {
	t.Helper()
	r, err := c.st.GetRepair(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runUntilRecorded runs the outcomes' flushing for the rest of the test
// and waits until what they held is recorded (waitRecorded).
func (c *outcomesOnACuttableStore) runUntilRecorded(t *testing.T, ctx context.Context, timeout time.Duration) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.outcomes.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	c.waitRecorded(t, timeout)
}

// waitRecorded waits until no outcome is held and the store takes writes.
func (c *outcomesOnACuttableStore) waitRecorded(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		since, held := c.outcomes.WritesFailing()
		if since.IsZero() && held == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d outcomes still held, failing since %v", timeout, held, since)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutcomesTheStoreRefusesAreRecordedOnceItIsBack(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	ctx := context.Background()
	c.begin(t, "first", "/items/1")
	c.begin(t, "second", "/items/1")
	c.begin(t, "refused", "/items/2")

	c.proxy.Cut()
	if err := c.outcomes.RecordOutcome(ctx, "first", domain.Outcome{Status: 200}); err != nil {
		t.Fatalf("recording with the store cut off: got %v, want nil (held in memory)", err)
	}
	if since, held := c.outcomes.WritesFailing(); since.IsZero() || held != 1 {
		t.Errorf("with the store cut off: failing since %v, %d held; want failing, 1 held", since, held)
	}
	if got := counterValue(t, c.reg, "strangler_store_write_errors_total"); got < 1 {
		t.Errorf("strangler_store_write_errors_total: got %v, want at least 1", got)
	}

	// The store is back, but the first outcome is still held: the second,
	// for the same resource, must not take a sequence number before it.
	c.proxy.Restore()
	if err := c.outcomes.RecordOutcome(ctx, "second", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	if err := c.outcomes.RecordOutcome(ctx, "refused", domain.Outcome{Status: 409}); err != nil {
		t.Fatal(err)
	}
	// The refusal takes no sequence number, so it waits for nothing.
	if _, held := c.outcomes.WritesFailing(); held != 2 {
		t.Errorf("outcomes arriving while others are held: %d held, want 2 (the second queued behind the first)", held)
	}

	c.runUntilRecorded(t, ctx, 10*time.Second)

	first, second := c.repair(t, "first"), c.repair(t, "second")
	if first.State != domain.StatePending || second.State != domain.StatePending {
		t.Errorf("states: got %s and %s, want both pending", first.State, second.State)
	}
	if first.Seq >= second.Seq {
		t.Errorf("sequence numbers: first %d, second %d; want the order the primary answered in", first.Seq, second.Seq)
	}
	if got := c.repair(t, "refused").State; got != domain.StateSkipped {
		t.Errorf("the write the primary refused: got %s, want skipped", got)
	}
	if queued := c.queued(); len(queued) != 2 || queued[0] != "first" || queued[1] != "second" {
		t.Errorf("handed to delivery: got %v, want [first second], the 2xx writes in order", queued)
	}
}

func TestOutcomesHeldAtShutdownGetALastAttempt(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	c.begin(t, "late", "/items/9")
	c.proxy.Cut()
	if err := c.outcomes.RecordOutcome(context.Background(), "late", domain.Outcome{Status: 201}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.outcomes.Run(ctx) }()
	start := time.Now()
	stop()                                                // shutdown begins while the store is still away...
	time.AfterFunc(300*time.Millisecond, c.proxy.Restore) // ...and it comes back
	select {
	case <-done:
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatal("Run did not return after its last attempt")
	}
	t.Logf("Run returned %v after the shutdown began", time.Since(start))
	if got := c.repair(t, "late").State; got != domain.StatePending {
		t.Errorf("after shutdown: got %s, want pending", got)
	}
}

// TestAnIntentCommittedUnbeknownstIsSettledAsNeverSent: the connection
// breaks after the intent's commit reached the server and before its
// answer came back, as in a failover. The client got 503 and the primary
// never saw the write; the intent must not stay sent (to be taken later
// for a write whose outcome a crash lost, or resent to an idempotent
// primary).
func TestAnIntentCommittedUnbeknownstIsSettledAsNeverSent(t *testing.T) {
	key := domain.IdempotencyKey{Key: "client-key", Fingerprint: "PUT /items/1 {}"}
	for _, tc := range []struct {
		name  string
		begin func(o *Outcomes, in domain.Intent) error
		// retry, if set, is the client's retry after the store is back.
		retry func(t *testing.T, o *Outcomes)
	}{
		{"a write", func(o *Outcomes, in domain.Intent) error {
			return o.BeginWrite(context.Background(), in, time.Minute)
		}, nil},
		{"a write with the client's Idempotency-Key", func(o *Outcomes, in domain.Intent) error {
			_, err := o.BeginKeyedWrite(context.Background(), in, key, time.Minute)
			return err
		}, func(t *testing.T, o *Outcomes) {
			in := domain.Intent{ID: "retry", Route: "put-item", Resource: "/items/1", Method: http.MethodPut, Target: "/items/1", Primary: "legacy"}
			kw, err := o.BeginKeyedWrite(context.Background(), in, key, time.Minute)
			if err != nil || kw.Use != domain.KeyJournaled {
				t.Errorf("the client's retry with its key: got %v %v, want a new write (the first never reached the primary), not in flight", kw.Use, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOutcomesOnACuttableStore(t)
			ctx := context.Background()
			observer, err := store.Open(ctx, c.direct, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer observer.Close()

			c.proxy.MuteOn("commit")
			refused := make(chan error, 1)
			go func() {
				refused <- tc.begin(c.outcomes, domain.Intent{
					ID: "ambiguous", Route: "put-item", Resource: "/items/1", Method: http.MethodPut, Target: "/items/1", Primary: "legacy",
				})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := observer.GetRepair(ctx, "ambiguous", false); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the intent was never committed")
				}
				time.Sleep(10 * time.Millisecond)
			}
			c.proxy.Cut()
			if err := <-refused; err == nil {
				t.Fatal("got nil, want the error the client is refused with")
			}
			c.proxy.Restore()
			c.runUntilRecorded(t, ctx, 10*time.Second)
			r := c.repair(t, "ambiguous")
			if r.State != domain.StateSkipped || r.Outcome.Status != http.StatusServiceUnavailable {
				t.Errorf("the intent: got %s with status %d, want skipped with 503, as the client was answered", r.State, r.Outcome.Status)
			}
			if tc.retry != nil {
				tc.retry(t, c.outcomes)
			}
		})
	}
}

func TestOutcomesTheStoreCannotEverTakeAreReported(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	err := c.outcomes.RecordOutcome(context.Background(), "never-journaled", domain.Outcome{Status: 200})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound: holding it would retry forever", err)
	}
	if since, held := c.outcomes.WritesFailing(); !since.IsZero() || held != 0 {
		t.Errorf("got failing since %v, %d held; want neither", since, held)
	}
}

// counterValue gathers a counter's value from the registry.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestOutcomesOfOtherResourcesPassTheHeldOnes: once the store is back,
// an outcome arriving while others are held waits behind them only if
// it is for a resource one of them is for. Every outcome waited: under
// a steady write load after a PostgreSQL restart the held ones were
// recorded barely faster than new ones joined them, and the facade said
// the store refused writes (strangler_store_up 0, /readyz degraded) for
// 88 s after it took them again, with hundreds of acknowledged writes
// only in memory all the while.
func TestOutcomesOfOtherResourcesPassTheHeldOnes(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	ctx := context.Background()
	intent := func(id, resource string) domain.Intent {
		return domain.Intent{ID: id, Route: "put-item", Resource: resource, Method: http.MethodPut, Target: resource, Primary: "legacy"}
	}
	for _, in := range []domain.Intent{intent("first", "/items/1"), intent("second", "/items/1"), intent("other", "/items/2")} {
		if err := c.outcomes.BeginWrite(ctx, in, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	c.proxy.Cut()
	if err := c.outcomes.RecordOutcomeOf(ctx, intent("first", "/items/1"), domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	c.proxy.Restore()
	for _, in := range []domain.Intent{intent("second", "/items/1"), intent("other", "/items/2")} {
		if err := c.outcomes.RecordOutcomeOf(ctx, in, domain.Outcome{Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if _, held := c.outcomes.WritesFailing(); held != 2 {
		t.Errorf("%d outcomes held, want 2: first, and second behind it (same resource)", held)
	}
	if got := c.repair(t, "other").State; got != domain.StatePending {
		t.Errorf("the write to another resource: %s, want pending, recorded at once", got)
	}

	c.runUntilRecorded(t, ctx, 10*time.Second)
	if first, second := c.repair(t, "first"), c.repair(t, "second"); first.Seq >= second.Seq {
		t.Errorf("sequence numbers on /items/1: first %d, second %d; want the order the primary answered in", first.Seq, second.Seq)
	}
}

// TestAHeldOutcomeSettlesNoWriteThatBecameUnknown: v1's answer is held
// through a store outage; meanwhile another replica's recovery makes v1
// unknown, and v2 to the same resource goes to the primary and reaches
// the secondary. Once the store is back the held answer settles
// nothing: v1 stays unknown, its answer noted for the operator, and the
// secondary is handed nothing after v2. Before, v1 became pending and
// was delivered after v2: the secondary ended with the older body.
func TestAHeldOutcomeSettlesNoWriteThatBecameUnknown(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	ctx := context.Background()
	other, err := store.Open(ctx, c.direct, nil) // another replica
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	c.begin(t, "v1", "/items/1")
	c.proxy.Cut()
	if err := c.outcomes.RecordOutcome(ctx, "v1", domain.Outcome{Status: 200}); err != nil {
		t.Fatalf("recording with the store cut off: got %v, want nil (held in memory)", err)
	}

	if err := other.MarkUnknown(ctx, "v1"); err != nil { // recovery, once v1's lease passed
		t.Fatal(err)
	}
	v2 := domain.Intent{ID: "v2", Route: "put-item", Resource: "/items/1", Method: http.MethodPut, Target: "/items/1", Primary: "legacy"}
	if taken, err := other.BeginWriteTurn(ctx, v2, time.Minute); err != nil || !taken {
		t.Fatalf("v2 taking the turn v1 no longer holds: %v, %v", taken, err)
	}
	if err := other.RecordOutcome(ctx, "v2", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	if r, ok, err := other.ClaimRepair(ctx, "v2", "worker", time.Minute); err != nil || !ok {
		t.Fatalf("claiming v2: %v, %v, %v", r.ID, ok, err)
	}
	if err := other.CompleteRepair(ctx, "v2", "worker"); err != nil {
		t.Fatal(err)
	}

	c.proxy.Restore()
	c.runUntilRecorded(t, ctx, 30*time.Second)

	if r := c.repair(t, "v1"); r.State != domain.StateUnknown || !strings.Contains(r.LastError, "answered 200 OK") {
		t.Errorf("v1 once its held answer was recorded: %s, last error %q; want unknown, the answer noted", r.State, r.LastError)
	}
	if queued := c.queued(); len(queued) != 0 {
		t.Errorf("handed to delivery after v2 was delivered: %v, want nothing", queued)
	}
	if due, err := other.ClaimRepairs(ctx, "worker", 10, time.Minute); err != nil || len(due) != 0 {
		t.Errorf("due for the secondary after v2: %d writes (%v), want none", len(due), err)
	}
}
