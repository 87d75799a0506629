package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// hangingModern is a backend that takes each request's head and never
// answers, until its client is gone or the test ends; arrived gets one
// value per request.
func hangingModern(t *testing.T) (url string, arrived chan struct{}) {
	arrived = make(chan struct{}, 16)
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-done: // net/http sees no hang-up before the body is read
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(done) }) // first: Close waits for the handlers
	return s.URL, arrived
}

// TestAClientThatGaveUpOnAHangingModernCountsAsModernFailing: modern
// hangs and its clients give up before its timeout. Each such request
// was a 499 and no attempt of modern's, so the guard never saw modern
// fail while every client timed out. A client that waited for at least
// a quarter of modern's timeout (1s here) for an answer that never began
// counts as modern failing, in the window the guard judges, on a route
// in modern and one in fallback; a client that leaves the moment modern
// has its request counts nothing for the guard, so that a hostile client
// cannot trip it, and no request served for the retirement verdict. strangler_requests_total says 499 for each, as before.
func TestAClientThatGaveUpOnAHangingModernCountsAsModernFailing(t *testing.T) {
	modernURL, arrived := hangingModern(t)
	legacy := newBackend(t, answer(200, `{}`))
	f := newFacade(t, legacy.URL, modernURL, "", `
  - {name: mod, match: "/mod", mode: modern}
  - {name: fb, match: "GET /fb", mode: fallback}
`)
	// send sends a request whose client leaves after wait once modern
	// has it (its head), and waits for the facade to count the 499.
	send := func(t *testing.T, method, route string, body io.Reader, wait time.Duration) {
		t.Helper()
		left := func() float64 {
			return f.metric(t, "strangler_requests_total", map[string]string{"route": route, "backend": "modern", "code": "499"})
		}
		before := left()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, f.URL+"/"+route, body)
		go func() {
			<-arrived
			time.AfterFunc(wait, cancel) // the client's own timeout
		}()
		if resp, err := f.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("%s /%s: %d, although the client gave up", method, route, resp.StatusCode)
		}
		testkit.Eventually(t, 10*time.Second, "the 499 counted", func() bool { return left() == before+1 })
	}
	window := func(route string) (attempts, failed int64) {
		w := f.router.Current().byName[route].stats.Window(time.Now(), time.Minute)
		return w.ModernAttempts, w.ModernErrors
	}

	t.Run("a client that leaves at once counts nothing", func(t *testing.T) {
		for _, route := range []string{"mod", "fb"} {
			for range 5 {
				send(t, http.MethodGet, route, nil, 0)
			}
			if attempts, failed := window(route); attempts != 0 || failed != 0 {
				t.Errorf("%s: the guard counts %d attempts of modern's, %d failed; want none: the clients left at once", route, attempts, failed)
			}
		}
		// Nor are they requests modern served, toward retiring legacy.
		sink := &countSink{}
		if err := f.router.deps.Stats.Flush(context.Background(), sink, time.Now()); err != nil {
			t.Fatal(err)
		}
		if sink.requests != 10 || sink.modernServed != 0 {
			t.Errorf("the store got %d requests, %d of them served by modern; want 10, none served: modern answered none", sink.requests, sink.modernServed)
		}
	})

	t.Run("clients that gave up waiting count as modern failing", func(t *testing.T) {
		for _, route := range []string{"mod", "fb"} {
			for range 3 {
				send(t, http.MethodGet, route, nil, 400*time.Millisecond)
			}
			if attempts, failed := window(route); attempts != 3 || failed != 3 {
				t.Errorf("%s: the guard counts %d attempts of modern's, %d failed; want 3 and 3", route, attempts, failed)
			}
		}
		// A body sent whole counts from its end.
		send(t, http.MethodPost, "mod", strings.NewReader(`{"a":1}`), 400*time.Millisecond)
		if attempts, failed := window("mod"); attempts != 4 || failed != 4 {
			t.Errorf("mod: the guard counts %d attempts of modern's, %d failed; want 4 and 4", attempts, failed)
		}
		if lines := f.logLines(t, "fallback"); len(lines) != 0 || legacy.hits() != 0 {
			t.Errorf("a client leaving fell back: %d fallback log lines, legacy called %d times", len(lines), legacy.hits())
		}
	})
}

