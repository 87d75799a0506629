package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"strangler/internal/dsn"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// The PHI canary test sends patient data (a name, a record number, a
// social security number, a date of birth and a bearer token) in the
// path, the query, the method, the headers, the bodies and a malformed
// trailer line of requests through every mode and outcome, and in
// answers as values, as the keys of a map and as a malformed trailer
// line, then searches everything the facade keeps or shows for it: its log
// output, /metrics, the traces a real OTLP receiver got, every admin API
// listing and the status page, every CLI listing, the report and the
// learned response schemas, and every table of its state store. The only
// place it may be is the audited body view of a write the secondary has
// not applied.

// canaries are the patient data, in every spelling the test sends.
var canaries = []string{
	"Quimbyfrost",          // the surname of Zelda Quimbyfrost
	"MRN7730019",           // a medical record number
	"987-65-4329",          // a social security number
	"1961-07-14",           // a date of birth
	"14/07/1961",           // the same, as modern spells it
	"tok-Xq7Rc9Vw3PzL2mN8", // a bearer token
	canaryAPIKey,           // an API key in a header idempotency_scope names
	keyedMRN,               // a record number that reads like a field name
	keyedSurname,           // a surname that reads like a field name
}

// keyedMRN and keyedSurname are what the shadow-keyed route's requests
// ask for and its answers key their maps by, on every request alike.
const (
	keyedMRN     = "MRN-7Q4Z-TEST"
	keyedSurname = "Zyxwvut"
)

// canaryAPIKey is a credential the client sends in X-Api-Key alone (never
// in a body), which idempotency_scope names: no place may keep it, not
// even the body view of a write the secondary has not applied.
const canaryAPIKey = "key-Hn4Jt8Bq2Wy6Ks0"

const (
	canaryMRN   = "MRN7730019"
	canaryQuery = "?ssn=987-65-4329&dob=1961-07-14&name=Zelda+Quimbyfrost"
	canaryBody  = `{"name":"Zelda Quimbyfrost","mrn":"MRN7730019","ssn":"987-65-4329","dob":"1961-07-14","note":"token tok-Xq7Rc9Vw3PzL2mN8"}`
	// canaryForm is the same as a form.
	canaryForm = "name=Zelda+Quimbyfrost&mrn=MRN7730019&ssn=987-65-4329&dob=1961-07-14&note=token+tok-Xq7Rc9Vw3PzL2mN8"
	// canaryKey is an Idempotency-Key a client made of a record number.
	canaryKey = "create-MRN7730019"
)

// canaryHeader is what a client sends along: credentials, free text, an
// app version that is a record number.
func canaryHeader() http.Header {
	return http.Header{
		"Authorization":  {"Bearer tok-Xq7Rc9Vw3PzL2mN8"},
		"Cookie":         {"session=tok-Xq7Rc9Vw3PzL2mN8"},
		"X-Patient-Name": {"Zelda Quimbyfrost"},
		"User-Agent":     {"PatientPortal/2.1 (Zelda Quimbyfrost; MRN7730019)"},
		"X-App-Version":  {canaryMRN},
		"X-Api-Key":      {canaryAPIKey},
		"Content-Type":   {"application/json"},
		"Accept":         {"application/json"},
	}
}

// findCanaries returns the canaries in text, in any case and in the
// spellings URL encoding gives them.
func findCanaries(text string) []string {
	lower := strings.ToLower(text)
	var found []string
	for _, c := range canaries {
		for _, spelling := range []string{c, url.QueryEscape(c), url.PathEscape(c)} {
			if strings.Contains(lower, strings.ToLower(spelling)) {
				found = append(found, c)
				break
			}
		}
	}
	return found
}

