package router

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
	"strangler/store"
)

// These tests run dual-write routes through a real router on loopback
// with a real state store (SQLite) as the journal and real backends.

// dualWriteFacade is a facade whose dual writes are journaled in a store.
type dualWriteFacade struct {
	*facade
	store *store.Store
	// kicked receives the ids the router hands to the worker.
	kicked chan string
}

// newDualWriteFacade serves routes (YAML list items) with backends that
// time out after timeout.
func newDualWriteFacade(t *testing.T, legacyURL, modernURL string, timeout time.Duration, routes string) *dualWriteFacade {
	t.Helper()
	return newDualWriteReplica(t, "sqlite:"+filepath.Join(t.TempDir(), "strangler.db"), legacyURL, modernURL, timeout, routes)
}

// refusedUnsent sends the raw request to f and checks its status is
// want; for a refusal (not 200), also that primary received nothing and
// nothing was journaled, and it returns the error the answer's JSON says.
func (f *dualWriteFacade) refusedUnsent(t *testing.T, primary *backend, raw string, want int) string {
	t.Helper()
	before, journaled := primary.hits(), len(f.writes(t))
	_, r := rawRequest(t, f.facade, raw)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d", resp.StatusCode, want)
	}
	if want == http.StatusOK {
		return ""
	}
	if n := primary.hits() - before; n != 0 {
		t.Errorf("the primary received %d requests, want none", n)
	}
	if n := len(f.writes(t)) - journaled; n != 0 {
		t.Errorf("%d writes journaled, want none", n)
	}
	return jsonError(t, resp)
}

// newDualWriteReplica is newDualWriteFacade with its journal in the store
// dsn names, which other replicas may share.
func newDualWriteReplica(t *testing.T, dsn, legacyURL, modernURL string, timeout time.Duration, routes string) *dualWriteFacade {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := &dualWriteFacade{store: st, kicked: make(chan string, 100)}
	cfg := parseConfig(t, fmt.Sprintf("backends:\n  legacy: {url: %q, timeout: %s}\n  modern: {url: %q, timeout: %s}\nroutes:\n%s",
		legacyURL, timeout, modernURL, timeout, routes))
	d.facade = serveConfig(t, cfg, func(deps *Deps) {
		deps.Journal = storeJournal{Store: st, kicked: d.kicked}
	})
	return d
}

// storeJournal is the state store as the router's journal, recording as
// the facade's journal does; kicked, unless nil, gets the id of each
// write whose recorded outcome queued it for the secondary, which the
// facade's journal hands to delivery.
type storeJournal struct {
	*store.Store
	kicked chan string
}

func (j storeJournal) RecordOutcome(ctx context.Context, id string, o domain.Outcome) error {
	err := j.Store.RecordOutcome(ctx, id, o)
	if err == nil && j.kicked != nil && o.Status >= 200 && o.Status <= 299 {
		j.kicked <- id
	}
	return err
}

// TakeTurn bounds the statement as the facade's journal does.
func (j storeJournal) TakeTurn(ctx context.Context, id, resource string) (bool, error) {
	return j.Store.TakeTurn(ctx, id, resource, 10*time.Second)
}

// KeepTurn bounds the statement as the facade's journal does.
func (j storeJournal) KeepTurn(ctx context.Context, id, resource string) error {
	return j.Store.KeepTurn(ctx, id, resource, 10*time.Second)
}

func (j storeJournal) RecordOutcomeOf(ctx context.Context, in domain.Intent, o domain.Outcome) error {
	return j.RecordOutcome(ctx, in.ID, o)
}