// TestAClientThatLeavesWhileSendingItsBodyCountsNothing: a client that
// sends part of a body, waits past a quarter of modern's timeout and
// leaves is no failure of modern's: modern never had the whole request
// (the client gets 400, as a body that broke does).
func TestAClientThatLeavesWhileSendingItsBodyCountsNothing(t *testing.T) {
	modernURL, _ := hangingModern(t)
	f := newFacade(t, deadURL(t), modernURL, "", `
  - {name: mod, match: "POST /mod", mode: modern}
`)
	// Over a raw socket: Go's client holds a chunked head back until the
	// body's first bytes fill its buffer or end.
	c, err := net.Dial("tcp", f.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /mod HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n")
	time.AfterFunc(400*time.Millisecond, func() { c.Close() }) // the client's own timeout; the rest never comes
	stats := f.router.Current().byName["mod"].stats
	testkit.Eventually(t, 10*time.Second, "the request counted", func() bool {
		return stats.Window(time.Now(), time.Minute).Requests == 1
	})
	if w := stats.Window(time.Now(), time.Minute); w.ModernAttempts != 0 || w.ModernErrors != 0 {
		t.Errorf("the guard counts %d attempts of modern's, %d failed; want none: modern never had the whole request", w.ModernAttempts, w.ModernErrors)
	}
}

// TestAClientThatLeavesAtOnceOverARawSocketCountsNothing: a hostile
// client that sends a request's head and closes its connection, again and
// again, is no failure of modern's however many times it does so.
func TestAClientThatLeavesAtOnceOverARawSocketCountsNothing(t *testing.T) {
	modernURL, arrived := hangingModern(t)
	f := newFacade(t, deadURL(t), modernURL, "", `
  - {name: mod, match: "GET /mod", mode: modern}
`)
	for range 10 {
		c, err := net.Dial("tcp", f.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /mod HTTP/1.1\r\nHost: x\r\n\r\n")
		<-arrived
		c.Close()
	}
	testkit.Eventually(t, 10*time.Second, "ten 499s counted", func() bool {
		return f.metric(t, "strangler_requests_total", map[string]string{"route": "mod", "backend": "modern", "code": "499"}) == 10
	})
	if w := f.router.Current().byName["mod"].stats.Window(time.Now(), time.Minute); w.ModernAttempts != 0 || w.ModernErrors != 0 {
		t.Errorf("the guard counts %d attempts of modern's, %d failed; want none", w.ModernAttempts, w.ModernErrors)
	}
}

// TestAClientThatSentItsBodySlowlyAndLeftAtOnceCountsNothing: a client
// that takes longer than a quarter of modern's timeout to send its body
// and leaves the moment the body is sent gave modern no time to answer:
// its wait counts from its body's end, not from its request's start, so
// that a client sending slowly cannot trip the guard.
func TestAClientThatSentItsBodySlowlyAndLeftAtOnceCountsNothing(t *testing.T) {
	modernURL, arrived := hangingModern(t)
	f := newFacade(t, deadURL(t), modernURL, "", `
  - {name: mod, match: "POST /mod", mode: modern}
`)
	c, err := net.Dial("tcp", f.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /mod HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\"")
	<-time.After(400 * time.Millisecond) // the client sends the rest slowly: a quarter of modern's timeout is 250ms
	io.WriteString(c, ":1}")
	<-arrived // modern has the whole request
	c.Close()
	testkit.Eventually(t, 10*time.Second, "the 499 counted", func() bool {
		return f.metric(t, "strangler_requests_total", map[string]string{"route": "mod", "backend": "modern", "code": "499"}) == 1
	})
	if w := f.router.Current().byName["mod"].stats.Window(time.Now(), time.Minute); w.ModernAttempts != 0 || w.ModernErrors != 0 {
		t.Errorf("the guard counts %d attempts of modern's, %d failed; want none: the client left as soon as its body was sent", w.ModernAttempts, w.ModernErrors)
	}
}
