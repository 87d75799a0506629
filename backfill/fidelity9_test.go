package backfill_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/internal/testdb"
)

// TestAPIWorkersSendEveryGroupOfABinaryGroupBy: workers record each
// group_by value in the state store's text column, which PostgreSQL
// refuses for bytes that are not UTF-8: a run grouped by a VARBINARY or
// BINARY(n) holding 0x00 or 0xff (or BINARY(3)'s 'a', padded with 0x00)
// failed as it began, sending nothing ("invalid byte sequence for
// encoding"). Such values are kept in hex and read back as bytes; a BIT,
// whose DISTINCT values MariaDB gives as numbers, still groups by those.
func TestAPIWorkersSendEveryGroupOfABinaryGroupBy(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]int{}
	w := newConsentAPI(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent[r.URL.Path]++
		mu.Unlock()
	}))
	for _, q := range []string{
		"ALTER TABLE Consent ADD Site VARBINARY(4) NULL, ADD Ward BINARY(3) NULL",
		"INSERT INTO Consent (ConsentSerNum, Site, Ward) VALUES (4, 0x00, 0xff), (5, 0xfffe, 'a'), (6, 'a', 0x00)",
		"UPDATE Consent SET Site = 0xff00, Ward = 0xc3 WHERE ConsentSerNum IN (1, 2)",
	} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, col := range []string{"Site", "Ward", "Given", "Flags"} {
		t.Run(col, func(t *testing.T) {
			mu.Lock()
			clear(sent)
			mu.Unlock()
			cfg := w.config(t)
			cfg.Tables[0].TargetAPI.GroupBy = col
			st := openStore(t, testdb.Postgres(t))
			rep, err := backfill.Run(context.Background(), cfg, backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard(),
				Worker: true, Run: "fidelity9" + col, WorkerID: "w1"})
			if err != nil {
				t.Fatal(err)
			}
			if tr := rep.Tables[0]; tr.Read != 6 || tr.Written() != 6 {
				t.Errorf("read %d, migrated %d; want all 6", tr.Read, tr.Written())
			}
			mu.Lock()
			defer mu.Unlock()
			for k := 1; k <= 6; k++ {
				if p := fmt.Sprintf("/consents/%d", k); sent[p] != 1 {
					t.Errorf("%s sent %d times, want once", p, sent[p])
				}
			}
		})
	}
}
