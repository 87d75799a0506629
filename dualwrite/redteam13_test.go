package dualwrite

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"testing"

	"strangler/domain"
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
