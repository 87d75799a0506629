package router

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
	"strangler/shadow"
)

// jsonAnswer answers with a JSON body.
func jsonAnswer(body string) http.HandlerFunc { return answer(200, body) }

// comparisons waits until route has n shadow comparisons counted and
// returns their results by label.
func (f *facade) comparisons(t *testing.T, route string, n int) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	// Copies are compared off the request path, in a pool: how long that
	// takes on a loaded machine means nothing to a client.
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("%d comparisons of route %s", n, route), func() bool {
		total := 0.0
		for _, r := range []string{"match", "mismatch", "error", "dropped", "too_large"} {
			v := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": route, "result": r})
			got[r] = v
			total += v
		}
		return total >= float64(n)
	})
	return got
}

func (f *facade) samples(t *testing.T, route string) []shadow.Sample {
	t.Helper()
	// A comparison is counted before its sample is stored: wait for the
	// route's copies in flight, which store theirs before they end.
	if rt, ok := f.router.Current().byName[route]; ok && rt.shadow != nil {
		rt.shadow.pool.Wait()
	}
	s, err := f.router.deps.Samples.List(context.Background(), route, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShadowComparesWithoutChangingTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, primary, other, compare, want string
	}{
		{"equal JSON in a different key order", `{"id":7,"name":"Ada","tags":["a","b"]}`, `{"tags":["a","b"],"name":"Ada","id":7}`, ``, "match"},
		{"an ignored field that differs", `{"id":7,"updated_at":"2026-01-01"}`, `{"id":7,"updated_at":"2026-02-02"}`, `compare: {ignore: [updated_at]}`, "match"},
		{"an unordered array permuted", `{"items":[{"id":1},{"id":2},{"id":3}]}`, `{"items":[{"id":3},{"id":1},{"id":2}]}`, `compare: {unordered: [items]}`, "match"},
		{"a real difference", `{"id":7,"address":{"city":"Bern"}}`, `{"id":7,"address":{"city":"Basel"}}`, ``, "mismatch"},
	} {
		t.Run(tc.name+" is a "+tc.want, func(t *testing.T) {
			legacy := newBackend(t, jsonAnswer(tc.primary))
			modern := newBackend(t, jsonAnswer(tc.other))
			f := newFacade(t, legacy.URL, modern.URL, "", fmt.Sprintf(`
  - {name: photos, match: "GET /patients/{id}/photos", mode: shadow, %s}`, tc.compare))
			resp, body := f.get(t, "/patients/7/photos?size=small")
			if resp.StatusCode != 200 || body != tc.primary {
				t.Fatalf("client got %d %s, want the primary's answer unchanged", resp.StatusCode, body)
			}
			if got := f.comparisons(t, "photos", 1); got[tc.want] != 1 {
				t.Fatalf("comparisons %v, want one %s", got, tc.want)
			}
			if modern.last(t).Header.Get("X-Strangler-Shadow") != "1" || modern.last(t).RawQuery != "size=small" {
				t.Errorf("the copy arrived as %+v, want X-Strangler-Shadow: 1 and the same query", modern.last(t))
			}
			if legacy.last(t).Header.Get("X-Strangler-Shadow") != "" {
				t.Errorf("the primary's request carries X-Strangler-Shadow")
			}
			samples := f.samples(t, "photos")
			if tc.want == "match" {
				if len(samples) != 0 {
					t.Errorf("a match left samples %+v", samples)
				}
				return
			}
			if len(samples) != 1 || len(samples[0].Diffs) != 1 || samples[0].Diffs[0].Path != "address.city" {
				t.Fatalf("samples %+v, want one naming address.city", samples)
			}
			s := samples[0]
			hash := f.router.deps.Hasher.Hash
			target := "/patients/{id:" + hash("7") + "}/photos?size={" + hash("small") + "}"
			if s.Target != target || !strings.Contains(s.CurlPrimary, legacy.URL+target) || !strings.Contains(s.CurlOther, modern.URL+target) {
				t.Errorf("curl commands %q / %q do not target the two backends", s.CurlPrimary, s.CurlOther)
			}
		})
	}
}

