package router

import (
	"context"
	"errors"
	"testing"
	"time"
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
