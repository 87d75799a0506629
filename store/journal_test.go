package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"strangler/domain"
)

func TestJournal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)

		t.Run("a write the primary accepted is pending with everything needed to replay it", func(t *testing.T) {
			in := intent("w-accepted", "update-patient/1")
			// Header values are kept byte for byte, even bytes JSON would
			// have replaced.
			in.Header.Add("X-Legacy-Name", "Z\xfcrich")
			in.Header.Add("X-Multi", "one")
			in.Header.Add("X-Multi", "two")
			in.Body = []byte{0, 1, 2, 0xff}
			if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := state(t, s, in.ID); got != domain.StateSent {
				t.Errorf("after BeginWrite: got %s, want sent", got)
			}
			o := domain.Outcome{Status: 201, Location: "/patients/1", PrimaryID: "1"}
			if err := s.RecordOutcome(ctx, in.ID, o); err != nil {
				t.Fatal(err)
			}
			r, err := s.GetRepair(ctx, in.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != domain.StatePending || r.Seq <= 0 {
				t.Errorf("got state %s seq %d, want pending with a sequence number", r.State, r.Seq)
			}
			if r.Outcome != o {
				t.Errorf("got outcome %+v, want %+v", r.Outcome, o)
			}
			if !reflect.DeepEqual(r.Header, in.Header) {
				t.Errorf("got header %q, want %q", r.Header, in.Header)
			}
			if !bytes.Equal(r.Body, in.Body) {
				t.Errorf("got body %q, want %q", r.Body, in.Body)
			}
			if r.Route != in.Route || r.Resource != s.Hasher().Path("", in.Resource) || r.Method != in.Method ||
				r.Target != in.Target || r.Primary != in.Primary {
				t.Errorf("got %+v, want the intent's fields %+v", r.RepairSummary, in)
			}
			if !r.CreatedAt.Equal(clk.Now()) || !leasedFor(b, clk, r.NextAttemptAt, 0) {
				t.Errorf("got created %v, next attempt %v, want %v and now on the store's clock", r.CreatedAt, r.NextAttemptAt, clk.Now())
			}
			noBody, err := s.GetRepair(ctx, in.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			if noBody.Body != nil {
				t.Errorf("GetRepair without body: got %d bytes of body, want none", len(noBody.Body))
			}
		})

		t.Run("a write the primary answered other than 2xx is skipped and never delivered", func(t *testing.T) {
			for _, status := range []int{303, 409, 503} {
				id := fmt.Sprintf("w-refused-%d", status)
				journalStatus(t, s, clk, id, "update-patient/2", status)
				if got := state(t, s, id); got != domain.StateSkipped {
					t.Errorf("answered %d: got %s, want skipped", status, got)
				}
				for _, claimed := range claimIDs(t, s, "worker") {
					if claimed == id {
						t.Errorf("a write answered %d was claimed for delivery", status)
					}
				}
			}
		})

		t.Run("sequence numbers grow with every accepted write", func(t *testing.T) {
			var last int64
			for _, id := range []string{"w-seq-1", "w-seq-2", "w-seq-3"} {
				journal(t, s, id, "update-patient/"+id)
				r, err := s.GetRepair(ctx, id, false)
				if err != nil {
					t.Fatal(err)
				}
				if r.Seq <= last {
					t.Errorf("%s: got seq %d after %d, want it larger", id, r.Seq, last)
				}
				last = r.Seq
			}
		})

		t.Run("an id is journaled only once", func(t *testing.T) {
			err := s.BeginWrite(ctx, intent("w-accepted", "update-patient/1"), time.Minute)
			if !errors.Is(err, ErrConflict) {
				t.Errorf("got %v, want ErrConflict", err)
			}
		})

		t.Run("an outcome for an unknown id is not found", func(t *testing.T) {
			err := s.RecordOutcome(ctx, "w-nope", domain.Outcome{Status: 200})
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound", err)
			}
		})

		t.Run("a second outcome for the same write is refused", func(t *testing.T) {
			err := s.RecordOutcome(ctx, "w-accepted", domain.Outcome{Status: 200})
			if !errors.Is(err, ErrInvalidState) {
				t.Errorf("got %v, want ErrInvalidState", err)
			}
		})

		t.Run("an incomplete intent is refused", func(t *testing.T) {
			in := intent("w-bad", "update-patient/3")
			in.Primary = "both"
			if err := s.BeginWrite(ctx, in, 0); err == nil {
				t.Error("got no error for primary \"both\"")
			}
		})
	})
}

func TestExpiredWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		short, long := intent("w-short", "update-patient/1"), intent("w-long", "update-patient/2")
		if err := s.BeginWrite(ctx, short, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginWrite(ctx, long, time.Hour); err != nil {
			t.Fatal(err)
		}

		t.Run("a sent write is reported once its lease passed", func(t *testing.T) {
			clk.Advance(2 * time.Second)
			got, err := s.ExpiredWrites(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != short.ID {
				t.Fatalf("got %v, want only %s", ids(got), short.ID)
			}
			if !reflect.DeepEqual(got[0].Header, short.Header) || !bytes.Equal(got[0].Body, short.Body) {
				t.Errorf("got %+v, want the payload of %+v", got[0], short)
			}
		})

		t.Run("an unknown write is never delivered on its own", func(t *testing.T) {
			if err := s.MarkUnknown(ctx, short.ID); err != nil {
				t.Fatal(err)
			}
			if got := state(t, s, short.ID); got != domain.StateUnknown {
				t.Errorf("got %s, want unknown", got)
			}
			clk.Advance(time.Hour)
			if got := claimIDs(t, s, "worker"); len(got) != 0 {
				t.Errorf("claimed %v, want nothing", got)
			}
			got, err := s.ExpiredWrites(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != long.ID {
				t.Errorf("got %v, want only %s: an unknown write is no longer sent", ids(got), long.ID)
			}
		})

		t.Run("only a sent write can become unknown", func(t *testing.T) {
			if err := s.MarkUnknown(ctx, short.ID); !errors.Is(err, ErrInvalidState) {
				t.Errorf("got %v, want ErrInvalidState", err)
			}
			if err := s.MarkUnknown(ctx, "w-nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound", err)
			}
		})

		t.Run("a late outcome leaves an unknown write to the operator", func(t *testing.T) {
			if err := s.RecordOutcome(ctx, short.ID, domain.Outcome{Status: 204}); !errors.Is(err, ErrInvalidState) {
				t.Errorf("got %v, want ErrInvalidState (TestALateAnswerSettlesNoWriteThatBecameUnknown says why)", err)
			}
			if got := claimIDs(t, s, "worker"); len(got) != 0 {
				t.Errorf("claimed %v, want nothing", got)
			}
		})
	})
}

func journalStatus(t *testing.T, s *Store, clk *testClock, id, resource string, status int) {
	t.Helper()
	ctx := context.Background()
	if err := s.BeginWrite(ctx, intent(id, resource), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: status}); err != nil {
		t.Fatal(err)
	}
}

// TestStoredHeadersThatDoNotDecodeAreNamedByLine: a journaled write's
// headers that cannot be read back (a store edited by hand) make an
// error naming the line, never quoting it: it may be patient data.
func TestStoredHeadersThatDoNotDecodeAreNamedByLine(t *testing.T) {
	for stored, want := range map[string]string{
		"Accept: */*\r\nX-Patient-Name: Zelda Quimbyfrost": "header line 2 is not terminated",
		"Zelda Quimbyfrost\r\n":                            "header line 1 has no colon",
	} {
		_, err := decodeHeader([]byte(stored))
		if err == nil || err.Error() != want {
			t.Errorf("decoding %q: got %v, want %q", stored, err, want)
		}
	}
}

func TestHeaderEncodingKeepsEveryByte(t *testing.T) {
	h := http.Header{
		"Accept":       {"*/*"},
		"X-Empty":      {""},
		"X-Colon":      {"a: b"},
		"X-Latin1":     {"caf\xe9"},
		"X-Twice":      {"1", "2"},
		"lower-case":   {"kept as is"},
		"Content-Type": {"text/plain; charset=utf-8"},
	}
	got, err := decodeHeader(encodeHeader(h))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("got %q, want %q", got, h)
	}
}
