package router

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
)

// heldJournal holds each write it begins until proceed is closed, once
// it has said so on entered.
type heldJournal struct {
	storeJournal
	entered, proceed chan struct{}
}

func (j heldJournal) BeginWriteTurn(ctx context.Context, in domain.Intent, lease time.Duration) (bool, error) {
	j.entered <- struct{}{}
	<-j.proceed
	return j.storeJournal.BeginWriteTurn(ctx, in, lease)
}

// TestAChangeOfWhereWritesGoWaitsForTheWritesBeingJournaled: while a dual
// write is being journaled under the table serving, no change of where
// routes send writes can be checked and swapped in (Router.HoldWrites):
// the check would read a journal without it, and the change go through
// while the write is then on its way to the backend the route writes to
// directly next.
func TestAChangeOfWhereWritesGoWaitsForTheWritesBeingJournaled(t *testing.T) {
	legacy := testkit.NewBackend(t, nil)
	modern := testkit.NewBackend(t, nil)
	st := newDualWriteReplica(t, "sqlite:"+filepath.Join(t.TempDir(), "strangler.db"), legacy.URL, modern.URL, 5*time.Second, dualWriteRoutes).store
	j := heldJournal{storeJournal{Store: st}, make(chan struct{}), make(chan struct{})}
	f := serveConfig(t, testConfig(t, legacy.URL, modern.URL, "", dualWriteRoutes), func(d *Deps) { d.Journal = j })

	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, f.URL+"/items/1", nil)
		res, err := f.Client().Do(req)
		if err != nil {
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	<-j.entered
	if f.router.journaling.mu.TryLock() {
		f.router.journaling.mu.Unlock()
		t.Errorf("a change could be checked and swapped in while a dual write was being journaled under the table it replaces")
	}
	close(j.proceed)
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("the PUT: got %d, want 200", code)
	}
	release := f.router.HoldWrites()
	release()
}