// TestShadowLeavesWritesAlone: without shadow_writes no write is copied.
// Absence is proven, not waited for: a copy is handed to the route's pool
// before the client gets the primary's answer, so once a later GET's copy
// has been compared and the pool is idle, any copy of the writes would
// have reached the other side and been counted.
func TestShadowLeavesWritesAlone(t *testing.T) {
	legacy := testkit.NewBackend(t, testkit.Answer(201, `{"id":1}`))
	modern := testkit.NewBackend(t, testkit.Answer(201, `{"id":1}`))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: reads-only, match: "/patients", mode: shadow}
  - {name: with-writes, match: "/records", mode: shadow, shadow_writes: true}`)
	writes := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	send := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(`{"name":"x"}`))
		if resp, _ := f.do(t, req); resp.StatusCode != 201 {
			t.Fatalf("%s %s: got %d, want the primary's 201", method, path, resp.StatusCode)
		}
	}
	// settled waits until route has compared n copies and runs none.
	settled := func(route string, n int) map[string]float64 {
		f.comparisons(t, route, n)
		f.router.Current().byName[route].shadow.pool.Wait()
		return f.comparisons(t, route, n)
	}
	total := func(m map[string]float64) (n float64) {
		for _, v := range m {
			n += v
		}
		return n
	}

	for _, m := range writes {
		send(m, "/patients")
	}
	send(http.MethodGet, "/patients") // the sentinel, which is copied
	if got := total(settled("reads-only", 1)); got != 1 {
		t.Errorf("reads-only compared %v copies, want 1: the GET's alone", got)
	}
	for _, r := range modern.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("a %s was copied to the other backend without shadow_writes", r.Method)
		}
	}

	// With shadow_writes the same writes are copied: the check above can
	// see a copy.
	before := modern.Hits()
	for _, m := range writes {
		send(m, "/records")
	}
	settled("with-writes", len(writes))
	if got := modern.Hits() - before; got != len(writes) {
		t.Errorf("with shadow_writes the other backend got %d copies of %d writes", got, len(writes))
	}
}

func TestShadowKeepsPatientDataOutOfSamples(t *testing.T) {
	for _, compare := range []string{`{}`, `{redact: [name]}`} {
		t.Run("with compare "+compare, func(t *testing.T) {
			legacy := newBackend(t, jsonAnswer(`{"id":7,"name":"Jane Roe","dob":"1970-01-01"}`))
			modern := newBackend(t, jsonAnswer(`{"id":7,"name":"Jane Doe","dob":"1970-01-02"}`))
			f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: patient, match: "GET /patients/{id}", mode: shadow, compare: `+compare+`}`)
			req, _ := http.NewRequest(http.MethodGet, f.URL+"/patients/MRN9988776?ssn=123-45-6789", nil)
			req.Header.Set("Authorization", "Bearer secret-session-token")
			req.Header.Set("Cookie", "session=cookie-secret")
			req.Header.Set("User-Agent", "PatientApp/1.0 (Jane's phone)")
			req.Header.Set("X-Patient-Name", "Jane Roe")
			f.do(t, req)
			f.comparisons(t, "patient", 1)
			samples := f.samples(t, "patient")
			if len(samples) != 1 {
				t.Fatalf("got %d samples, want 1", len(samples))
			}
			dump, _ := json.Marshal(samples)
			families, _ := f.reg.Gather()
			metrics, _ := json.Marshal(families)
			// The dates of birth as whole values: "1970" alone also turns up
			// in a histogram's sum of seconds (0.0019704…).
			for _, secret := range []string{"Jane", "Roe", "Doe", "1970-01-0", "MRN9988776", "123-45-6789", "secret-session-token", "cookie-secret", "X-Forwarded-For", "PatientApp"} {
				for where, text := range map[string]string{"samples": string(dump), "logs": f.logs.String(), "metrics": string(metrics)} {
					if strings.Contains(text, secret) {
						t.Errorf("%q appears in the %s", secret, where)
					}
				}
			}
			if d := samples[0].Diffs[0]; d.Path != "name" || d.Primary == d.Other || !strings.Contains(d.Primary, "{h:") {
				t.Errorf("the difference is %+v, want two different hashes at name", d)
			}
		})
	}
}

