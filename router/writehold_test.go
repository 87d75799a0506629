package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestAWriteWaitsForAHoldAtMostItsBound: a write that finds a hold in
// place waits at most its bound and is then refused; a client that leaves
// ends its wait; a write that finds none, or comes once the hold is
// released, journals at once.
func TestAWriteWaitsForAHoldAtMostItsBound(t *testing.T) {
	var h writeHold
	if err := h.enter(context.Background(), time.Hour); err != nil {
		t.Fatalf("a write without a hold: %v", err)
	}
	h.leave()

	release := h.hold()
	if err := h.enter(context.Background(), 20*time.Millisecond); !errors.Is(err, errWritesHeld) {
		t.Errorf("a write held past its bound: got %v, want errWritesHeld", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.enter(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a write whose client left while held: got %v, want context.Canceled", err)
	}
	entered := make(chan error, 1)
	go func() { entered <- h.enter(context.Background(), time.Hour) }()
	release()
	if err := <-entered; err != nil {
		t.Fatalf("a write held until the hold's release: %v", err)
	}

	h.leave()
}

// signalAtEOF is a request body that closes read once it has been read
// whole.
type signalAtEOF struct {
	r    io.Reader
	read chan struct{}
}

func (b *signalAtEOF) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		close(b.read)
	}
	return n, err
}

// TestAClientLeavingWhileItsWriteIsHeldIsCountedAsLeft: a dual write
// whose client leaves while a change of the routes holds writes back is
// counted as the client leaving (499), as one that leaves while it waits
// for its resource's turn is, not as refused for the hold (503
// writes_held), which says the facade turned a waiting client away.
func TestAClientLeavingWhileItsWriteIsHeldIsCountedAsLeft(t *testing.T) {
	legacy := testkit.NewBackend(t, nil)
	d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 5*time.Second, dualWriteRoutes)
	release := d.router.HoldWrites()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	body := &signalAtEOF{r: strings.NewReader(`{"v":1}`), read: make(chan struct{})}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, d.URL+"/items/7", body)
	req.ContentLength = int64(len(`{"v":1}`))
	done := make(chan error, 1)
	go func() {
		resp, err := d.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-body.read // the facade has the body; the hold keeps it from journaling
	cancel()
	<-done
	var m testkit.Metrics
	testkit.Eventually(t, 10*time.Second, "the exchange counted", func() bool {
		m = testkit.Gather(t, d.reg)
		return m.Sum("strangler_requests_total", "route", "put-item") > 0
	})
	if left, held := m.Sum("strangler_requests_total", "route", "put-item", "code", "499"), m.Sum("strangler_refused_total", "reason", "writes_held"); left != 1 || held != 0 {
		t.Errorf("counted %v exchanges 499 and %v refused writes_held, want 1 and 0", left, held)
	}
	if legacy.Hits() != 0 {
		t.Error("the primary got a write whose client left while it was held")
	}
}
