package modern_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/internal/testdb"
	"strangler/modern"
	"strangler/patients/patientstest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := modern.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestPostgreSQLBackendKeepsTheContract(t *testing.T) {
	pool := open(t, testdb.Postgres(t))
	patientstest.Run(t, modern.New(pool, discard()), patientstest.Features{Idempotent: true, KeepsPrimaryID: true})
}

// TestDualWrittenCreateKeepsTheLegacyID is what the facade's dual-write
// does to modern as the secondary: the same create, retried with its
// Idempotency-Key, across a restart of modern, must leave one row whose
// legacy_id is the primary's id.
func TestDualWrittenCreateKeepsTheLegacyID(t *testing.T) {
	url := testdb.Postgres(t)
	post := func(h http.Handler) *http.Response {
		req := httptest.NewRequest(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"Grace","last_name":"Hopper","birth_date":"1906-12-09"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "dual-write-7f3a")
		req.Header.Set("X-Strangler-Primary-Id", "4711")
		req.Header.Set("X-Strangler-Primary-Status", "201")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	first := post(modern.New(open(t, url), discard()))
	// A new process over the same database: the key must survive it.
	pool := open(t, url)
	second := post(modern.New(pool, discard()))
	for i, resp := range []*http.Response{first, second} {
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/patients/4711" {
			t.Errorf("request %d: got %d, Location %q; want 201, /patients/4711", i+1, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	a, _ := io.ReadAll(first.Body)
	b, _ := io.ReadAll(second.Body)
	if string(a) != string(b) {
		t.Errorf("the retry answered %s, want the first answer %s", b, a)
	}
	var rows, legacyID int64
	if err := pool.QueryRow(context.Background(), "SELECT count(*), max(legacy_id) FROM patients").Scan(&rows, &legacyID); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || legacyID != 4711 {
		t.Errorf("got %d rows with legacy_id %d, want exactly one with 4711", rows, legacyID)
	}
}

func TestNativePatientsGetIDsLegacyNeverUses(t *testing.T) {
	h := modern.New(open(t, testdb.Postgres(t)), discard())
	req := httptest.NewRequest(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"Ada","last_name":"Lovelace"}`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Location"); got != "/patients/1000000000000" {
		t.Errorf("Location: got %q, want the first native id /patients/1000000000000", got)
	}
}

// TestOpenHidesThePasswordOfABadAddress: `modern serve --dsn` passes the
// flag as given; pgx's parse error quotes pieces of an unescaped password.
func TestOpenHidesThePasswordOfABadAddress(t *testing.T) {
	_, err := modern.Open(context.Background(), "postgres://app@db:5432/modern?password=Sup3rS3cret&rest/x")
	if err == nil {
		t.Fatal("a malformed address was accepted")
	}
	for _, piece := range []string{"Sup3r", "S3cret", "rest/x"} {
		if strings.Contains(err.Error(), piece) {
			t.Errorf("the error shows %q of the password: %v", piece, err)
		}
	}
}

// TestAStoreErrorLogsNoValue: a birth date the API reads as a date but
// PostgreSQL has no day for (year 0) fails the create; the log line
// saying so quoted PostgreSQL's message, and with it the date the client
// sent: `date/time field value out of range: "0000-02-03"`.
func TestAStoreErrorLogsNoValue(t *testing.T) {
	var logs strings.Builder
	h := modern.New(open(t, testdb.Postgres(t)), slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	req := httptest.NewRequest(http.MethodPost, "/patients", strings.NewReader(`{"first_name":"Zelda","last_name":"Canary","birth_date":"0000-02-03"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 (the store refused the date)", rec.Code)
	}
	if !strings.Contains(logs.String(), "date/time field value out of range (SQLSTATE 22008)") {
		t.Errorf("the log does not say why: %s", logs.String())
	}
	if strings.Contains(logs.String(), "0000-02-03") || strings.Contains(rec.Body.String(), "0000-02-03") {
		t.Errorf("the birth date is in the log or the answer:\n%s\n%s", logs.String(), rec.Body.String())
	}
}
