package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/domain"
	"strangler/internal/testdb"
)

// auditRoutes are the routes the audit tests flip.
const auditRoutes = `
  - {name: flag-a, match: "GET /a", mode: legacy}
  - {name: flag-b, match: "GET /b", mode: legacy}
`

// TestAuditTrailOfConcurrentFlips: facades flip routes concurrently
// through the admin API (one on SQLite; two replicas sharing PostgreSQL),
// conflicting with each other now and then; `strangler audit verify`
// finds one unbroken chain of every entry, the export carries hashes an
// auditor can recompute from it alone, and an UPDATE made directly in the
// database is reported at its entry.
func TestAuditTrailOfConcurrentFlips(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int
		store    func(t *testing.T, dir string) string
		tamper   func(t *testing.T, dsn, query string, args ...any)
	}{
		{"sqlite", 1, func(t *testing.T, dir string) string { return "sqlite:" + filepath.Join(dir, "strangler.db") }, tamperSQLite},
		{"postgres, two replicas", 2, func(t *testing.T, _ string) string { return testdb.Postgres(t) }, tamperPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := tc.store(t, dir)
			cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: "http://127.0.0.1:1", modern: "http://127.0.0.1:1", store: dsn, routes: auditRoutes})
			var replicas []*running
			for range tc.replicas {
				replicas = append(replicas, startRun(t, "serve", "--config", cfg))
			}
			flips := flipConcurrently(t, replicas, 3, 8)

			out, err := runCLI(t, "audit", "verify", "--config", cfg)
			if err != nil {
				t.Fatalf("audit verify: %v\n%s", err, out)
			}
			records := exportJSONL(t, cfg)
			if want := fmt.Sprintf("OK: %d entries", len(records)); !strings.HasPrefix(out, want) {
				t.Errorf("audit verify says %q, want %q", out, want)
			}
			if len(records) < flips {
				t.Errorf("%d entries exported, want at least the %d flips taken", len(records), flips)
			}
			checkChain(t, records)
			if head := records[len(records)-1]["hash"].(string); !strings.Contains(out, "Head: entry "+string(records[len(records)-1]["id"].(json.Number))+", sha256 "+head) {
				t.Errorf("audit verify's head, in %q, is not the last exported entry's (%s)", out, head)
			}
			checkCSV(t, cfg, records)

			edited := records[len(records)/2]["id"].(json.Number)
			tc.tamper(t, dsn, `UPDATE strangler_audit SET reason = 'nothing happened' WHERE id = `+string(edited))
			out, err = runCLI(t, "audit", "verify", "--config", cfg)
			if want := "BROKEN at entry " + string(edited) + ": entry " + string(edited) + " was changed after it was written"; err == nil || !strings.HasPrefix(out, want) {
				t.Errorf("after an UPDATE of entry %s: got %v and %q, want an error and %q", edited, err, out, want)
			}
		})
	}
}

