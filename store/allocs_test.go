package store

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"strangler/domain"
)

// The SQLite store's allocations for a dual write's journal entries (its
// intent, the primary's answer leased to the worker), a figure that does
// not move with the machine's load, unlike their time. The limit is
// today's count (111; Go 1.26, modernc.org/sqlite), database/sql's and
// the driver's included, with the 2 it may move by between runs as the
// batcher's and the pool's goroutines meet. The code before the
// outcome's UPDATE numbered the write itself on SQLite (querying the
// sequence first) took 149 to 151, before the outcome statements were
// built once 159 to 160, and before a write finding the batcher idle
// committed on its own goroutine (no channel to hand the result back)
// and the journal wrote its headers itself (no bytes.Buffer) 126 to 128,
// and before outcomes were numbered from a reserved block (seqBlock) 120,
// and before the keyed hashes of its resources (phi) built their input
// and sum in buffers of their own 119 to 120.
func TestDualWriteJournalAllocationsStayWithinTheirCount(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under -race")
	}
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	write := func() {
		n++
		id := fmt.Sprintf("perfdw3-%06d", n)
		in := domain.Intent{ID: id, Route: "create-record", Resource: "/records", ResourceView: "/records",
			Method: http.MethodPost, Target: "/records", Primary: domain.Legacy,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   []byte(`{"first_name":"Patient"}`)}
		if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
			t.Fatal(err)
		}
		created := fmt.Sprintf("/records/%d", n)
		o := domain.Outcome{Status: http.StatusCreated, Resource: created, ResourceView: "/records/{id}", Location: created}
		if leased, err := s.RecordOutcomeLeased(ctx, id, o, "worker", time.Minute); err != nil || !leased {
			t.Fatalf("record outcome: leased %v, %v", leased, err)
		}
	}
	for range 20 { // the statements are prepared from here on
		write()
	}
	if got, max := testing.AllocsPerRun(200, write), 113.0; got > max {
		t.Errorf("%v allocations a dual write's journal entries, want at most %v", got, max)
	}
}

// On SQLite a write that has its resource to itself takes its turn in
// the statement that journals it (BeginWriteTurn), at 2 allocations over
// BeginWrite's (checking the process's own turns; measured 120 against
// 117 and 118, BeginWrite's count moving by one between runs); so the
// write the primary may have had when the process died is known to
// recovery without a statement more.
func TestEmbeddedTurnAllocationsStayWithinTheirCount(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under -race")
	}
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	write := func(turn bool) func() {
		return func() {
			n++
			in := intent(fmt.Sprintf("w-%06d", n), "/patients/42")
			if turn {
				if taken, err := s.BeginWriteTurn(ctx, in, time.Minute); err != nil || !taken {
					t.Fatalf("BeginWriteTurn: %v %v, want the turn", taken, err)
				}
			} else if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordOutcome(ctx, in.ID, domain.Outcome{Status: http.StatusConflict}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 20 { // the statements are prepared from here on
		write(true)()
		write(false)()
	}
	plain, turn := fewestAllocs(write(false)), fewestAllocs(write(true))
	if turn > plain+3 {
		t.Errorf("%v allocations a write journaled with its turn, want at most %v (BeginWrite's, 2 and the 1 it moves by)", turn, plain+3)
	}
}

// fewestAllocs is the lowest of three counts of f's allocations. A count
// only ever grows by what the run did not cause (a garbage collection
// emptying sync.Pools mid-run), so comparing two functions' lowest counts
// compares what they cost (one count each moved by up to 4, and the
// comparison failed on an unchanged tree).
func fewestAllocs(f func()) float64 {
	fewest := testing.AllocsPerRun(200, f)
	for range 2 {
		fewest = min(fewest, testing.AllocsPerRun(200, f))
	}
	return fewest
}