// writes returns the journaled writes, with headers and bodies, oldest
// first.
func (d *dualWriteFacade) writes(t *testing.T) []domain.Repair {
	t.Helper()
	ctx := context.Background()
	list, err := d.store.ListRepairs(ctx, store.RepairFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]domain.Repair, len(list))
	for i, s := range list {
		if out[len(list)-1-i], err = d.store.GetRepair(ctx, s.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// only returns the one journaled write, failing the test if there is not
// exactly one.
func (d *dualWriteFacade) only(t *testing.T) domain.Repair {
	t.Helper()
	w := d.writes(t)
	if len(w) != 1 {
		t.Fatalf("%d writes journaled, want 1: %+v", len(w), w)
	}
	return w[0]
}

func (d *dualWriteFacade) send(t *testing.T, method, path, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, d.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	return d.do(t, req)
}

func (d *dualWriteFacade) counted(t *testing.T, route, result string) float64 {
	return testkit.Gather(t, d.reg).Value("strangler_dualwrite_total", "route", route, "result", result)
}

const dualWriteRoutes = `
  - {name: create-item, match: "POST /items", mode: dual-write, id_field: data.id}
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write, primary: modern}
  - {name: put-keyed, match: "PUT /keyed/{id}", mode: dual-write, primary_idempotent: true}
  - {name: get-item, match: "GET /items/{id}", mode: dual-write}
`

func TestAWriteIsJournaledBeforeThePrimarySeesItWithoutCredentials(t *testing.T) {
	journaled := make(chan []domain.RepairSummary, 1)
	legacy := testkit.NewBackend(t, nil)
	modern := testkit.NewBackend(t, nil)
	// X-Api-Key is a credential too, as idempotency_scope names it.
	d := newDualWriteFacade(t, legacy.URL, modern.URL, 5*time.Second, dualWriteRoutes+"idempotency_scope: [header:Authorization, header:X-Api-Key]\n")
	legacy.SetHandler(func(w http.ResponseWriter, r *http.Request) {
		// What the journal holds while the primary handles the request.
		list, _ := d.store.ListRepairs(r.Context(), store.RepairFilter{})
		journaled <- list
		w.WriteHeader(http.StatusOK)
	})
	resp, _ := d.send(t, http.MethodPut, "/items/pt-4711?notify=1", `{"v":1}`, http.Header{
		"Authorization":       {"Bearer secret-token"},
		"Cookie":              {"session=secret-cookie"},
		"Proxy-Authorization": {"Basic c2VjcmV0"},
		"X-Api-Key":           {"key-secret-4711"},
		"Content-Type":        {"application/json"},
		"X-Request-Id":        {"req-1"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want the primary's 200", resp.StatusCode)
	}
	seen := <-journaled
	if len(seen) != 1 || seen[0].State != domain.StateSent || seen[0].Method != http.MethodPut || seen[0].Route != "put-item" {
		t.Fatalf("while the primary handled the write the journal held %+v, want it sent", seen)
	}
	w := d.only(t)
	if w.Target != "/items/pt-4711?notify=1" || w.Primary != "legacy" || string(w.Body) != `{"v":1}` {
		t.Errorf("journaled %s primary %s body %q, want /items/pt-4711?notify=1 legacy {\"v\":1}", w.Target, w.Primary, w.Body)
	}
	if strings.Contains(w.Resource, "pt-4711") {
		t.Errorf("the listing shows the resource as %q, with the patient's id", w.Resource)
	}
	for _, name := range []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"} {
		if v := w.Header.Values(name); v != nil {
			t.Errorf("the journal keeps %s: %q", name, v)
		}
	}
	if w.Header.Get("Content-Type") != "application/json" || w.Header.Get("X-Request-Id") != "req-1" || w.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("journaled header %v, want Content-Type, X-Request-Id and X-Forwarded-For as the primary got them", w.Header)
	}
	if got := legacy.Last(t).Header.Get("Authorization"); got != "Bearer secret-token" {
		t.Errorf("the primary got Authorization %q, want the client's", got)
	}
	if got := legacy.Last(t).Header.Get("X-Api-Key"); got != "key-secret-4711" {
		t.Errorf("the primary got X-Api-Key %q, want the client's", got)
	}
}

// TestTheOutcomeIsRecordedBeforeTheClientSeesTheAnswer: the primary sends
// its headers and holds back the end of its body; the client, which has
// the headers, finds the write already queued for the secondary. (On a
// route with id_field the facade reads the start of the body first, to
// find the id in.)
func TestTheOutcomeIsRecordedBeforeTheClientSeesTheAnswer(t *testing.T) {
	end := make(chan struct{})
	defer func() {
		select {
		case <-end:
		default:
			close(end)
		}
	}()
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"padding":"`))
		w.(http.Flusher).Flush()
		<-end
		w.Write([]byte(`"}`))
	})
	d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 5*time.Second, dualWriteRoutes)
	req, _ := http.NewRequest(http.MethodPut, d.URL+"/items/9", strings.NewReader(`{"v":1}`))
	resp, err := d.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	w := d.only(t)
	if resp.StatusCode != http.StatusCreated || w.State != domain.StatePending || w.Outcome.Status != http.StatusCreated {
		t.Errorf("with the answer's headers at the client: the write is %s with status %d, want pending with 201", w.State, w.Outcome.Status)
	}
	select {
	case id := <-d.kicked:
		if id != w.ID {
			t.Errorf("the worker was told of %s, want %s", id, w.ID)
		}
	default:
		t.Error("the worker was not told of the write before the client got the answer")
	}
	close(end)
}