func TestShadowLearnsNoise(t *testing.T) {
	var n atomic.Int64
	stamped := func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"id":7,"generated_at":"%d"}`, n.Add(1))
	}
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		stamped(w, r)
	})
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		stamped(w, r)
	})
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: patient, match: "GET /patients/{id}", mode: shadow, compare: {noise: true}}`)
	// At a noise share of 10%, 300 requests learn the field with
	// near certainty (it takes two samples).
	for range 300 {
		f.get(t, "/patients/7")
	}
	f.comparisons(t, "patient", 300)
	table := f.router.Current()
	if fields := table.byName["patient"].shadow.comparer.Noise().Fields(); !slices.Contains(fields, "generated_at") {
		t.Fatalf("learned noise %v, want generated_at", fields)
	}
	before := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "patient", "result": "mismatch"})
	for range 20 {
		f.get(t, "/patients/7")
	}
	f.comparisons(t, "patient", 320)
	if after := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "patient", "result": "mismatch"}); after != before {
		t.Errorf("after learning, %v more mismatches on the noisy field", after-before)
	}
}

// TestSlowShadowNeverSlowsTheClient sends 500 requests to a shadow route
// whose other backend holds every copy until the test releases it, mixed
// with requests to a plain route: the client's latency matches the plain
// route's, exactly the pool's bound of copies is in flight (the rest are
// dropped and counted), the goroutines they cost are bounded while they
// are in flight, and they all return once released.
func TestSlowShadowNeverSlowsTheClient(t *testing.T) {
	const requests, bound = 500, 16
	legacy := testkit.NewBackend(t, testkit.Answer(200, `{"id":1}`))
	release := make(chan struct{})
	var held atomic.Int64
	modern := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		defer held.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	// Timeouts far above the test's length: a copy ends when released,
	// not when a loaded machine lets its deadline pass, so the count of
	// copies in flight is exact.
	f := serveConfig(t, parseConfig(t, fmt.Sprintf(`
backends:
  legacy: {url: %q, timeout: 60s}
  modern: {url: %q, timeout: 60s}
routes:
  - {name: shadowed, match: "GET /shadowed", mode: shadow, compare: {max_inflight: %d}}
  - {name: plain, match: "GET /plain", mode: legacy}`, legacy.URL, modern.URL, bound)))

	// send sends n requests over 5 connections, paths taking turns on
	// each, and returns their latencies by path.
	send := func(n int, paths ...string) map[string][]time.Duration {
		var mu sync.Mutex
		latencies := map[string][]time.Duration{}
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				for i := range n / 5 {
					path := paths[i%len(paths)]
					req, _ := http.NewRequest(http.MethodGet, f.URL+path, nil)
					start := time.Now()
					if _, err := f.side(req); err != nil {
						failed.Add(1)
					}
					mu.Lock()
					latencies[path] = append(latencies[path], time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Fatalf("%d requests failed for the client", n)
		}
		return latencies
	}
	// Warm the connection pools with the plain route, so that the
	// goroutines counted before are the ones a warm facade has.
	send(100, "/plain")
	goroutines := runtime.NumGoroutine()

	// The two routes' requests take turns, so that both see the same load
	// on a busy machine.
	latencies := send(2*requests, "/plain", "/shadowed")
	p99 := func(path string) time.Duration {
		lat := slices.Sorted(slices.Values(latencies[path]))
		return lat[len(lat)*99/100]
	}
	plain, shadowed := p99("/plain"), p99("/shadowed")
	t.Logf("client p99: plain proxy %v, shadow with its copies held %v", plain, shadowed)
	// A client that waited for its copy would wait for the held backend:
	// seconds. The margin keeps scheduling noise on a loaded machine (a few
	// tens of milliseconds at the tail) from failing the test.
	if shadowed > 3*plain+250*time.Millisecond {
		t.Errorf("the shadow route's p99 %v is far above the plain route's %v", shadowed, plain)
	}

	// Each copy was handed to the pool before its client got an answer:
	// the pool's bound of them is on its way to the other side, or there.
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("%d copies held by the other backend", bound), func() bool {
		return held.Load() >= bound
	})
	if got := held.Load(); got != bound {
		t.Errorf("%d copies in flight, want the pool's bound, %d", got, bound)
	}
	if got := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "shadowed", "result": "dropped"}); got != requests-bound {
		t.Errorf("%v copies dropped, want the %d beyond the pool's bound", got, requests-bound)
	}
	// In flight, a copy costs its pool goroutine, its connection's two
	// and the other backend's handler: a few each, never one per request.
	peak := runtime.NumGoroutine()
	t.Logf("goroutines: %d with a warm facade, %d with %d copies in flight", goroutines, peak, bound)
	if peak > goroutines+bound*6+20 {
		t.Errorf("%d goroutines with %d copies in flight (%d before)", peak, bound, goroutines)
	}

	close(release)
	released = true
	f.comparisons(t, "shadowed", requests)
	// What stays is the pooled connections to the other side, idle.
	f.router.Backend("modern").CloseIdleConnections()
	testkit.Eventually(t, 30*time.Second, "the copies' goroutines end", func() bool {
		return runtime.NumGoroutine() <= goroutines+10
	})
}

