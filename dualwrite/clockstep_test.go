package dualwrite

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to move the leases as the server's clock would
	_ "modernc.org/sqlite"             // the "sqlite" driver, likewise

	"strangler/domain"
)

// TestAReplicaWhoseClockStepsForwardTakesNoLiveLease: replicas share one
// PostgreSQL store, and one of them has a clock an hour ahead (NTP
// stepped it, a VM resumed). While another replica delivers a write, the
// fast one does not take the delivery over (the secondary would get it
// twice); while a write waits for its primary's answer on another
// replica, the fast one does not take it for abandoned and mark it
// unknown. Leases run on the server's clock, not the replicas'.
func TestAReplicaWhoseClockStepsForwardTakesNoLiveLease(t *testing.T) {
	d := postgres(t)
	r := newRig(t, d, testSettings)
	r.routes.setBackend(t, "modern", r.modern.URL, time.Minute)
	fast := r.newWorker(openStore(t, d), testSettings)
	fast.now = func() time.Time { return r.clock.Now().Add(time.Hour) }
	held, release := gate(t)
	arrived := make(chan struct{}, 2)
	var calls atomic.Int64
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		arrived <- struct{}{}
		if calls.Add(1) == 1 {
			<-held // the first delivery is under way as the fast replica looks
		}
	})
	r.journal(put("w1", "7", `{"v":1}`), domain.Outcome{Status: 200})
	r.w.claimDue(context.Background())
	receive(t, arrived, "the first delivery")
	r.deliverDue(fast)
	if n := r.modern.Hits(); n != 1 {
		t.Errorf("the secondary got %d deliveries of one write, want 1: the replica an hour ahead took a live lease", n)
	}
	release()
	r.w.inflight.Wait()
	if st := r.repair("w1").State; st != domain.StateDone {
		t.Errorf("after the first delivery the write is %s, want done", st)
	}

	// A write at the primary, its answer still to come on another replica.
	if err := r.store.BeginWrite(context.Background(), put("at-primary", "8", `{}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	fast.recover(context.Background())
	if st := r.repair("at-primary").State; st != domain.StateSent {
		t.Errorf("a write whose answer another replica awaits: %s after the fast replica's recovery, want sent", st)
	}
}

// lapseLeases ends every lease in the store at dsn, as the passing of the
// lease time on the store's clock would.
func lapseLeases(t *testing.T, dsn string) {
	t.Helper()
	driver, name, past := "pgx", dsn, any(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name, past = "sqlite", path, "2000-01-01T00:00:00.000000Z"
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE strangler_repairs SET lease_until = $1 WHERE lease_until IS NOT NULL`, past); err != nil {
		t.Fatal(err)
	}
}
