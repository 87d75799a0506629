package backfill_test

import (
	"io"
	"net/http"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/config"
)

// TestSqlidentJSONColumnsOfASchemaQualifiedTableGoAsDocuments: from
// db.Consent looked for the CHECK json_valid MariaDB keeps of a JSON
// column under a table named "db.Consent" in the connection's database,
// found none, and sent the document {"a": 1} as the string "{\"a\": 1}";
// from Consent sent it as the document.
func TestSqlidentJSONColumnsOfASchemaQualifiedTableGoAsDocuments(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]string{}
	w := newConsentAPI(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.URL.Path] = string(b)
		mu.Unlock()
	}))
	var db string
	if err := w.legacy.QueryRow("SELECT DATABASE()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ALTER TABLE Consent ADD Doc JSON NULL", `UPDATE Consent SET Doc = '{"a": 1}' WHERE ConsentSerNum = 1`} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := w.config(t)
	cfg.Tables[0].From = db + ".Consent"
	cfg.Tables[0].TargetAPI.Body = map[string]config.Column{"doc": {From: "Doc"}}
	if rep := w.run(t, cfg, backfill.Options{}).Tables[0]; rep.Inserted != 3 {
		t.Fatalf("migrated %d rows, want 3 (failures %+v)", rep.Inserted, rep.Failures)
	}
	if got, want := bodies["/consents/1"], `{"doc":{"a":1}}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}
