package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/legacy"
	"strangler/modern"
)

// TestFacadeOnTheReferenceDatabases runs the facade in front of the legacy
// API on MariaDB and the modern API on PostgreSQL: a patient created
// through a dual-write route reaches modern with legacy's id as legacy_id,
// and a patient modern lacks is queued by read repair, copied by the
// backfill from that queue, and then read from modern.
func TestFacadeOnTheReferenceDatabases(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mysqlDSN, pgURL := testdb.MySQL(t), testdb.Postgres(t)
	legacyDB, err := legacy.Open(ctx, mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer legacyDB.Close()
	modernPool, err := modern.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer modernPool.Close()
	legacyAPI := httptest.NewServer(legacy.New(legacyDB, quiet))
	defer legacyAPI.Close()
	modernAPI := httptest.NewServer(modern.New(modernPool, quiet))
	defer modernAPI.Close()

	dir := t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "state.db")
	reference, err := os.ReadFile("../../backfill/testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The reference mapping's backfill section, behind a facade config.
	backfillSection := string(reference[bytes.Index(reference, []byte("backfill:")):])
	path := filepath.Join(dir, "strangler.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
store: %q
backends:
  legacy: { url: %q, timeout: 5s }
  modern: { url: %q, timeout: 5s }
debug_headers: true
routes:
  - { name: create-patient, match: "POST /patients", mode: dual-write, primary: legacy, id_field: id }
  - { name: get-patient, match: "GET /patients/{id}", mode: fallback, entity: patients, read_repair: true }
%s`, store, legacyAPI.URL, modernAPI.URL, backfillSection)), 0o644)
	my, err := mysql.ParseDSN(mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	legacyURL := fmt.Sprintf("mysql://%s@%s/%s", my.User, my.Addr, my.DBName)
	getenv := func(k string) string {
		return map[string]string{"LEGACY_DSN": legacyURL, "MODERN_DSN": pgURL}[k]
	}
	r := startRunEnv(t, getenv, "serve", "--config", path)
	facade := "http://" + r.public

	t.Run("a dual-written create keeps legacy's id in modern", func(t *testing.T) {
		resp, err := http.Post(facade+"/patients", "application/json", strings.NewReader(`{"first_name":"Ada","last_name":"Byron","birth_date":"1815-12-10"}`))
		if err != nil {
			t.Fatal(err)
		}
		var created struct{ ID int64 }
		json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || created.ID == 0 {
			t.Fatalf("create got %d, id %d", resp.StatusCode, created.ID)
		}
		var legacyID int64
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := modernPool.QueryRow(ctx, "SELECT legacy_id FROM patients WHERE legacy_id = $1", created.ID).Scan(&legacyID)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("patient %d never reached modern: %v", created.ID, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		code, body := getBody(t, modernAPI.URL+"/patients/"+strconv.FormatInt(created.ID, 10))
		if code != 200 || !strings.Contains(body, `"first_name":"Ada"`) {
			t.Errorf("modern answers %d %s for legacy's id", code, body)
		}
	})

	t.Run("read repair queues what modern lacks and the backfill copies it", func(t *testing.T) {
		// Created in legacy alone, as if before the migration began.
		resp, err := http.Post(legacyAPI.URL+"/patients", "application/json", strings.NewReader(`{"first_name":"Grace","last_name":"Hopper","birth_date":"1906-12-09"}`))
		if err != nil {
			t.Fatal(err)
		}
		var created struct{ ID int64 }
		json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		url := facade + "/patients/" + strconv.FormatInt(created.ID, 10)
		served := func() string {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.Header.Get("X-Strangler-Backend")
		}
		if got := served(); got != "legacy" {
			t.Fatalf("before the backfill the patient came from %q, want a fallback to legacy", got)
		}
		r.logs.waitFor(t, "fallback", map[string]any{"route": "get-patient", "reason": "not_found"}, 5*time.Second)
		// The key is recorded off the request path: wait until it is
		// queued (a fixed 200 ms, on a loaded machine, could leave it
		// unqueued, and the full run after the queue copied the patient
		// anyway).
		st := openStateStore(t, store)
		id := strconv.FormatInt(created.ID, 10)
		queued := func() bool {
			keys, err := st.PendingRepairKeys(ctx, "patients", 100)
			if err != nil {
				t.Fatal(err)
			}
			return slices.Contains(keys, id)
		}
		testkit.Eventually(t, 30*time.Second, "read repair queues the patient modern lacks", queued)
		var out bytes.Buffer
		if err := run(ctx, []string{"backfill", "--config", path, "--progress", "none"}, getenv, &out, io.Discard); err != nil {
			t.Fatalf("backfill: %v\n%s", err, out.String())
		}
		if got := served(); got != "modern" {
			t.Errorf("after the backfill the patient came from %q, want modern", got)
		}
		if queued() {
			t.Error("the patient's key is still queued after the backfill copied it")
		}
	})
}
