package router

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestReplayBudgetBoundsTheBodiesBufferedAtOnce: the bodies buffered for
// replay by every route together stay within replay_budget. A request
// whose body would pass it gets 503 with Retry-After and a JSON error
// before any backend sees a byte, whatever its framing; the requests
// admitted before it are served; a shadow route serves its client from
// the primary and drops the copy instead; the budget is given back when
// the exchanges end.
func TestReplayBudgetBoundsTheBodiesBufferedAtOnce(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	arrived := make(chan struct{}, 16)
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusCreated)
	})
	legacy := newBackend(t, answer(200, "legacy"))
	t.Cleanup(free)
	f := newFacade(t, legacy.URL, modern.URL, "max_replay_body: 1KiB\nreplay_budget: 2KiB", `
  - {name: create, match: "POST /things", mode: fallback, fallback_methods: [POST]}
  - {name: copy, match: "POST /copies", mode: shadow, shadow_writes: true}
`)
	post := func(path string, body io.Reader) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, f.URL+path, body)
		return f.do(t, req)
	}
	// Two bodies of 1,000 bytes take 2,002 of the 2,048 bytes (each its
	// length and one byte to read its end).
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, f.URL+"/things", strings.NewReader(strings.Repeat("a", 1000)))
			resp, err := f.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("an admitted request got %d, want modern's 201", resp.StatusCode)
			}
		}()
	}
	<-arrived
	<-arrived
	buffered := func() float64 { return f.metric(t, "strangler_replay_buffered_bytes", map[string]string{}) }
	if got := buffered(); got != 2002 {
		t.Errorf("strangler_replay_buffered_bytes = %v with two bodies of 1,000 bytes held, want 2002", got)
	}

	for _, c := range []struct {
		name string
		body io.Reader
	}{
		{"a body of known length", strings.NewReader(strings.Repeat("b", 100))},
		{"a chunked body", io.MultiReader(strings.NewReader(strings.Repeat("c", 100)))},
	} {
		resp, body := post("/things", c.body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "replay_budget") {
			t.Errorf("%s past the budget: %d Retry-After %q %q; want 503 with Retry-After naming replay_budget",
				c.name, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if got := f.metric(t, "strangler_refused_total", map[string]string{"route": "create", "reason": "replay_budget"}); got != 2 {
		t.Errorf("strangler_refused_total{route=create,reason=replay_budget} = %v, want 2", got)
	}
	if n, l := modern.hits(), legacy.hits(); n != 2 || l != 0 {
		t.Errorf("modern received %d requests and legacy %d, want only the 2 admitted ones", n, l)
	}

	// A shadow route's client does not pay for the copy.
	resp, body := post("/copies", io.MultiReader(strings.NewReader(strings.Repeat("d", 3000))))
	if resp.StatusCode != 200 || body != "legacy" {
		t.Errorf("shadow route with the budget full: %d %q, want the primary's answer", resp.StatusCode, body)
	}
	if got := string(legacy.last(t).Body); got != strings.Repeat("d", 3000) {
		t.Errorf("the primary received %d bytes, want the whole body of 3000", len(got))
	}
	if got := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "copy", "result": "dropped"}); got != 1 {
		t.Errorf("shadow dropped = %v, want 1", got)
	}

	free()
	wg.Wait()
	if got := buffered(); got != 0 {
		t.Errorf("strangler_replay_buffered_bytes = %v once every exchange ended, want 0", got)
	}
	if resp, _ := post("/things", strings.NewReader(strings.Repeat("e", 1000))); resp.StatusCode != http.StatusCreated {
		t.Errorf("after the others ended: %d, want 201", resp.StatusCode)
	}
}