// canaryBackends are legacy and modern as the test's API behaves: the
// patient's record in every answer, errors that echo it, and whatever
// each route needs to reach its outcome.
func canaryBackends(t *testing.T) (legacy, modern *httptest.Server) {
	record := func(id string) string {
		return `{"id":"` + id + `","name":"Zelda Quimbyfrost","ssn":"987-65-4329","dob":"1961-07-14","status":"active","visits":3}`
	}
	reply := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	// The same on both sides (no mismatch sample), for the schema alone:
	// visits keyed by record number, contacts by surname: the patient's
	// for the canary's record, another family's for other records.
	byMRN := func(id string) string {
		surname := "Quimbyfrost"
		if id != canaryMRN {
			surname = canarySurnames[len(id)%len(canarySurnames)]
		}
		return `{"id":"` + id + `","visits_by_mrn":{"MRN7730019":{"count":3,"dob":"1961-07-14"}},"contacts":{"` + surname + `":{"ssn":"987-65-4329"}}}`
	}
	// Keyed by what the request asked for: the visits by the record
	// number in the path, the family by the surname in the query; a
	// counter that differs on every answer (noise), and a side that
	// differs between legacy and modern (a mismatch under both keys).
	var answers atomic.Int64
	keyed := func(id, surname, side string) string {
		return fmt.Sprintf(`{"visits":{%q:{"at":%d,"side":%q}},"family":{%q:{"side":%q}}}`, id, answers.Add(1), side, surname, side)
	}
	legacy = httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch {
		case strings.HasPrefix(r.URL.Path, "/err/400/"):
			reply(w, 400, `{"error":"no patient Zelda Quimbyfrost (MRN7730019)"}`)
		case strings.HasPrefix(r.URL.Path, "/err/500/"):
			reply(w, 500, `{"error":"crashed on Zelda Quimbyfrost, 987-65-4329"}`)
		case strings.HasPrefix(r.URL.Path, "/trailer/"):
			// A chunked answer whose trailer line is not a header, which
			// the proxy's copy error quotes.
			conn, rw, _ := http.NewResponseController(w).Hijack()
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nZelda Quimbyfrost MRN7730019\r\n\r\n")
			rw.Flush()
			conn.Close()
		case strings.HasPrefix(r.URL.Path, "/dwunknown/"):
			// Cut off after taking the write: the primary may have
			// applied it, and the facade cannot know.
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		case strings.HasPrefix(r.URL.Path, "/shm/"):
			reply(w, 200, byMRN(id))
		case strings.HasPrefix(r.URL.Path, "/shk/"):
			reply(w, 200, keyed(id, r.URL.Query().Get("surname"), "legacy"))
		case r.URL.Path == "/dwc":
			w.Header().Set("Location", "/dwc/"+canaryMRN)
			reply(w, 201, `{"id":"MRN7730019","name":"Zelda Quimbyfrost"}`)
		default:
			reply(w, 200, record(id))
		}
	})
	modern = httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch {
		case strings.HasPrefix(r.URL.Path, "/bad/"):
			// An answer that is not HTTP, which net/http quotes.
			conn, _, _ := http.NewResponseController(w).Hijack()
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: Zelda Quimbyfrost MRN7730019\r\n\r\n")
			conn.Close()
		case strings.HasPrefix(r.URL.Path, "/fb/") && r.URL.Query().Has("boom"):
			reply(w, 500, `{"error":"MRN7730019 broke us"}`)
		case strings.HasPrefix(r.URL.Path, "/fb/"):
			reply(w, 404, `{"error":"no MRN7730019 here"}`)
		case strings.HasPrefix(r.URL.Path, "/dwdead/"):
			reply(w, 400, `{"error":"Zelda Quimbyfrost is invalid"}`)
		case strings.HasPrefix(r.URL.Path, "/shm/"):
			reply(w, 200, byMRN(id))
		case strings.HasPrefix(r.URL.Path, "/shk/"):
			reply(w, 200, keyed(id, r.URL.Query().Get("surname"), "modern"))
		case r.Method == http.MethodPost && r.URL.Path == "/dwc":
			reply(w, 201, `{"id":"MRN7730019"}`)
		case r.Method != http.MethodGet:
			reply(w, 200, `{"ok":true}`)
		default:
			reply(w, 200, `{"id":"`+id+`","name":"Quimbyfrost, Zelda","ssn":"987-65-4329","dob":"14/07/1961","status":"active","visits":4}`)
		}
	})
	return legacy, modern
}

// canarySurnames key the contacts of the records other than the
// canary's: names that read like field names, as surnames do.
var canarySurnames = []string{"smith", "Okonkwo", "garcia", "Lindqvist", "nguyen", "Abernathy", "ferreira", "Kowalczyk", "tanaka", "Moreau"}