// A copy sent alongside the request to the primary took CPU the client's
// answer was waiting for: it leaves once that answer is complete.
func TestShadowCopyLeavesOnceTheClientHasItsAnswer(t *testing.T) {
	copied := make(chan struct{}, 1)
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		copied <- struct{}{}
		jsonAnswer(`{"id":7}`)(w, r)
	})
	var early atomic.Bool
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// A copy sent alongside has this long to arrive first.
		select {
		case <-copied:
			early.Store(true)
		case <-time.After(300 * time.Millisecond):
		}
		jsonAnswer(`{"id":7}`)(w, r)
	})
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: patient, match: "GET /patients/{id}", mode: shadow}`)
	if resp, body := f.get(t, "/patients/7"); resp.StatusCode != 200 || body != `{"id":7}` {
		t.Fatalf("client got %d %s, want legacy's answer", resp.StatusCode, body)
	}
	if early.Load() {
		t.Error("modern got the copy while legacy was still answering the client")
	}
	if got := f.comparisons(t, "patient", 1); got["match"] != 1 {
		t.Errorf("comparisons %v, want one match", got)
	}
}

// A copy's job used to be handed to a worker goroutine as the request
// began, which then waited for the primary's answer: two wake-ups for
// every copy, the first on the client's path. The copy's slot is taken
// then, but no goroutine runs it until the primary's answer has ended.
func TestShadowCopyWaitsForItsPrimaryWithoutAGoroutine(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		jsonAnswer(`{"id":7}`)(w, r)
	})
	modern := newBackend(t, jsonAnswer(`{"id":7}`))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: patient, match: "GET /patients/{id}", mode: shadow}`)
	// Workers other tests left idle may end meanwhile, never start.
	before := shadowWorkers()
	got := make(chan string, 1)
	go func() {
		_, body := f.get(t, "/patients/7")
		got <- body
	}()
	<-arrived
	pool := f.router.Current().byName["patient"].shadow.pool
	if n := pool.Running(); n != 1 {
		t.Errorf("%d slots taken while the primary answers, want the copy's", n)
	}
	if started := shadowWorkers() - before; started > 0 {
		t.Errorf("%d shadow workers started while the primary answers, want none", started)
	}
	close(release)
	if body := <-got; body != `{"id":7}` {
		t.Fatalf("client got %s, want legacy's answer", body)
	}
	if got := f.comparisons(t, "patient", 1); got["match"] != 1 {
		t.Errorf("comparisons %v, want one match", got)
	}
}

