package store

import (
	"context"
	"net/http"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/stats"
)

// TestAFallbackIsFiledUnderTheStoresHourWhateverTheReplicasClock:
// replicas share one PostgreSQL store, and one's clock is eight days off
// (NTP broken on its node). A fallback it served a moment ago must count
// in the last seven days' fallbacks every replica reads, at about now:
// filed under its own hour, eight days back, a retirement verdict
// (retire_after: 7d) would call the route retirable while it still falls
// back; eight days ahead, the report would show the last fallback a week
// from now. The flush files counts on the store's clock.
func TestAFallbackIsFiledUnderTheStoresHourWhateverTheReplicasClock(t *testing.T) {
	ctx := context.Background()
	req := &http.Request{Header: http.Header{"X-App-Version": {"ios/2.1"}}}
	for _, off := range []time.Duration{-8 * 24 * time.Hour, 8 * 24 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			dsn := testdb.Postgres(t)
			right, wrong := openStore(t, dsn, nil), openStore(t, dsn, nil)
			wrong.now = func() time.Time { return time.Now().Add(off) }
			counters := stats.NewCounters()
			r := counters.Route("get-patient")
			r.Fallback(wrong.now())
			r.Request(wrong.now(), "fallback", req)
			if err := counters.Flush(ctx, wrong, wrong.now()); err != nil {
				t.Fatal(err)
			}
			got, err := right.Counts(ctx, "get-patient", time.Now().Add(-7*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if got.Fallbacks != 1 {
				t.Errorf("fallbacks in the last 7 days %d, want the one served a moment ago", got.Fallbacks)
			}
			if d := time.Since(got.LastFallbackAt); d.Abs() > time.Minute {
				t.Errorf("the last fallback is shown at %s, %s from now; want about now", got.LastFallbackAt, -d)
			}
			clients, err := right.TopLegacyClients(ctx, "get-patient", time.Now().Add(-7*24*time.Hour), 5)
			if err != nil {
				t.Fatal(err)
			}
			if len(clients) != 1 || clients[0].Requests != 1 {
				t.Errorf("app versions sending legacy requests in the last 7 days %+v, want ios/2.1's one", clients)
			}
		})
	}
}

// TestClockOffsetIsTheServersLead: the offset a replica reads is the
// server's clock's lead on its own, and none for a replica on time (not
// the query's round trip: a time on an hour's boundary would otherwise
// move into the hour before); LastClockOffset keeps it for the checks
// that cannot afford a query (force values' expiry).
func TestClockOffsetIsTheServersLead(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	s := openStore(t, dsn, nil)
	for _, lag := range []time.Duration{0, 3 * time.Hour, -90 * time.Second} {
		s.now = func() time.Time { return time.Now().Add(-lag) }
		off, err := s.ClockOffset(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if lag == 0 && off != 0 {
			t.Errorf("a replica on the server's time reads an offset of %s, want none", off)
		}
		if lag != 0 && (off-lag).Abs() > 2*time.Second {
			t.Errorf("a replica %s behind reads an offset of %s", lag, off)
		}
		if last := s.LastClockOffset(); last != off {
			t.Errorf("LastClockOffset %s after measuring %s", last, off)
		}
	}
}