// canaryRoutes put a route in every mode, and dual writes on their way
// to every outcome.
const canaryRoutes = `
  - {name: legacy-read, match: "GET /legacy/{id}", mode: legacy}
  - {name: modern-read, match: "GET /modern/{id}", mode: modern}
  - {name: fallback-read, match: "GET /fb/{id}", mode: fallback, entity: patients, read_repair: true}
  - {name: errors, match: "GET /err/{code}/{id}", mode: legacy, approvals: 2}
  - {name: shadow-read, match: "GET /sh/{id}", mode: shadow, compare: {headers: [Content-Type, X-Patient-Name], noise: true}}
  - {name: shadow-redacted, match: "GET /shr/{id}", mode: shadow, compare: {redact: [name, ssn, dob], keep_values: [status]}}
  - {name: shadow-write, match: "POST /shw/{id}", mode: shadow, shadow_writes: true}
  - {name: shadow-form, match: "POST /shwf/{id}", mode: shadow, shadow_writes: true}
  - {name: shadow-map, match: "GET /shm/{id}", mode: shadow}
  - {name: shadow-keyed, match: "GET /shk/{id}", mode: shadow, compare: {noise: true}}
  - {name: dw-applied, match: "PUT /dw/{id}", mode: dual-write}
  - {name: dw-dead, match: "PUT /dwdead/{id}", mode: dual-write}
  - {name: dw-unknown, match: "PUT /dwunknown/{id}", mode: dual-write}
  - {name: dw-create, match: "POST /dwc", mode: dual-write, id_field: id}
  - {name: bad-fallback, match: "GET /bad/fb/{id}", mode: fallback}
  - {name: bad-shadow, match: "GET /bad/sh/{id}", mode: shadow}
  - {name: bad-modern, match: "GET /bad/modern/{id}", mode: modern}
  - {name: dw-bad, match: "PUT /bad/dw/{id}", mode: dual-write}
`

// canaryFacade is a facade run in this process whose logs are kept.
type canaryFacade struct {
	public, admin string
	logs          *logBuffer
	stop          func()
}

// startCanaryFacade runs serve with config path at log level debug.
func startCanaryFacade(t *testing.T, path string) *canaryFacade {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &canaryFacade{logs: newLogBuffer()}
	done := make(chan struct{})
	getenv := func(k string) string {
		if k == "STRANGLER_LOG_LEVEL" {
			return "debug"
		}
		return os.Getenv(k)
	}
	go func() {
		defer close(done)
		if err := run(ctx, []string{"serve", "--config", path}, getenv, io.Discard, f.logs); err != nil {
			fmt.Fprintf(f.logs, "{\"msg\":\"run returned\",\"error\":%q}\n", err)
		}
	}()
	var once sync.Once
	f.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(f.stop)
	line := f.logs.waitFor(t, "serving", nil, startWait)
	f.public, f.admin = line["listen"].(string), line["admin"].(string)
	waitReady(t, f.admin)
	return f
}

// otlpDump is a real OTLP/HTTP receiver that keeps every export it gets,
// as text.
type otlpDump struct {
	mu    sync.Mutex
	text  bytes.Buffer
	spans map[string]bool
}

func startOTLPDump(t *testing.T) (*otlpDump, string) {
	d := &otlpDump{spans: map[string]bool{}}
	srv := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		text, _ := protojson.Marshal(&req)
		d.mu.Lock()
		d.text.Write(text)
		d.text.WriteByte('\n')
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					d.spans[s.GetName()] = true
				}
			}
		}
		d.mu.Unlock()
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	})
	return d, srv.URL
}

func (d *otlpDump) has(span string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.spans[span]
}

func (d *otlpDump) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.text.String()
}

// The bodies sendCanary sends.
const (
	noBody = iota
	jsonBody
	formBody
	// keyedBody is the JSON body under the Idempotency-Key canaryKey.
	keyedBody
	// recordBody is a JSON body keyed by keyedMRN, a record number that
	// reads like a field name.
	recordBody
)