// TestAnAnnouncedBodyTakesTheBudgetOnlyAsItArrives: a client that
// announces a large Content-Length and then sends almost nothing holds
// little of replay_budget, so a few of them cannot refuse everyone else's
// writes for the price of their request heads.
func TestAnAnnouncedBodyTakesTheBudgetOnlyAsItArrives(t *testing.T) {
	modern := newBackend(t, answer(http.StatusCreated, "modern"))
	legacy := newBackend(t, answer(200, "legacy"))
	f := newFacade(t, legacy.URL, modern.URL, "max_replay_body: 512KiB\nreplay_budget: 600KiB", `
  - {name: create, match: "POST /things", mode: fallback, fallback_methods: [POST]}
`)
	pr, pw := io.Pipe()
	slow, _ := http.NewRequest(http.MethodPost, f.URL+"/things", pr)
	slow.ContentLength = 512 << 10
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := f.Client().Do(slow); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write([]byte("0123456789"))
	for f.metric(t, "strangler_replay_buffered_bytes", map[string]string{}) == 0 {
		runtime.Gosched()
	}
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/things", strings.NewReader(strings.Repeat("x", 400<<10)))
	if resp, body := f.do(t, req); resp.StatusCode != http.StatusCreated {
		t.Errorf("a 400 KiB body beside a client that announced 512 KiB and sent 10 bytes: %d %q, want 201", resp.StatusCode, body)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done
}

// TestTheHeadsOfAnswersHeldForTheirIdsCountInTheBudget: a dual write
// whose route names an id_field holds the start of the primary's answer
// until the exchange ends, to find the new id in; those heads count in
// replay_budget with the request bodies, and each answer still reaches
// its client whole.
func TestTheHeadsOfAnswersHeldForTheirIdsCountInTheBudget(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	arrived := make(chan struct{}, 8)
	pad := strings.Repeat("a", 1000)
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"7","pad":"`+pad)
		w.(http.Flusher).Flush()
		arrived <- struct{}{}
		<-release
		io.WriteString(w, `"}`)
	})
	modern := newBackend(t, answer(http.StatusCreated, "{}"))
	t.Cleanup(free)
	d := newDualWriteFacade(t, legacy.URL, modern.URL, 5*time.Second, `
  - {name: create, match: "POST /things", mode: dual-write, id_field: id}
max_replay_body: 64KiB
replay_budget: 196617`) // three bodies of 2 bytes (3 each) and three heads of 64 KiB
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, d.URL+"/things", strings.NewReader("{}"))
			resp, err := d.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := `{"id":"7","pad":"` + pad + `"}`; string(body) != want {
				t.Errorf("an answer held for its id reached its client as %d bytes, want %d", len(body), len(want))
			}
		}()
	}
	for range 3 {
		<-arrived
	}
	// The primary has sent each head; the facade charges it once it
	// reads it, a moment later on a loaded machine.
	testkit.Eventually(t, 10*time.Second, "the three bodies and heads charged to the budget", func() bool {
		return testkit.Gather(t, d.reg).Value("strangler_replay_buffered_bytes") == 196617
	})
	req, _ := http.NewRequest(http.MethodPost, d.URL+"/things", strings.NewReader("{}"))
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if resp, err := d.Client().Do(req.WithContext(ctx)); err != nil {
		t.Errorf("with three answers' heads held: %v, want 503 at once: the heads fill the budget", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("with three answers' heads held: %d, want 503: the heads fill the budget", resp.StatusCode)
	}
	free()
	wg.Wait()
}

// TestABodyOfExactlyMaxReplayBodyFitsABudgetOfTheSameSize: replay_budget
// may equal max_replay_body (the configuration accepts it, and it is the
// default when a route's max_replay_body is the largest), so a body of
// exactly max_replay_body, alone in flight, must be buffered and served,
// whatever its framing, not refused with a 503 to retry forever.
func TestABodyOfExactlyMaxReplayBodyFitsABudgetOfTheSameSize(t *testing.T) {
	modern := newBackend(t, answer(http.StatusCreated, "modern"))
	legacy := newBackend(t, answer(200, "legacy"))
	f := newFacade(t, legacy.URL, modern.URL, "max_replay_body: 1KiB\nreplay_budget: 1KiB", `
  - {name: create, match: "POST /things", mode: fallback, fallback_methods: [POST]}
`)
	for _, c := range []struct {
		name string
		body func() io.Reader
	}{
		{"of known length", func() io.Reader { return strings.NewReader(strings.Repeat("a", 1024)) }},
		{"chunked", func() io.Reader { return io.MultiReader(strings.NewReader(strings.Repeat("b", 1024))) }},
	} {
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/things", c.body())
		if resp, body := f.do(t, req); resp.StatusCode != http.StatusCreated {
			t.Errorf("a body %s of 1,024 bytes: got %d %s, want modern's 201", c.name, resp.StatusCode, body)
		}
		if got := len(modern.last(t).Body); got != 1024 {
			t.Errorf("a body %s: modern received %d bytes, want 1024", c.name, got)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/things", io.MultiReader(strings.NewReader(strings.Repeat("c", 1025))))
	if resp, body := f.do(t, req); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked body of 1,025 bytes: got %d %s, want 413", resp.StatusCode, body)
	}
}