// shadowWorkers counts the goroutines of shadow pools, started or about
// to start.
func shadowWorkers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "strangler/shadow.(*Pool).worker(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A shadow route whose primary answers with a stream (server-sent events,
// a long poll) used to keep a copy's slot until the stream ended: a few
// long streams took compare.max_inflight, and every other request of the
// route had its copy dropped for as long as they lasted. The wait for the
// primary's answer is bounded; an answer still streaming then is
// too_large, and the slot is free again.
func TestShadowOfALongStreamFreesItsSlot(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	legacy := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events/plain" {
			testkit.Answer(200, `{"id":1}`)(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := fmt.Fprint(w, "data: tick\n\n"); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-tick.C:
			case <-stop:
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	modern := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events/plain" {
			testkit.Answer(200, `{"id":1}`)(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: tick\n\n")
	})
	f := serveConfig(t, parseConfig(t, fmt.Sprintf(`
backends:
  legacy: {url: %q, timeout: 1s}
  modern: {url: %q, timeout: 1s}
routes:
  - {name: events, match: "GET /events/{id}", mode: shadow, compare: {max_inflight: 2}}`, legacy.URL, modern.URL)))

	// Two clients follow a stream each: the pool's two slots.
	streams := make([]*bufio.Reader, 2)
	for i := range streams {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/events/%d", f.URL, i), nil)
		resp, err := f.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		streams[i] = bufio.NewReader(resp.Body)
		if line, err := streams[i].ReadString('\n'); err != nil || line != "data: tick\n" {
			t.Fatalf("stream %d began with %q, %v", i, line, err)
		}
	}
	start := time.Now()
	testkit.Eventually(t, 20*time.Second, "a plain request of the route compared while the streams go on", func() bool {
		if resp, body := f.get(t, "/events/plain"); resp.StatusCode != 200 || body != `{"id":1}` {
			t.Fatalf("client got %d %s, want legacy's answer", resp.StatusCode, body)
		}
		return f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "events", "result": "match"}) >= 1
	})
	t.Logf("a plain request was compared %v after two streams took the pool", time.Since(start).Round(time.Millisecond))
	// One freed slot let the plain request's copy in; the other
	// stream's count may land a moment later.
	tooLarge := func() float64 {
		return f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "events", "result": "too_large"})
	}
	testkit.Eventually(t, 10*time.Second, "both streams counted too_large", func() bool { return tooLarge() >= 2 })
	if got := tooLarge(); got != 2 {
		t.Errorf("%v comparisons too_large, want the 2 streams", got)
	}
	// The clients' streams were never touched.
	for i, s := range streams {
		for range 3 {
			if line, err := s.ReadString('\n'); err != nil {
				t.Fatalf("stream %d broke off: %v", i, err)
			} else if line != "data: tick\n" && line != "\n" {
				t.Fatalf("stream %d went on with %q", i, line)
			}
		}
	}
}

// TestAnAnswerTooLargeToCompareIsNoEvidenceForTheGuard: a copy whose
// answers are past compare.max_body is counted too_large, and neither as a
// match nor as a mismatch in the share the guard and the gates read.
func TestAnAnswerTooLargeToCompareIsNoEvidenceForTheGuard(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"id":7,"note":"`+strings.Repeat("a", 100)+`"}`))
	modern := newBackend(t, jsonAnswer(`{"id":7,"note":"`+strings.Repeat("b", 100)+`"}`))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: photos, match: "GET /patients/{id}/photos", mode: shadow, compare: {max_body: 64}}`)
	if resp, _ := f.get(t, "/patients/7/photos"); resp.StatusCode != 200 {
		t.Fatalf("client got %d, want legacy's 200", resp.StatusCode)
	}
	if got := f.comparisons(t, "photos", 1); got["too_large"] != 1 {
		t.Fatalf("comparisons %v, want one too_large", got)
	}
	if w := f.router.Current().byName["photos"].stats.Window(time.Now(), time.Minute); w.ShadowMatch != 0 || w.ShadowMismatch != 0 {
		t.Errorf("the guard counts %d matches and %d mismatches, want none: the answers were not compared", w.ShadowMatch, w.ShadowMismatch)
	}
}

