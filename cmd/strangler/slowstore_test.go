package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestASlowPostgreSQLStoreHoldsBackOnlyDualWrites: the PostgreSQL store
// answers 3 s late (a server or network gone slow). Reads on every other
// mode (pass-through, shadow, fallback, modern) answer as fast as ever,
// since the store is not on their path; a dual write is refused with 503
// and a JSON error once the store has not answered for 10 s, never held
// longer; once the store is quick again, dual writes are taken with no
// restart.
func TestASlowPostgreSQLStoreHoldsBackOnlyDualWrites(t *testing.T) {
	proxy, dsn := testdb.NewProxy(t, testdb.Postgres(t))
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"side":"legacy"}`)
	})
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/missing/") {
			http.NotFound(w, r) // a fallback to legacy
			return
		}
		io.WriteString(w, `{"side":"modern"}`)
	})
	routes := `
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
  - {name: pass, match: "GET /pass/{id}", mode: legacy}
  - {name: compare, match: "GET /compare/{id}", mode: shadow}
  - {name: missing, match: "GET /missing/{id}", mode: fallback}
  - {name: moved, match: "GET /moved/{id}", mode: modern}
`
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL, modern: modern.URL, store: dsn, routes: routes})
	f := startRun(t, "serve", "--config", cfg)
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/1", `{"n":1}`, nil); code != http.StatusOK {
		t.Fatalf("a dual write with the store quick: got %d %s %v", code, body, err)
	}

	proxy.Delay(3 * time.Second)
	for _, path := range []string{"/pass/1", "/compare/1", "/missing/1", "/moved/1"} {
		start := time.Now()
		code, _, err := sendRequest("GET", "http://"+f.public+path, "", nil)
		// Generous for a loaded machine (1 s is little for a request to a
		// process under -race at load 20), and below the 3 s a read
		// waiting for the store would take.
		if took := time.Since(start); code != http.StatusOK || took > 2500*time.Millisecond {
			t.Errorf("GET %s with the store slow: got %d %v in %v, want 200 at once", path, code, err, took)
		}
	}
	start := time.Now()
	code, body, err := sendRequest("PUT", "http://"+f.public+"/items/2", `{"n":2}`, nil)
	took := time.Since(start)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("a dual write with the store slow: got %d %q %v, want 503 with a JSON error", code, body, err)
	}
	if took > 12*time.Second {
		t.Errorf("a dual write with the store slow was answered after %v, want at most the store's 10 s and a little", took)
	}

	proxy.Delay(0)
	testkit.Eventually(t, 30*time.Second, "a dual write is taken again", func() bool {
		code, _, _ := sendRequest("PUT", "http://"+f.public+"/items/3", `{"n":3}`, nil)
		return code == http.StatusOK
	})
}