// sendCanary sends one request carrying the canaries in its headers, and
// in its body when it has one, and returns the status.
func sendCanary(t *testing.T, method, url string, kind int) int {
	t.Helper()
	var body io.Reader
	switch kind {
	case jsonBody, keyedBody:
		body = strings.NewReader(canaryBody)
	case formBody:
		body = strings.NewReader(canaryForm)
	case recordBody:
		body = strings.NewReader(`{"` + keyedMRN + `":{"dob":"1961-07-14"}}`)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = canaryHeader()
	switch kind {
	case formBody:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case keyedBody:
		req.Header.Set("Idempotency-Key", canaryKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// adminText is GET path on the admin listener with alice's token, as text.
func adminText(t *testing.T, admin, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	return string(b)
}

// repairOf returns the one journaled write of route as the admin API
// lists it, once it is in state want.
func repairOf(t *testing.T, admin, route, want string) string {
	t.Helper()
	var id, state string
	testkit.Eventually(t, 20*time.Second, route+" reaches "+want, func() bool {
		var list struct {
			Repairs []struct{ ID, State string } `json:"repairs"`
		}
		json.Unmarshal([]byte(adminText(t, admin, "/admin/repairs?route="+route)), &list)
		if len(list.Repairs) != 1 {
			return false
		}
		id, state = list.Repairs[0].ID, list.Repairs[0].State
		return state == want
	})
	return id
}

func TestPatientDataStaysOutOfEverythingTheFacadeKeepsOrShows(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(dir string) string) {
		traces, endpoint := startOTLPDump(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
		t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
		legacy, modern := canaryBackends(t)
		dir := t.TempDir()
		store := dsn(dir)
		key := make([]byte, 32)
		key[0] = 42
		if err := os.WriteFile(filepath.Join(dir, "store-key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "strangler.yaml")
		os.WriteFile(path, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: alice, token: %q, role: admin}, {name: bob, token: %q, role: operator}]
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
shutdown: { delay: 0s, grace: 2s }
store: %q
state_snapshot: %q
store_encryption: { keys: ["${file:store-key}"] }
idempotency_scope: [header:Authorization, header:X-Api-Key]
repairs: { backoff: 20ms, max_backoff: 200ms, max_attempts: 100000, workers: 4 }
routes:%s`, aliceToken, bobToken, legacy.URL, modern.URL, store, filepath.Join(dir, "state-snapshot.json"), canaryRoutes)), 0o644)
		f := startCanaryFacade(t, path)
		base := "http://" + f.public

		// Every mode and outcome, each request carrying the canaries.
		for _, r := range []struct {
			method, path string
			body         int
			want         int
		}{
			{"GET", "/legacy/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/modern/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/fb/" + canaryMRN + canaryQuery + "&miss=1", noBody, 200},
			{"GET", "/fb/" + canaryMRN + canaryQuery + "&boom=1", noBody, 200},
			{"GET", "/err/400/" + canaryMRN + canaryQuery, noBody, 400},
			{"GET", "/err/500/" + canaryMRN + canaryQuery, noBody, 500},
			{"GET", "/legacy/" + canaryMRN + "%2Fx" + canaryQuery, noBody, 400}, // refused at the edge
			{"GET", "/unrouted/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/trailer/" + canaryMRN + canaryQuery, noBody, 200},
			{canaryMRN, "/legacy/" + canaryMRN + canaryQuery, noBody, 405}, // a method is any token
			{"GET", "/sh/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/sh/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/shr/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/shm/" + canaryMRN + canaryQuery, noBody, 200},
			{"POST", "/shw/" + canaryMRN + canaryQuery, jsonBody, 200},
			{"POST", "/shwf/" + canaryMRN + canaryQuery, formBody, 200},
			// The record number as the path parameter, a query name and
			// the body's key; a social security number as a query name.
			{"POST", "/shw/" + keyedMRN + "?" + keyedMRN + "=1&987-65-4329=x", recordBody, 200},
			{"PUT", "/dw/" + canaryMRN + canaryQuery, jsonBody, 200},
			{"PUT", "/dwdead/" + canaryMRN + canaryQuery, formBody, 200},
			{"PUT", "/dwunknown/" + canaryMRN + canaryQuery, jsonBody, 502},
			{"POST", "/dwc" + canaryQuery, keyedBody, 201},
			{"GET", "/bad/fb/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/bad/sh/" + canaryMRN + canaryQuery, noBody, 200},
			{"GET", "/bad/modern/" + canaryMRN + canaryQuery, noBody, 502},
			{"PUT", "/bad/dw/" + canaryMRN + canaryQuery, jsonBody, 200},
		} {
			if got := sendCanary(t, r.method, base+r.path, r.body); got != r.want {
				t.Errorf("%s %s: got %d, want %d", r.method, r.path, got, r.want)
			}
		}
		// A chunked body whose trailer line is no header field, which
		// net/http's error quotes: refused, on a write and a read.
		for _, target := range []string{"PUT /dw/" + canaryMRN, "GET /legacy/" + canaryMRN} {
			conn, err := net.Dial("tcp", f.public)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, target+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nZelda Quimbyfrost MRN7730019\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s with a malformed trailer: %v, %v; want 400", target, resp, err)
			}
			conn.Close()
		}
		// Other patients' records on the route whose contacts are keyed by
		// surname, which compare.maps does not name: enough answers to
		// learn from, each with other keys.
		for i := range 9 {
			if got := sendCanary(t, "GET", base+"/shm/"+strings.Repeat("p", i+1), noBody); got != 200 {
				t.Errorf("GET /shm/ of record %d: got %d, want 200", i, got)
			}
		}

		// Wait for every outcome: the writes settled, the mismatches
		// sampled, the read repair queued, the client versions counted.
		applied := repairOf(t, f.admin, "dw-applied", "done")
		created := repairOf(t, f.admin, "dw-create", "done")
		dead := repairOf(t, f.admin, "dw-dead", "dead")
		unknown := repairOf(t, f.admin, "dw-unknown", "unknown")
		var bad string
		testkit.Eventually(t, 20*time.Second, "dw-bad's delivery failing", func() bool {
			var list struct {
				Repairs []struct {
					ID        string
					Attempts  int
					LastError string `json:"last_error"`
				} `json:"repairs"`
			}
			json.Unmarshal([]byte(adminText(t, f.admin, "/admin/repairs?route=dw-bad")), &list)
			if len(list.Repairs) != 1 || list.Repairs[0].Attempts < 2 || list.Repairs[0].LastError == "" {
				return false
			}
			bad = list.Repairs[0].ID
			return true
		})
		testkit.Eventually(t, 10*time.Second, "six mismatch samples", func() bool {
			var out struct{ Samples []json.RawMessage }
			json.Unmarshal([]byte(adminText(t, f.admin, "/admin/diffs")), &out)
			return len(out.Samples) == 6
		})
		// One patient's record fetched again and again, keyed by its
		// number and the surname searched for, which read like field
		// names: every answer a mismatch, some learned from as noise,
		// all learned from for the schema.
		for range 60 {
			if got := sendCanary(t, "GET", base+"/shk/"+keyedMRN+"?surname="+keyedSurname, noBody); got != 200 {
				t.Fatalf("GET /shk/: got %d, want 200", got)
			}
		}
		testkit.Eventually(t, 10*time.Second, "shadow-keyed's mismatch samples", func() bool {
			var out struct {
				Samples []struct{ Diffs []struct{ Path string } }
			}
			json.Unmarshal([]byte(adminText(t, f.admin, "/admin/diffs?route=shadow-keyed")), &out)
			return len(out.Samples) > 0 && slices.ContainsFunc(out.Samples[0].Diffs, func(d struct{ Path string }) bool { return d.Path == "family{*}.side" })
		})
		testkit.Eventually(t, 10*time.Second, "the schemas learned from legacy's answers", func() bool {
			var out struct{ Schemas []struct{ Route string } }
			json.Unmarshal([]byte(adminText(t, f.admin, "/admin/diffs?schema=1")), &out)
			learned := map[string]bool{}
			for _, s := range out.Schemas {
				learned[s.Route] = true
			}
			return learned["shadow-read"] && learned["shadow-redacted"] && learned["shadow-map"] && learned["fallback-read"] && learned["shadow-keyed"]
		})
		testkit.Eventually(t, 10*time.Second, "the read repair and the client versions in the report", func() bool {
			var rep struct {
				PendingReadRepairs int               `json:"pending_read_repairs"`
				LegacyClients      []json.RawMessage `json:"legacy_clients"`
			}
			json.Unmarshal([]byte(adminText(t, f.admin, "/admin/routes/fallback-read/report")), &rep)
			return rep.PendingReadRepairs == 1 && len(rep.LegacyClients) > 0
		})

		// A ramp and a change request in the store: their reasons are an
		// operator's words, never a request's.
		strangler := cli(f.admin)
		strangler(t, "routes", "ramp", "legacy-read", "--mode", "fallback", "--steps", "10,100", "--every", "1h", "--reason", "ticket 44").must(t)
		testkit.Eventually(t, 10*time.Second, "the ramp's first step", func() bool {
			return strings.Contains(strangler(t, "routes", "ramp", "legacy-read").must(t), "1 of 2 steps taken")
		})
		cliEnv(bobEnv(f.admin))(t, "routes", "set", "errors", "--mode", "shadow", "--reason", "ticket 45").must(t)

		// Everything an operator can list or read, by API and CLI.
		seen := map[string]string{}
		for _, p := range []string{
			"/metrics", "/admin/routes", "/admin/report", "/admin/audit", "/admin/repairs", "/admin/diffs", "/admin/diffs?noise=1", "/admin/diffs?schema=1",
			"/admin/repairs?state=done", "/admin/repairs?state=dead", "/admin/repairs?state=unknown",
			"/admin/changes?state=all", "/admin/changes/1",
		} {
			seen["GET "+p] = adminText(t, f.admin, p)
		}
		for _, route := range []string{"legacy-read", "modern-read", "fallback-read", "errors", "shadow-read", "shadow-redacted", "shadow-write", "shadow-form", "shadow-map", "shadow-keyed", "dw-applied", "dw-dead", "dw-unknown", "dw-create", "bad-fallback", "bad-shadow", "bad-modern", "dw-bad"} {
			seen["GET /admin/routes/"+route] = adminText(t, f.admin, "/admin/routes/"+route)
			seen["GET /admin/routes/"+route+"/report"] = adminText(t, f.admin, "/admin/routes/"+route+"/report")
		}
		for _, route := range []string{"fallback-read", "shadow-read", "shadow-redacted", "shadow-map", "shadow-keyed"} {
			for _, format := range []string{"openapi", "json-schema"} {
				p := "/admin/routes/" + route + "/schema?format=" + format
				seen["GET "+p] = adminText(t, f.admin, p)
			}
		}
		if m := seen["GET /admin/routes/shadow-map/schema?format=openapi"]; strings.Count(m, "additionalProperties") != 2 {
			t.Errorf("shadow-map's maps keyed by record number and surname are not learned as maps:\n%s", m)
		}
		for _, id := range []string{applied, created, dead, unknown, bad} {
			seen["GET /admin/repairs/"+id] = adminText(t, f.admin, "/admin/repairs/"+id)
		}
		for _, id := range []string{applied, created} {
			seen["GET /admin/repairs/"+id+"?body=1 (applied)"] = adminText(t, f.admin, "/admin/repairs/"+id+"?body=1")
		}
		// The status page, logged in as a browser would be.
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		resp, err := browser.PostForm("http://"+f.admin+"/login", url.Values{"token": {aliceToken}})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), "shadow-redacted") {
			t.Errorf("the status page does not show the routes: %s", page)
		}
		seen["the status page"] = string(page)
		for _, args := range [][]string{
			{"routes", "ramp", "legacy-read"}, {"routes", "changes", "--all"}, {"routes", "changes", "--json"},
			{"routes", "list"}, {"routes", "list", "--json"}, {"routes", "report"}, {"routes", "report", "--json"},
			{"routes", "report", "fallback-read"}, {"repairs", "list"}, {"repairs", "list", "--json"},
			{"repairs", "list", "--state", "dead"}, {"repairs", "show", dead}, {"repairs", "show", unknown},
			{"repairs", "show", applied, "--body"}, {"diffs"}, {"diffs", "--json"}, {"diffs", "--noise"},
			{"diffs", "--schema"}, {"diffs", "--schema", "--json"}, {"routes", "schema", "shadow-map"}, {"routes", "schema", "shadow-keyed"},
			{"diffs", "--route", "shadow-keyed", "--json"},
			{"routes", "schema", "fallback-read", "--format", "json-schema"},
		} {
			r := strangler(t, args...)
			seen["strangler "+strings.Join(args, " ")] = r.must(t) + r.stderr
		}

		// The exception: the audited body view of a write the secondary
		// has not applied shows it whole, to an operator who asks, but
		// without the client's credentials.
		for _, id := range []string{dead, unknown} {
			for where, text := range map[string]string{
				"GET /admin/repairs/" + id + "?body=1": adminText(t, f.admin, "/admin/repairs/"+id+"?body=1"),
				"repairs show " + id + " --body":       strangler(t, "repairs", "show", id, "--body").must(t),
			} {
				got := findCanaries(text)
				if len(got) < 5 {
					t.Errorf("%s shows %v, want the write as the client sent it", where, got)
				}
				if slices.Contains(got, canaryAPIKey) {
					t.Errorf("%s shows the client's X-Api-Key, a credential idempotency_scope names", where)
				}
			}
		}

		// What the process wrote and exported, once it has stopped.
		f.stop()
		seen["the log"] = f.logs.String()
		seen["the traces"] = traces.String()
		for _, span := range []string{"PUT /dw/{id}", "GET /fb/{id}", "GET /sh/{id}", "POST /dwc"} {
			if !traces.has(span) {
				t.Errorf("no span %q reached the OTLP receiver", span)
			}
		}
		if !strings.Contains(seen["the log"], `"msg":"fallback"`) || !strings.Contains(seen["strangler diffs"], "shadow-redacted: ") ||
			!strings.Contains(seen["strangler repairs list"], "dw-unknown") ||
			!strings.Contains(seen["the log"], "not valid HTTP") || !strings.Contains(seen["GET /admin/repairs/"+bad], "not valid HTTP") ||
			!strings.Contains(seen["the log"], "backend answer broke off") || !strings.Contains(seen["the log"], `"method":"_OTHER"`) {
			t.Error("the log, diffs or repairs list lack what the traffic must have made: the test searches nothing")
		}
		// The audit trail as an auditor gets it, read from the store.
		for _, format := range []string{"jsonl", "csv"} {
			out, err := runCLI(t, "audit", "export", "--config", path, "--format", format)
			if err != nil || !strings.Contains(out, "ticket 44") {
				t.Errorf("audit export --format %s: %v\n%s", format, err, out)
			}
			seen["strangler audit export --format "+format] = out
		}
		for where, cells := range storeTables(t, store) {
			seen[where] = cells
		}
		for _, table := range []string{"strangler_repairs", "strangler_samples", "strangler_repair_keys", "strangler_secrets", "strangler_legacy_clients", "strangler_schemas", "strangler_ramps", "strangler_changes"} {
			if seen["table "+table] == "" {
				t.Errorf("table %s is empty: the traffic did not reach it", table)
			}
		}

		for where, text := range seen {
			if found := findCanaries(text); len(found) > 0 {
				t.Errorf("%s holds %v", where, found)
			}
		}
	})
}

// storeTables returns each table of the state store as text, keyed
// "table T"; for SQLite, the database files' raw bytes too (free pages
// and the write-ahead log included).
func storeTables(t *testing.T, addr string) map[string]string {
	t.Helper()
	driver, source, dialect := "pgx", addr, "postgres"
	if path, _, ok := dsn.SQLite(addr); ok {
		driver, source, dialect = "sqlite", path, "sqlite"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cells, err := testdb.Contents(context.Background(), db, dialect)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cells {
		out["table "+c.Table] += c.Column + "=" + string(c.Value) + "\n"
	}
	if dialect == "sqlite" {
		for _, suffix := range []string{"", "-wal"} {
			b, err := os.ReadFile(source + suffix)
			if err == nil {
				out["the file "+filepath.Base(source+suffix)] = string(b)
			}
		}
	}
	return out
}