// TestAShadowRouteSendsNoCopyOfAnUpgrade: a copy of a WebSocket handshake
// went to the other side as a plain request, the facade opening no tunnel
// for it, and was compared with the primary's 101: every handshake
// counted as a mismatch (2 of 2), and a shadowed write's copy was
// applied while what the client sent through the primary's tunnel was
// not (found by the red team). The handshake is served by the primary alone,
// its tunnel intact, and the copy counted dropped; an upgrade to another
// protocol, which the facade serves as plain HTTP/1.1, is copied as
// before.
func TestAShadowRouteSendsNoCopyOfAnUpgrade(t *testing.T) {
	echo := newBackend(t, testkit.WebSocketEcho(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("plain"))
	}))
	other := newBackend(t, answer(http.StatusOK, "plain"))
	f := newFacade(t, echo.URL, other.URL, "", `
  - {name: s, match: "/ws", mode: shadow, shadow_writes: true}
`)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		tunnelEchoes(t, f, method+" /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").Close()
	}
	if got := f.comparisons(t, "s", 2); got["dropped"] != 2 || got["mismatch"] != 0 {
		t.Errorf("comparisons %v; want the 2 handshakes' copies dropped, no mismatch", got)
	}
	if n := other.hits(); n != 0 {
		t.Errorf("the shadow side received %d copies of an upgrade, want none", n)
	}
	_, r := rawRequest(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("h2c: got %v, %v; want 200", resp, err)
	}
	if got := f.comparisons(t, "s", 3); got["match"] != 1 {
		t.Errorf("comparisons %v; want the h2c request, served as HTTP/1.1, copied and matched", got)
	}
}

// TestAShadowedBodyTooLargeToCopyReachesThePrimary: a shadow route's
// client never pays for the copy. A body over max_replay_body, announced
// or found so chunked, goes to the primary whole and no copy is sent
// (counted dropped), as when replay_budget has no room for it; a
// fallback route that may replay it still refuses it (413).
//
// Found by the red team: both shadowed POSTs got the facade's 413 while
// the budget had room, and were served only while it was full.
func TestAShadowedBodyTooLargeToCopyReachesThePrimary(t *testing.T) {
	legacy := newBackend(t, answer(200, "legacy"))
	modern := newBackend(t, answer(201, "modern"))
	f := newFacade(t, legacy.URL, modern.URL, "max_replay_body: 1KiB", `
  - {name: copy, match: "POST /copies", mode: shadow, shadow_writes: true}
  - {name: create, match: "POST /things", mode: fallback, fallback_methods: [POST]}
`)
	body := strings.Repeat("d", 3000)
	for _, c := range []struct {
		name string
		body io.Reader
	}{
		{"a body of known length", strings.NewReader(body)},
		{"a chunked body", io.MultiReader(strings.NewReader(body))},
	} {
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/copies", c.body)
		resp, got := f.do(t, req)
		if resp.StatusCode != 200 || got != "legacy" {
			t.Errorf("%s over max_replay_body on a shadow route: %d %q, want the primary's answer", c.name, resp.StatusCode, got)
		}
		if got := string(legacy.last(t).Body); got != body {
			t.Errorf("%s: the primary received %d bytes, want the whole body of 3000", c.name, len(got))
		}
	}
	if got := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "copy", "result": "dropped"}); got != 2 {
		t.Errorf("shadow dropped = %v, want 2", got)
	}
	if n := modern.hits(); n != 0 {
		t.Errorf("modern received %d copies, want none", n)
	}
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/things", strings.NewReader(body))
	if resp, _ := f.do(t, req); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("over max_replay_body on a fallback route: %d, want 413", resp.StatusCode)
	}
}
