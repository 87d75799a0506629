package dualwrite

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
)

// TestARecoveredCreateFindsTheIDInACompressedAnswer: a create resent after
// a crash carries the client's Accept-Encoding, and a primary that grants
// it answers gzip-compressed; the id is read from the answer decoded, as
// the facade reads it from one it passes on.
//
// Found by the red team: the id was looked for in the compressed bytes,
// and the secondary got no X-Strangler-Primary-Id.
func TestARecoveredCreateFindsTheIDInACompressedAnswer(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.routes.dualWrite["create-item"] = routeSettings{idField: "id", idempotent: true}
	r.legacy.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		z.Write([]byte(`{"id":"p-9"}`))
		z.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusCreated)
		w.Write(b.Bytes())
	})
	in := create("w1")
	in.Header.Set("Accept-Encoding", "gzip")
	r.abandon(in)
	r.w.recover(context.Background())

	if rep := r.repair("w1"); rep.State != domain.StatePending || rep.Outcome.PrimaryID != "p-9" {
		t.Errorf("after the resend: %s %+v, want pending with id p-9", rep.State, rep.Outcome)
	}
}

// TestARecoveredWriteStandingForADeleteWaitsForItsTurn: a POST that asks
// to be read as a DELETE (X-HTTP-Method-Override) changes its path's
// resource, as a DELETE does; recovery resends it, as the facade sends
// it, only in that resource's turn: not while another write to the path
// is with the primary.
//
// Found by the red team: taken for a create, it was resent at once.
func TestARecoveredWriteStandingForADeleteWaitsForItsTurn(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, sqlite(t), testSettings)
	r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
	// A write to item 7 with the primary now.
	if turn, err := r.store.BeginWriteTurn(ctx, r.asJournaled(put("live", "7", `{}`)), time.Minute); err != nil || !turn {
		t.Fatalf("BeginWriteTurn = %v, %v; want the turn", turn, err)
	}
	del := put("abandoned", "7", ``)
	del.Method = http.MethodPost
	del.Header.Set("X-HTTP-Method-Override", "DELETE")
	r.abandon(del)
	r.w.recover(ctx)
	if n := r.legacy.Hits(); n != 0 {
		t.Errorf("the primary got %d requests while another write to the item was with it; want the DELETE to wait its turn", n)
	}
}

// TestAPostStandingForADeleteThatFindsNothingIsApplied: a DELETE the
// secondary answers 404 or 410 is applied (the resource is gone, as the
// primary wants it), and so is a POST standing for a DELETE (an HTML
// form's _method=DELETE), which the secondary reads as one.
//
// Found by the red team: it was dead, and held back every later write to
// its path until an operator acted.
func TestAPostStandingForADeleteThatFindsNothingIsApplied(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusGone} {
		r := newRig(t, sqlite(t), testSettings)
		r.modern.SetHandler(testkit.Answer(status, `{}`))
		in := put("w1", "7", `_method=DELETE`)
		in.Method = http.MethodPost
		in.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.journal(in, domain.Outcome{Status: 200})
		r.deliverDue(r.w)
		if rep := r.repair("w1"); rep.State != domain.StateDone {
			t.Errorf("answered %d: %s (%q), want done", status, rep.State, rep.LastError)
		}
	}
}
