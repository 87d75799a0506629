package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// upgradeRoutes are the routes the fixture's release served
// (testdata/store-1027c87.sql).
const upgradeRoutes = `
  - { name: put-item, match: "PUT /items/{id}", mode: dual-write }
  - { name: create-item, match: "POST /items", mode: dual-write, id_field: id }
  - { name: get-item, match: "GET /items/{id}", mode: legacy, approvals: 1 }
  - { name: list-items, match: "GET /items", mode: shadow, compare: { sample: 1 } }
  - { name: put-note, match: "PUT /notes/{id}", mode: legacy }
`

// writeLog is a backend that answers every write 201 and keeps each one
// as "METHOD PATH BODY", in the order they arrived.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (b *writeLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodGet {
		b.mu.Lock()
		b.writes = append(b.writes, r.Method+" "+r.URL.Path+" "+string(body))
		b.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, `{"id":"2001"}`)
}

func (b *writeLog) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.writes)
}

// loadDump runs the SQL text of dump on the database dsn names.
func loadDump(t *testing.T, driver, dsn, dump string) {
	t.Helper()
	text, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(string(text)); err != nil {
		t.Fatalf("loading %s: %v", dump, err)
	}
}

// TestAnEarlierReleasesStoreServedAfterTheUpgrade: main started on the
// store an earlier release (1027c87, ten store migrations behind) left
// when it was killed delivers each write that release journaled exactly
// once and in order, sends none it did not know the outcome of, reads
// its encrypted bodies and hashes, and keeps its route flags, ramp,
// change request, idempotency key and audit chain.
func TestAnEarlierReleasesStoreServedAfterTheUpgrade(t *testing.T) {
	t.Run("on SQLite", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "strangler.db")
		loadDump(t, "sqlite", "file:"+db, filepath.Join("testdata", "store-1027c87.sql"))
		serveEarlierStore(t, dir, "sqlite:"+db)
	})
	t.Run("on PostgreSQL", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		loadDump(t, "pgx", dsn, filepath.Join("testdata", "store-1027c87-postgres.sql"))
		serveEarlierStore(t, t.TempDir(), dsn)
	})
}

