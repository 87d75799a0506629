package dualwrite

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
	"strangler/upstream"
)

// secondaryRoutes sends every write to one secondary.
type secondaryRoutes struct{ up *upstream.Upstream }

func (r secondaryRoutes) Backend(domain.Backend) *upstream.Upstream { return r.up }
func (r secondaryRoutes) DualWrite(string) (domain.FieldPath, bool, bool) {
	return nil, false, true
}
func (r secondaryRoutes) Template(string) string { return "/items/{id}" }

// Created: these tests' writes create nothing.
func (r secondaryRoutes) Created(string, domain.Repair, *domain.Outcome) {}

// TestAClaimWhoseAnswerWasLostIsReleased: the connection breaks after a
// claim's commit reached the server and before its answer came back, as
// in a failover. The worker never learned it leased the write; it must
// not sit leased, with every later write to its resource behind it, until
// the lease passes.
func TestAClaimWhoseAnswerWasLostIsReleased(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	ctx := context.Background()
	observer, err := store.Open(ctx, c.direct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	// The secondary holds the delivery of /items/slow until released.
	var delivered, slow atomic.Int32
	release := make(chan struct{})
	secondary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/items/slow" {
			slow.Add(1)
			<-release
			return
		}
		delivered.Add(1)
	}))
	defer secondary.Close()
	defer close(release)
	u, _ := url.Parse(secondary.URL)
	w := New(c.st, secondaryRoutes{upstream.New("modern", upstream.Config{URL: u, Timeout: time.Second})}, nil,
		config.Repairs{MaxAttempts: 10, Backoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Second), Workers: 2},
		prometheus.NewRegistry(), func(string, string) {}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// A delivery under way when the claim is lost keeps its lease.
	c.begin(t, "slow", "/items/slow")
	if err := c.st.RecordOutcome(ctx, "slow", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	w.claimDue(ctx)
	for slow.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	c.begin(t, "leased", "/items/1")
	if err := c.st.RecordOutcome(ctx, "leased", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}

	c.proxy.MuteOn("commit")
	claimed := make(chan struct{})
	go func() {
		defer close(claimed)
		w.claimDue(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := observer.GetRepair(ctx, "leased", false)
		if err == nil && r.LeaseOwner == w.owner {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim was never committed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.proxy.Cut()
	<-claimed
	if got := delivered.Load(); got != 0 {
		t.Fatalf("delivered %d writes from a claim whose answer was lost", got)
	}

	c.proxy.Restore()
	w.claimDue(ctx)
	for delivered.Load() == 0 && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := delivered.Load(); got != 1 {
		t.Errorf("after the store is back: %d deliveries, want the leased write delivered at once", got)
	}
	if got := slow.Load(); got != 1 {
		t.Errorf("the delivery under way: sent %d times, want once: its lease was released under it", got)
	}
	release <- struct{}{}
	w.inflight.Wait()
	if r, err := observer.GetRepair(ctx, "leased", false); err != nil || r.State != domain.StateDone {
		t.Errorf("the write: got %+v %v, want done", r.State, err)
	}
}

func TestARefusedWriteIsForgottenAfterAWhile(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	now := time.Now()
	c.outcomes.now = func() time.Time { return now }
	c.proxy.Cut()
	err := c.outcomes.BeginWrite(context.Background(), domain.Intent{
		ID: "refused", Route: "put-item", Resource: "/items/1", Method: http.MethodPut, Target: "/items/1", Primary: "legacy",
	}, time.Minute)
	if err == nil {
		t.Fatal("BeginWrite with the store cut off: got nil")
	}
	if since, _ := c.outcomes.WritesFailing(); !since.Equal(now) {
		t.Errorf("right after the refusal: failing since %v, want %v", since, now)
	}
	now = now.Add(failingWindow)
	if since, held := c.outcomes.WritesFailing(); !since.IsZero() || held != 0 {
		t.Errorf("%v later, nothing tried since: failing since %v with %d held, want not failing", failingWindow, since, held)
	}
}

// TestADeliveryIsRecordedOnceTheStoreIsBack: the secondary applied a
// write while the store was away. The worker records that once the store
// is back, instead of letting the lease pass and delivering it again.
func TestADeliveryIsRecordedOnceTheStoreIsBack(t *testing.T) {
	c := newOutcomesOnACuttableStore(t)
	ctx := context.Background()
	var deliveries atomic.Int32
	arrived, answer := make(chan struct{}), make(chan struct{})
	secondary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if deliveries.Add(1) == 1 {
			close(arrived)
			<-answer
		}
	}))
	defer secondary.Close()
	u, _ := url.Parse(secondary.URL)
	w := New(c.st, secondaryRoutes{upstream.New("modern", upstream.Config{URL: u, Timeout: time.Second})}, nil,
		config.Repairs{MaxAttempts: 10, Backoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Second), Workers: 2},
		prometheus.NewRegistry(), func(string, string) {}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.begin(t, "applied", "/items/1")
	if err := c.st.RecordOutcome(ctx, "applied", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	w.claimDue(ctx)
	<-arrived
	c.proxy.Cut() // the store goes away while the secondary applies it
	close(answer)
	time.AfterFunc(time.Second, c.proxy.Restore)
	w.inflight.Wait()
	r := c.repair(t, "applied")
	if r.State != domain.StateDone || deliveries.Load() != 1 {
		t.Errorf("got %s after %d deliveries, want done after one", r.State, deliveries.Load())
	}
}