func TestIDFieldAndLocationNameWhatACreateMade(t *testing.T) {
	// wantResource is the item a later write to which waits behind the
	// create; "" when the create is a resource of its own.
	for _, tc := range []struct {
		name         string
		location     string
		body         string
		wantID       string
		wantResource string
	}{
		{"a Location", "/items/L-1", `{"data":{"id":"x"}}`, "x", "/items/L-1"},
		{"a Location spelled otherwise", "/items/L-%31/", `{"data":{"id":"x"}}`, "x", "/items/L-1"},
		{"an id at id_field", "", `{"data":{"id":"42"},"name":"é"}`, "42", "/items/42"},
		{"a number at id_field", "", `{"data":{"id":42}}`, "42", "/items/42"},
		{"neither", "", `{"data":{}}`, "", ""},
		{"an answer that is not JSON", "", `<html>created</html>`, "", ""},
		{"an id beyond the first MiB", "", `{"pad":"` + strings.Repeat("x", 1<<20) + `","data":{"id":"7"}}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.location != "" {
					w.Header().Set("Location", tc.location)
				}
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(tc.body))
			})
			d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 5*time.Second, dualWriteRoutes)
			resp, body := d.send(t, http.MethodPost, "/items", `{"v":1}`, nil)
			if resp.StatusCode != http.StatusCreated || body != tc.body {
				t.Errorf("the client got %d and %d bytes, want 201 and the primary's %d bytes unchanged", resp.StatusCode, len(body), len(tc.body))
			}
			create := d.only(t)
			if create.Outcome.PrimaryID != tc.wantID {
				t.Errorf("recorded id %q, want %q", create.Outcome.PrimaryID, tc.wantID)
			}
			later := "/items/" + map[bool]string{true: "other", false: strings.TrimPrefix(tc.wantResource, "/items/")}[tc.wantResource == ""]
			d.send(t, http.MethodPut, later, `{"v":2}`, nil)
			var put domain.Repair
			for _, w := range d.writes(t) {
				if w.Method == http.MethodPut {
					put = w
				}
			}
			if same := put.ResourceKey == create.ResourceKey; same != (tc.wantResource != "") {
				t.Errorf("a later PUT %s waits behind the create: %v, want %v", later, same, tc.wantResource != "")
			}
		})
	}
}

func TestAPrimaryThatDidNotAnswerSettlesTheWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		route      string
		primary    func(t *testing.T) string
		wantStatus int
		wantState  domain.State
		wantCount  string
	}{
		{"refused the connection: skipped", "put-item",
			func(t *testing.T) string { return testkit.DeadURL(t) }, http.StatusBadGateway, domain.StateSkipped, "skipped"},
		{"answered 503: skipped", "put-item",
			func(t *testing.T) string { return testkit.NewBackend(t, testkit.Answer(503, `{}`)).URL }, 503, domain.StateSkipped, "skipped"},
		{"answered 409: skipped", "put-item",
			func(t *testing.T) string { return testkit.NewBackend(t, testkit.Answer(409, `{}`)).URL }, 409, domain.StateSkipped, "skipped"},
		{"answered 303: skipped, as only a 2xx is applied", "put-item",
			func(t *testing.T) string { return testkit.NewBackend(t, testkit.Answer(303, `{}`)).URL }, 303, domain.StateSkipped, "skipped"},
		{"timed out after receiving it: unknown, for an operator", "put-item",
			func(t *testing.T) string { return hang(t).URL }, http.StatusGatewayTimeout, domain.StateUnknown, "unknown"},
		{"honouring keys timed out after receiving it: left to recovery", "put-keyed",
			func(t *testing.T) string { return hang(t).URL }, http.StatusGatewayTimeout, domain.StateSent, "unknown"},
		// It received the write and its answer says nothing of it: it was
		// journaled as refused (status 99 or 101, skipped) while the
		// primary may have applied it, and the client's connection was cut.
		{"answered with a status below 100: unknown", "put-item",
			func(t *testing.T) string { return rawAnswer(t, "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok") },
			http.StatusBadGateway, domain.StateUnknown, "unknown"},
		{"switched protocols unasked: unknown", "put-item",
			func(t *testing.T) string {
				return rawAnswer(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			},
			http.StatusBadGateway, domain.StateUnknown, "unknown"},
	} {
		t.Run("a primary that "+tc.name, func(t *testing.T) {
			modern := testkit.NewBackend(t, nil)
			// A short timeout where the primary hangs, a generous one where
			// it answers: a loaded machine must not turn an answer into a 504.
			timeout := 30 * time.Second
			if tc.wantStatus == http.StatusGatewayTimeout {
				timeout = 300 * time.Millisecond
			}
			d := newDualWriteFacade(t, tc.primary(t), modern.URL, timeout, dualWriteRoutes)
			path := map[string]string{"put-item": "/items/7", "put-keyed": "/keyed/7"}[tc.route]
			resp, body := d.send(t, http.MethodPut, path, `{"v":1}`, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("the client got %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			w := d.only(t)
			if w.State != tc.wantState {
				t.Errorf("the write is %s, want %s", w.State, tc.wantState)
			}
			if tc.wantState == domain.StateSkipped && w.Outcome.Status != tc.wantStatus {
				t.Errorf("recorded status %d, want %d", w.Outcome.Status, tc.wantStatus)
			}
			if n := d.counted(t, tc.route, tc.wantCount); n != 1 {
				t.Errorf("strangler_dualwrite_total{result=%q} = %v, want 1", tc.wantCount, n)
			}
			if len(d.kicked) != 0 || modern.Hits() != 0 {
				t.Error("a write the primary did not apply was handed on to the secondary")
			}
		})
	}
}

// rawAnswer is a backend that reads each request whole and writes answer
// to it, bytes no HTTP server would write.
func rawAnswer(t *testing.T, answer string) string {
	return "http://" + testkit.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, answer)
		}
	})
}

// hang is a backend that takes every request and never answers it.
func hang(t *testing.T) *testkit.Backend {
	return testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
}

// TestAClientHangingUpDoesNotCutThePrimarysCallShort: the client leaves
// while the primary is applying the write; the primary's answer still
// reaches the facade and is recorded.
func TestAClientHangingUpDoesNotCutThePrimarysCallShort(t *testing.T) {
	arrived, release, cutShort := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
			close(cutShort)
		}
	})
	d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 30*time.Second, dualWriteRoutes)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, d.URL+"/items/7", strings.NewReader(`{"v":1}`))
	done := make(chan error, 1)
	go func() {
		resp, err := d.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the client's request succeeded; it was meant to be cut off")
	}
	// A facade that passed the client's leaving on would cut the primary's
	// call short about now: give it the time to show, then let the
	// primary answer.
	select {
	case <-cutShort:
		t.Fatal("the primary's call was cut short when the client left")
	case <-time.After(2 * time.Second):
	}
	once.Do(func() { close(release) })
	testkit.Eventually(t, 30*time.Second, "the primary's answer recorded", func() bool {
		return d.only(t).State == domain.StatePending
	})
}

func TestTheRoutesPrimaryAnswersAndReadsAreNotJournaled(t *testing.T) {
	legacy := testkit.NewBackend(t, testkit.Answer(200, `"legacy"`))
	modern := testkit.NewBackend(t, testkit.Answer(200, `"modern"`))
	d := newDualWriteFacade(t, legacy.URL, modern.URL, 5*time.Second, dualWriteRoutes)
	if _, body := d.send(t, http.MethodPut, "/records/3", `{}`, nil); body != `"modern"` || legacy.Hits() != 0 {
		t.Errorf("a write on a route whose primary is modern: got %s, legacy got %d requests; want modern's answer alone", body, legacy.Hits())
	}
	if w := d.only(t); w.Primary != "modern" || w.State != domain.StatePending {
		t.Errorf("journaled with primary %s in state %s, want modern, pending", w.Primary, w.State)
	}
	if _, body := d.send(t, http.MethodGet, "/items/3", "", nil); body != `"legacy"` || len(d.writes(t)) != 1 {
		t.Errorf("a read on a dual-write route: got %s and %d journaled writes; want legacy's answer and nothing journaled", body, len(d.writes(t)))
	}
}

func TestAWriteThatCannotBeJournaledReachesNoBackend(t *testing.T) {
	legacy := testkit.NewBackend(t, nil)
	d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 5*time.Second, dualWriteRoutes)
	d.store.Close()
	resp, body := d.send(t, http.MethodPut, "/items/7", `{"name":"Jane Roe"}`, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("got %d %s Retry-After %q, want 503 with a JSON error and Retry-After: 1", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if legacy.Hits() != 0 {
		t.Error("the primary got a write that could not be journaled")
	}
	if n := d.counted(t, "put-item", "refused"); n != 1 {
		t.Errorf("refused counted %v times, want 1", n)
	}
	if strings.Contains(d.logs.String(), "Jane Roe") || strings.Contains(d.logs.String(), "/items/7") {
		t.Errorf("the refusal's log line holds the body or the path: %s", d.logs)
	}
}

func TestABodyOverMaxReplayBodyIsRefusedBeforeItIsJournaled(t *testing.T) {
	legacy := testkit.NewBackend(t, nil)
	d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 5*time.Second, `
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write, max_replay_body: 1KiB}`)
	resp, _ := d.send(t, http.MethodPut, "/items/7", string(bytes.Repeat([]byte("x"), 1025)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || legacy.Hits() != 0 || len(d.writes(t)) != 0 {
		t.Errorf("got %d, the primary got %d requests, %d writes journaled; want 413, none, none", resp.StatusCode, legacy.Hits(), len(d.writes(t)))
	}
}

// TestAWritesIDIsAUUIDThatGrowsWithTime: a journaled write's id, which the
// secondary gets as its Idempotency-Key, is a version 7 UUID that starts
// with the write's time, so the ids of later writes sort after those of
// earlier ones (and the journal's index of them grows at its end).
func TestAWritesIDIsAUUIDThatGrowsWithTime(t *testing.T) {
	legacy := testkit.NewBackend(t, nil)
	modern := testkit.NewBackend(t, nil)
	d := newDualWriteFacade(t, legacy.URL, modern.URL, 5*time.Second, dualWriteRoutes)
	for i := range 3 {
		if resp, _ := d.send(t, http.MethodPut, fmt.Sprintf("/items/%d", i), `{}`, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d, want the primary's 200", resp.StatusCode)
		}
		time.Sleep(2 * time.Millisecond) // the next write starts a later millisecond
	}
	w := d.writes(t)
	if len(w) != 3 {
		t.Fatalf("%d writes journaled, want 3", len(w))
	}
	v7 := regexp.MustCompile(`^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for i, r := range w {
		m := v7.FindStringSubmatch(r.ID)
		if m == nil {
			t.Fatalf("write %d has id %q, want a version 7 UUID", i, r.ID)
		}
		// The first 48 bits are the Unix time in milliseconds.
		if ms, _ := strconv.ParseInt(m[1]+m[2], 16, 64); ms != r.CreatedAt.UnixMilli() {
			t.Errorf("write %d: id %s holds %v, want the time it was journaled, %v", i, r.ID, time.UnixMilli(ms), r.CreatedAt)
		}
		if i > 0 && r.ID <= w[i-1].ID {
			t.Errorf("write %d's id %s sorts before the earlier write's %s", i, r.ID, w[i-1].ID)
		}
	}
}

// TestEveryWriteMethodIsJournaledForTheSecondary: a dual-write route
// matching any method journals every method that is not a read (POST,
// PUT, PATCH, DELETE), queued for the secondary once the primary answered
// 2xx. A DELETE left out was applied by legacy alone: the patient stayed
// in modern for good, and no repair queue listed it.
func TestEveryWriteMethodIsJournaledForTheSecondary(t *testing.T) {
	legacy := testkit.NewBackend(t, testkit.Answer(200, `{}`))
	d := newDualWriteFacade(t, legacy.URL, testkit.NewBackend(t, nil).URL, 5*time.Second, `
  - {name: any-item, match: "/things/{id}", mode: dual-write}
`)
	methods := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	for i, m := range methods {
		if resp, body := d.send(t, m, fmt.Sprintf("/things/%d", i), `{}`, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %d %s, want the primary's 200", m, resp.StatusCode, body)
		}
	}
	var got []string
	for _, w := range d.writes(t) {
		if w.State != domain.StatePending {
			t.Errorf("%s %s journaled in state %s, want pending for the secondary", w.Method, w.Target, w.State)
		}
		got = append(got, w.Method+" "+w.Target)
	}
	want := []string{"POST /things/0", "PUT /things/1", "PATCH /things/2", "DELETE /things/3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("journaled %q, want %q", got, want)
	}
}
