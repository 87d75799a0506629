package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// These tests continue the red team's attacks (redteam_e2e_test.go) from
// its thirteenth round: the public listener as an unlucky client sees it.

// primaryIDs is a dual-write secondary that records, by X-Case, the
// X-Strangler-Primary-Id each delivery carried ("" for none).
type primaryIDs struct {
	mu  sync.Mutex
	got map[string][]string
}

func (p *primaryIDs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	p.mu.Lock()
	p.got[r.Header.Get("X-Case")] = append(p.got[r.Header.Get("X-Case")], r.Header.Get("X-Strangler-Primary-Id"))
	p.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (p *primaryIDs) of(c string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got[c]...)
}

// TestThePrimaryIDIsReadFromTheAnswerTheClientReads: a create's answer
// carries the new id as its client reads it, and the secondary must get
// that id (X-Strangler-Primary-Id) to keep it. Clients ask for compressed
// answers (browsers, OkHttp and Go's client send Accept-Encoding: gzip on
// their own) and backends grant it (Rails' Rack::Deflater, Express's
// compression, nginx's gzip): the facade passes the answer on compressed
// and must read the id from it uncompressed. A PHP file saved with a UTF-8
// byte order mark writes one before every answer; browsers' fetch, .NET
// and Java read the JSON after it (RFC 8259 section 8.1 lets a parser
// ignore it), so the id is there too.
//
// Found by the red team: each of these creates reached the secondary
// without the primary's id, which then gave the record an id of its own.
func TestThePrimaryIDIsReadFromTheAnswerTheClientReads(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		io.WriteString(w, s)
		w.Close()
		return b.Bytes()
	}
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.Header.Get("X-Case") {
		case "gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusCreated)
			w.Write(gz(`{"id":"L-1","name":"x"}`))
		case "x-gzip":
			w.Header().Set("Content-Encoding", "x-gzip")
			w.WriteHeader(http.StatusCreated)
			w.Write(gz(`{"id":"L-2"}`))
		case "bom":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "\uFEFF{\"id\":\"L-3\"}")
		case "plain":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"L-4"}`)
		}
	})
	modern := &primaryIDs{got: map[string][]string{}}
	secondary := httptestServer(t, modern.ServeHTTP)
	dir := t.TempDir()
	r := startRun(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: secondary.URL}))

	for c, want := range map[string]string{"gzip": "L-1", "x-gzip": "L-2", "bom": "L-3", "plain": "L-4"} {
		t.Run(c, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+r.public+"/items", bytes.NewReader([]byte(`{"name":"x"}`)))
			req.Header.Set("X-Case", c)
			req.Header.Set("Content-Type", "application/json")
			// What Go's client, a browser or OkHttp sends on its own.
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := e2eClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("%d; want the primary's 201", resp.StatusCode)
			}
			testkit.Eventually(t, 20*time.Second, "the write reaching the secondary", func() bool { return len(modern.of(c)) > 0 })
			if got := modern.of(c); len(got) != 1 || got[0] != want {
				t.Errorf("the secondary got X-Strangler-Primary-Id %q; want [%s] once", got, want)
			}
		})
	}
}