func serveEarlierStore(t *testing.T, dir, dsn string) {
	legacy, modern := &writeLog{}, &writeLog{}
	legacySrv, modernSrv := httptest.NewServer(legacy), httptest.NewServer(modern)
	t.Cleanup(legacySrv.Close)
	t.Cleanup(modernSrv.Close)
	cfg := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens:
    - { name: alice, token: %q, role: admin }
    - { name: bob, token: "bob-token-0123456789", role: admin }
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
shutdown: { delay: 0s, grace: 2s }
store: %q
state_snapshot: %q
repairs: { backoff: 20ms, max_backoff: 200ms, max_attempts: 100000, workers: 2 }
store_encryption: { keys: [%s] }
approvals: 2
routes:%s`, aliceToken, legacySrv.URL, modernSrv.URL, dsn, filepath.Join(dir, "snapshot.json"), hexKey(0x11), upgradeRoutes)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f := startCanaryFacade(t, cfg)

	// The journaled writes, each once, one resource's in the order the
	// primary answered them; not the write whose outcome was lost.
	want := []string{
		`PUT /items/7 {"v":"seven-1"}`, `PUT /items/7 {"v":"seven-2"}`, `PUT /items/8 {"v":"eight-1"}`,
		`PUT /items/7 {"v":"seven-3"}`, `POST /items {"name":"created-1"}`, `POST /items {"name":"created-2"}`,
	}
	testkit.Eventually(t, 20*time.Second, "the earlier release's writes delivered", func() bool {
		return len(modern.list()) >= len(want)
	})
	got := modern.list()
	var seven []string
	for _, w := range got {
		if strings.HasPrefix(w, "PUT /items/7 ") {
			seven = append(seven, w)
		}
	}
	if sorted, wantSorted := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)); !slices.Equal(sorted, wantSorted) {
		t.Errorf("modern received %q, want each of %q once", got, want)
	}
	if !slices.Equal(seven, []string{want[0], want[1], want[3]}) {
		t.Errorf("/items/7's writes reached modern as %q, want them in the order journaled", seven)
	}
	// Its lease, taken by the killed process, lapsed long ago.
	var unknown struct {
		Repairs []struct{ ID string } `json:"repairs"`
	}
	testkit.Eventually(t, 20*time.Second, "the write whose outcome was lost marked unknown", func() bool {
		json.Unmarshal([]byte(adminText(t, f.admin, "/admin/repairs?route=put-item&state=unknown")), &unknown)
		return len(unknown.Repairs) == 1
	})
	code, body := deadBodyOf(t, f.admin, unknown.Repairs[0].ID)
	if code != 200 || !strings.Contains(body, `{\"v\":\"slow\"}`) {
		t.Errorf("the write whose outcome was lost: %d %s, want its body read back", code, body)
	}

	// A retry of the earlier release's keyed write finds its key: it goes
	// to the primary, which replays its answer, and is journaled no
	// second time (a key not found would be a new write to both).
	if code, _, err := sendRequest("POST", "http://"+f.public+"/items", `{"name":"created-2"}`,
		map[string]string{"Content-Type": "application/json", "Idempotency-Key": "fixture-key-1"}); code != 201 {
		t.Errorf("retry of the keyed write: %d %v, want its 201 again", code, err)
	}
	if n := len(repairsOf(t, f.admin, "create-item", "")); n != 2 {
		t.Errorf("create-item has %d journaled writes after the retry, want the earlier release's 2", n)
	}
	// A new write to /items/7 is named as the earlier release named it
	// (the hash key was read, not drawn anew), so it queues behind them.
	if code, _, err := sendRequest("PUT", "http://"+f.public+"/items/7", `{"v":"seven-4"}`, nil); code != 201 {
		t.Fatalf("PUT /items/7: %d %v", code, err)
	}
	var done []string
	testkit.Eventually(t, 20*time.Second, "the new write delivered", func() bool {
		done = repairsOf(t, f.admin, "put-item", "done")
		return len(done) == 5
	})
	resources := map[string]int{}
	for _, r := range done {
		resources[r]++
	}
	if len(resources) != 2 {
		t.Errorf("put-item's writes to /items/7 and /items/8 name the resources %v, want two", resources)
	}
	if got, want := modern.list(), append(want, `PUT /items/7 {"v":"seven-4"}`); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("modern received %q, want each of %q once", got, want)
	}
	if l := legacy.list(); !slices.Equal(l, []string{`POST /items {"name":"created-2"}`, `PUT /items/7 {"v":"seven-4"}`}) {
		t.Errorf("legacy received %q after the upgrade, want the retry and the new write", l)
	}

	// Flags, ramp and change request as the earlier release left them.
	var route struct {
		Mode    string
		Percent float64
		Ramp    *struct {
			State string
			Taken int
		}
		Override *struct{ Actor string }
	}
	json.Unmarshal([]byte(adminText(t, f.admin, "/admin/routes/get-item")), &route)
	if route.Mode != "modern" || route.Percent != 30 || route.Override == nil || route.Override.Actor != "alice" {
		t.Errorf("get-item: %+v, want alice's override to modern 30%%", route)
	}
	json.Unmarshal([]byte(adminText(t, f.admin, "/admin/routes/put-note")), &route)
	if route.Ramp == nil || route.Ramp.State != "running" || route.Ramp.Taken != 1 || route.Percent != 1 {
		t.Errorf("put-note: %+v, want its ramp running at its first step", route)
	}
	req, _ := http.NewRequest("POST", "http://"+f.admin+"/admin/changes/2/approve", strings.NewReader(`{"reason":"after the upgrade"}`))
	req.Header.Set("Authorization", "Bearer bob-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	json.Unmarshal([]byte(adminText(t, f.admin, "/admin/routes/list-items")), &route)
	if resp.StatusCode != 200 || route.Mode != "modern" || route.Percent != 100 {
		t.Errorf("approving the earlier release's change request: %d, list-items %+v; want it applied", resp.StatusCode, route)
	}

	f.stop()
	out, err := runCLI(t, "audit", "verify", "--config", cfg)
	if err != nil || !strings.HasPrefix(out, "OK: ") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	if strings.Contains(f.logs.String(), "hash key cannot be read") {
		t.Errorf("the earlier release's hash key was not read:\n%s", f.logs.String())
	}
}

// repairsOf lists the resources of route's journaled writes in state ("" for all).
func repairsOf(t *testing.T, admin, route, state string) []string {
	t.Helper()
	var list struct {
		Repairs []struct{ Resource string } `json:"repairs"`
	}
	if err := json.Unmarshal([]byte(adminText(t, admin, "/admin/repairs?route="+route+"&state="+state)), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list.Repairs {
		out = append(out, r.Resource)
	}
	return out
}

// deadBodyOf reads a journaled write with its body through the admin API.
func deadBodyOf(t *testing.T, admin, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+admin+"/admin/repairs/"+id+"?body=1", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
