package modern_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"strangler/internal/testdb"
	"strangler/modern"
)

func TestAnImportAppliesOncePerKeyAndAFaultyKeyFailsOnlyOnce(t *testing.T) {
	pool := open(t, testdb.Postgres(t))
	// Every key is chosen for a 503 on its first attempt.
	im := modern.NewImports(pool, modern.Faults{Unavailable: 100}, discard())
	srv := httptest.NewServer(im.Handler())
	defer srv.Close()
	put := func(id, key, body string) int {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/imports/patients/"+id, strings.NewReader(body))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.org"}`
	for i, want := range []int{503, 200, 200} {
		if got := put("42", "patients:42", body); got != want {
			t.Errorf("attempt %d: got %d, want %d", i+1, got, want)
		}
	}
	if got := put("43", "patients:43", `{"first_name":"Bob","last_name":"X","email":"not an address"}`); got != 503 {
		t.Errorf("first attempt of a new key: got %d, want 503", got)
	}
	if got := put("43", "patients:43", `{"first_name":"Bob","last_name":"X","email":"not an address"}`); got != 422 {
		t.Errorf("an invalid patient: got %d, want 422", got)
	}
	var applied, legacyID int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*), max(patient_id) FROM import_log").Scan(&applied, &legacyID); err != nil {
		t.Fatal(err)
	}
	if applied != 1 || legacyID != 42 {
		t.Errorf("import_log has %d imports (last of %d), want one of patient 42", applied, legacyID)
	}
}

// TestAnImportRefusesAFieldItDoesNotKnow: a misspelled field would
// otherwise blank its column; the import answers 400 naming it, as the
// patients API does, and applies nothing.
func TestAnImportRefusesAFieldItDoesNotKnow(t *testing.T) {
	pool := open(t, testdb.Postgres(t))
	srv := httptest.NewServer(modern.NewImports(pool, modern.Faults{}, discard()).Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/imports/patients/42",
		strings.NewReader(`{"first_name":"Ada","last_name":"Lovelace","emial":"ada@example.org"}`))
	req.Header.Set("Idempotency-Key", "patients:42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("the answer is not JSON: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Error, `"emial"`) {
		t.Errorf("got %d %q, want 400 naming the field emial", resp.StatusCode, body.Error)
	}
	var applied int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM import_log").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 0 {
		t.Errorf("import_log has %d imports, want none", applied)
	}
}

// TestAnImportRefusedByATriggerLogsNoValue: a trigger on the patients
// table raises, under unique_violation, a message quoting the patient
// (`RAISE EXCEPTION 'patient % exists', NEW.last_name USING ERRCODE =
// 'unique_violation'`). The import fails with 500 and its log line names
// the function and the code, not the patient.
func TestAnImportRefusedByATriggerLogsNoValue(t *testing.T) {
	pool := open(t, testdb.Postgres(t))
	if _, err := pool.Exec(context.Background(), `CREATE FUNCTION privacy12_guard() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'patient % exists', NEW.last_name USING ERRCODE = 'unique_violation';
		END $$;
		CREATE TRIGGER privacy12_guard BEFORE INSERT ON patients FOR EACH ROW EXECUTE FUNCTION privacy12_guard()`); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(modern.NewImports(pool, modern.Faults{}, log).Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/imports/patients/42",
		strings.NewReader(`{"first_name":"Zelda","last_name":"Quimbyfrost-7730019","email":"z@example.org"}`))
	req.Header.Set("Idempotency-Key", "patients:42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 (the trigger refused the row)", resp.StatusCode)
	}
	if want := "raised by function privacy12_guard()"; !strings.Contains(logs.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, logs.String())
	}
	if strings.Contains(logs.String(), "7730019") {
		t.Errorf("the log holds the patient's name:\n%s", logs.String())
	}
}