// flipConcurrently flips the audit routes from workers goroutines per
// replica, each flipping each times, reading the version first and trying
// again on 412; it returns the number of flips taken that changed the
// route (a worker may find it already so, which is not audited).
func flipConcurrently(t *testing.T, replicas []*running, workers, each int) int {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	taken := 0
	var wg sync.WaitGroup
	for r, rep := range replicas {
		for w := range workers {
			route := []string{"flag-a", "flag-b"}[w%2]
			wg.Go(func() {
				for i := range each {
					change := []map[string]any{{"mode": "fallback", "percent": 12.5}, {"mode": "legacy"}}[i%2]
					unchanged, err := flipUntilTaken(rep.admin, route, change, fmt.Sprintf("replica %d, worker %d: <step %d> & so on", r, w, i))
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if !unchanged { // another worker had made it: not audited
						taken++
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("flipping: %v", errs)
	}
	return taken
}

// flipUntilTaken makes change to route through the admin API at admin,
// reading its version and trying again while another flip gets there
// first (412, itself an audit entry). unchanged says the route already
// was so, which the API answers without an audit entry.
func flipUntilTaken(admin, route string, change map[string]any, reason string) (unchanged bool, err error) {
	for try := 0; try < 100; try++ {
		req, _ := http.NewRequest("GET", "http://"+admin+"/admin/routes/"+route, nil)
		req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
		resp, err := e2eClient.Do(req)
		if err != nil {
			return false, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		body, _ := json.Marshal(map[string]any{"mode": change["mode"], "percent": change["percent"], "reason": reason, "force": true})
		req, _ = http.NewRequest("PATCH", "http://"+admin+"/admin/routes/"+route, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", resp.Header.Get("ETag"))
		if resp, err = e2eClient.Do(req); err != nil {
			return false, err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			var answer struct{ Unchanged bool }
			err := json.Unmarshal(out, &answer)
			return answer.Unchanged, err
		case http.StatusPreconditionFailed:
			continue
		}
		return false, fmt.Errorf("PATCH %s: %d %s", route, resp.StatusCode, out)
	}
	return false, errors.New("100 tries, each overtaken")
}

// runCLI runs strangler with args in this process and returns its stdout.
// auditLogHolding writes a facade configuration whose store, a fresh
// PostgreSQL database (which refuses NUL and invalid UTF-8), holds the
// audit entries appended in order, and returns its path: an audit log
// for `strangler audit` to read.
func auditLogHolding(t *testing.T, entries ...domain.AuditEntry) string {
	t.Helper()
	dir := t.TempDir()
	dsn := testdb.Postgres(t)
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: "http://127.0.0.1:1", modern: "http://127.0.0.1:1", store: dsn, routes: auditRoutes})
	st := openStateStore(t, dsn)
	for _, e := range entries {
		if err := st.AppendAudit(context.Background(), e); err != nil {
			t.Fatalf("appending an audit entry: %v", err)
		}
	}
	return cfg
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, noEnv, &stdout, &stderr)
	return stdout.String(), err
}

// exportJSONL exports the whole audit log as JSON lines, with numbers as
// written.
func exportJSONL(t *testing.T, cfg string, extra ...string) []map[string]any {
	t.Helper()
	out, err := runCLI(t, append([]string{"audit", "export", "--config", cfg, "--format", "jsonl"}, extra...)...)
	if err != nil {
		t.Fatalf("audit export: %v", err)
	}
	var records []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	for dec.More() {
		var r map[string]any
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("export line %d: %v", len(records)+1, err)
		}
		records = append(records, r)
	}
	return records
}

// checkChain recomputes each exported entry's hash by the README's
// canonical form, and checks that each links to the one before.
func checkChain(t *testing.T, records []map[string]any) {
	t.Helper()
	checkChainFrom(t, strings.Repeat("0", 64), records)
}

// checkChainFrom is checkChain for a piece of the chain that follows the
// entry whose hash is prev.
func checkChainFrom(t *testing.T, prev string, records []map[string]any) {
	t.Helper()
	for _, r := range records {
		text := func(k string) string {
			switch v := r[k].(type) {
			case nil:
				return ""
			case string:
				return v
			case json.Number:
				return string(v)
			case bool:
				return strconv.FormatBool(v)
			}
			t.Fatalf("entry %v: %s is %T", r["id"], k, r[k])
			return ""
		}
		if got := recompute(prev, text("at"), text("actor"), text("action"), text("route"), text("from_mode"), text("to_mode"),
			text("from_percent"), text("to_percent"), text("reason"), text("forced"), text("detail")); r["prev_hash"] != prev || r["hash"] != got {
			t.Fatalf("entry %v: prev_hash %v, hash %v; want %s and %s (recomputed)", r["id"], r["prev_hash"], r["hash"], prev, got)
		}
		prev = r["hash"].(string)
	}
}

// recompute is the README's canonical form, written independently of the
// store's: each field's length in bytes, a colon, the field and a newline,
// after the format's name and the previous hash.
func recompute(prev string, fields ...string) string {
	h := sha256.New()
	for _, f := range append([]string{"strangler-audit-v1", prev}, fields...) {
		fmt.Fprintf(h, "%d:%s\n", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkCSV checks that the CSV export holds what the JSON one does, with
// hashes recomputable from its columns, and that --since selects by time.
func checkCSV(t *testing.T, cfg string, records []map[string]any) {
	t.Helper()
	out, err := runCLI(t, "audit", "export", "--config", cfg, "--format", "csv")
	if err != nil {
		t.Fatalf("audit export --format csv: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV export does not parse: %v", err)
	}
	if got := strings.Join(rows[0], ","); got != "id,at,actor,action,route,from_mode,to_mode,from_percent,to_percent,reason,forced,detail,prev_hash,hash" {
		t.Errorf("CSV header %q", got)
	}
	if len(rows)-1 != len(records) {
		t.Fatalf("%d CSV rows, want %d", len(rows)-1, len(records))
	}
	for i, row := range rows[1:] {
		for j, v := range row {
			row[j] = strings.TrimPrefix(v, "'") // the README's rule: one leading ' is not part of the value
		}
		if got := recompute(row[12], row[1:12]...); row[13] != got || row[0] != string(records[i]["id"].(json.Number)) || row[13] != records[i]["hash"] {
			t.Fatalf("CSV row %d: %q; want the JSON export's entry %v with hash %s (recomputed: %s)", i+1, row, records[i]["id"], records[i]["hash"], got)
		}
	}

	// --since starts at the first entry at or after the time and goes on
	// in chain order: a piece of the chain without a gap, even where an
	// entry after it carries an earlier time (taken before it waited for
	// the chain's head).
	since := records[len(records)/3]["at"].(string)
	first := slices.IndexFunc(records, func(r map[string]any) bool { return r["at"].(string) >= since }) // fixed-width UTC: text order is time order
	got := exportJSONL(t, cfg, "--since", since)
	if want := len(records) - first; len(got) != want || len(got) == len(records) {
		t.Errorf("--since %s: got %d entries, want %d of %d", since, len(got), want, len(records))
	} else {
		checkChainFrom(t, records[first]["prev_hash"].(string), got)
	}
	tomorrow := time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	if out, err := runCLI(t, "audit", "export", "--config", cfg, "--format", "csv", "--since", tomorrow); err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("--since %s: got %v and %q, want only the header", tomorrow, err, out)
	}
}

func tamperSQLite(t *testing.T, dsn, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

func tamperPostgres(t *testing.T, dsn, query string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

// TestAuditCommandsRefuseBadInput: a mistake on the command line is a
// usage error naming it; a store that does not exist is not created.
func TestAuditCommandsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: "http://127.0.0.1:1", modern: "http://127.0.0.1:1", routes: auditRoutes})
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"audit"}, "audit: want verify or export"},
		{[]string{"audit", "check"}, `audit: unknown subcommand "check"`},
		{[]string{"audit", "verify"}, "audit verify: --config FILE is required"},
		{[]string{"audit", "export", "--config", cfg, "--format", "xml"}, `audit export: --format "xml"; want jsonl or csv`},
		{[]string{"audit", "export", "--config", cfg, "--since", "yesterday"}, `audit export: --since "yesterday"; want a date like 2026-03-31`},
		{[]string{"audit", "verify", "--config", cfg}, "store: stat " + filepath.Join(dir, "strangler.db") + ": no such file or directory"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := runCLI(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want an error saying %q", err, tc.says)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "strangler.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("audit verify created the store it did not find: %v", err)
	}
}
