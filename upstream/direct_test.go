package upstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// rawBackend answers each request on a connection with the next of
// answers, as raw bytes; after the last one of a connection it closes it.
// It returns its URL.
func rawBackend(t *testing.T, perConn ...string) string {
	t.Helper()
	addr := testkit.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for _, answer := range perConn {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, answer)
		}
	})
	return "http://" + addr
}

func get(t *testing.T, u *Upstream) (*http.Response, error) {
	t.Helper()
	return u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, "/x")), http.Header{}, nil))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAPooledConnectionTheBackendClosedIsNotAFailure: a backend that
// closes keep-alive connections after one answer (as many do when idle)
// costs the next requests nothing, however many of the pooled connections
// it closed: each is sent again on a new connection.
func TestAPooledConnectionTheBackendClosedIsNotAFailure(t *testing.T) {
	url := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
	for round := range 3 {
		// Three requests at once leave three pooled connections, which
		// the backend then closes.
		var held []*http.Response
		for range 3 {
			resp, err := get(t, u)
			if err != nil {
				t.Fatalf("round %d: %v", round+1, err)
			}
			held = append(held, resp)
		}
		for _, resp := range held {
			if body := readAll(t, resp); body != "ok" {
				t.Fatalf("round %d: body %q", round+1, body)
			}
		}
		time.Sleep(50 * time.Millisecond) // let the backend's closes arrive
	}
}

// TestABodyLeftUnreadDoesNotReachTheNextRequest: a response body the
// caller closes before its end is not read as the next response.
func TestABodyLeftUnreadDoesNotReachTheNextRequest(t *testing.T) {
	b := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.URL.Query().Get("n"), strings.Repeat("x", 100<<10))
	})
	u := New("legacy", Config{URL: mustURL(t, b.URL), Timeout: 5 * time.Second})
	for i := range 3 {
		resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, fmt.Sprintf("/?n=%d", i))), http.Header{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, 2)
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != fmt.Sprintf("%d ", i) {
			t.Fatalf("request %d: body starts %q (%v)", i, first, err)
		}
		resp.Body.Close()
	}
}

// TestTrailersAndHEAD: a chunked body's trailers reach the caller once it
// has read the body, and a HEAD answer with a Content-Length has no body
// (the next request on the connection reads its own answer).
func TestTrailersAndHEAD(t *testing.T) {
	b := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("Content-Length", "5")
		if r.Method == http.MethodHead {
			return
		}
		w.Header().Del("Content-Length")
		io.WriteString(w, "hello")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	})
	u := New("legacy", Config{URL: mustURL(t, b.URL), Timeout: 5 * time.Second})
	head, err := u.RoundTrip(NewRequest(context.Background(), http.MethodHead, u.Target(mustURL(t, "/")), http.Header{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, head); body != "" || head.ContentLength != 5 {
		t.Errorf("HEAD: body %q, Content-Length %d; want none and 5", body, head.ContentLength)
	}
	resp, err := get(t, u)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); body != "hello" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("GET: body %q, trailer %v; want hello and X-Sum 42", body, resp.Trailer)
	}
}

// TestAnEndlessResponseHeadIsRefused: a backend cannot make the facade
// buffer a response head without end.
func TestAnEndlessResponseHeadIsRefused(t *testing.T) {
	huge := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 11<<10) + "\r\n"
	u := New("legacy", Config{URL: mustURL(t, rawBackend(t, huge)), Timeout: 5 * time.Second})
	resp, err := get(t, u)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a response head of 11 MiB was accepted")
	}
}

// TestClosingABodyWhileItIsReadEndsTheRead: a caller that gives up on a
// response whose backend has stopped sending (closing the body from
// another goroutine) is not held until the backend sends more, and the
// read waiting for it ends.
func TestClosingABodyWhileItIsReadEndsTheRead(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	b := testkit.NewBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "12345")
		w.(http.Flusher).Flush()
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	u := New("legacy", Config{URL: mustURL(t, b.URL), Timeout: 5 * time.Second})
	resp, err := get(t, u)
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		read <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the read reach the stalled part
	closed := make(chan struct{})
	go func() {
		resp.Body.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the stalled backend")
	}
	select {
	case err := <-read:
		if err == nil {
			t.Error("the read of a body closed half-way ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read went on waiting after the body was closed")
	}
}

// scriptedBackend runs script on each connection a client opens and
// returns the backend's URL and how many requests it read in all.
func scriptedBackend(t *testing.T, script func(c net.Conn, next func() bool)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var requests atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				script(c, func() bool {
					if _, err := http.ReadRequest(br); err != nil {
						return false
					}
					requests.Add(1)
					return true
				})
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &requests
}

// TestBytesArrivingOnAnIdleConnectionAreNeverTheNextAnswer: a backend
// that sends more than its answer, after the facade took the answer (a
// body past its Content-Length here), has spoilt its connection: the next
// request goes on a new one and gets its own answer, not those bytes.
func TestBytesArrivingOnAnIdleConnectionAreNeverTheNextAnswer(t *testing.T) {
	url, _ := scriptedBackend(t, func(c net.Conn, next func() bool) {
		if !next() {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
		if next() {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
		}
	})
	u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
	for i := range 2 {
		resp, err := get(t, u)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if body := readAll(t, resp); body != "first" {
			t.Fatalf("request %d answered %q, want first (each on a connection of its own)", i+1, body)
		}
		time.Sleep(300 * time.Millisecond) // the stray answer arrives
	}
}

// TestAConnectionIsNotReusedAfterAnAnswerWithoutABody: a backend that
// writes a body after a 204 or 304 anyway writes it after the head; the
// next request, sent at once on the pooled connection, read it as its
// answer before it arrived anywhere a look could see it. After such an
// answer the connection is closed, and the next request gets its own.
func TestAConnectionIsNotReusedAfterAnAnswerWithoutABody(t *testing.T) {
	for _, head := range []string{"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"} {
		url, _ := scriptedBackend(t, func(c net.Conn, next func() bool) {
			for next() {
				io.WriteString(c, head)
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
			}
		})
		u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
		for i := range 2 {
			resp, err := get(t, u)
			if err != nil {
				t.Fatalf("%s request %d: %v", head[9:12], i+1, err)
			}
			if body := readAll(t, resp); resp.StatusCode == http.StatusOK {
				t.Fatalf("%s request %d answered 200 %q, the bytes sent late after the first answer", head[9:12], i+1, body)
			}
		}
	}
}

// TestAConnectionIsNotReusedAfterAnAnswerFramedTwoWays: an answer with
// both Content-Length and Transfer-Encoding: chunked is read as chunked,
// but its backend may have meant the Content-Length, and what it sends
// past the chunked end, once the next request is on the connection, was
// that request's answer (1 of 1 such requests read "stale"). The answer
// is served, and the next request goes on a new connection.
func TestAConnectionIsNotReusedAfterAnAnswerFramedTwoWays(t *testing.T) {
	for _, cl := range []string{"Content-Length: 64", "content-length:64"} {
		url, requests := scriptedBackend(t, func(c net.Conn, next func() bool) {
			if !next() {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+cl+"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n")
			// What follows, sent once the next request came on this
			// connection, is the rest of a body of 64 bytes.
			if next() {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
			}
		})
		u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
		for i := range 2 {
			resp, err := get(t, u)
			if err != nil {
				t.Fatalf("%s: request %d: %v", cl, i+1, err)
			}
			if body := readAll(t, resp); body != "first" {
				t.Fatalf("%s: request %d answered %q, want first (each on a connection of its own)", cl, i+1, body)
			}
		}
		if n := requests.Load(); n != 2 {
			t.Errorf("%s: the backend read %d requests, want 2", cl, n)
		}
	}
}

// TestBytesSentLateAfterAnAnswerAreNotTheNextAnswer: a backend that
// writes more than its Content-Length, a moment later, spoils the
// connection after the next request was sent on it: that request read
// the stray bytes as its answer and its client got a 502 for them. It is
// sent again on a new connection, and gets its own answer.
func TestBytesSentLateAfterAnAnswerAreNotTheNextAnswer(t *testing.T) {
	addr := testkit.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.URL.Path), req.URL.Path)
			if req.URL.Path == "/late" {
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, ", and more than was said\r\n\r\n")
			}
		}
	})
	u := New("legacy", Config{URL: mustURL(t, "http://"+addr), Timeout: 5 * time.Second})
	for _, path := range []string{"/late", "/next"} {
		resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, path)), http.Header{}, nil))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if body := readAll(t, resp); body != path {
			t.Fatalf("GET %s answered %q", path, body)
		}
	}
}

// TestAnAnswerCutShortIsNotSentAgain: a backend that began to answer (a
// 103, then it closed) had the request; it is not sent a second time,
// although the connection was a pooled one.
func TestAnAnswerCutShortIsNotSentAgain(t *testing.T) {
	url, requests := scriptedBackend(t, func(c net.Conn, next func() bool) {
		if !next() {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if next() {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
		}
	})
	u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
	resp, err := get(t, u)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if _, err := get(t, u); err == nil {
		t.Error("an answer cut after its 103 was taken as an answer")
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("the backend read %d requests, want 2: the cut one was sent again", n)
	}
}

// TestEndlessInformationalAnswersAreRefused: 103 after 103 with no final
// answer ends at the response head limit, even without a header timeout.
func TestEndlessInformationalAnswersAreRefused(t *testing.T) {
	url, _ := scriptedBackend(t, func(c net.Conn, next func() bool) {
		if !next() {
			return
		}
		hint := []byte("HTTP/1.1 103 Early Hints\r\nLink: </" + strings.Repeat("a", 1000) + ">\r\n\r\n")
		for {
			if _, err := c.Write(hint); err != nil {
				return
			}
		}
	})
	u := New("legacy", Config{URL: mustURL(t, url)})
	done := make(chan error, 1)
	go func() { _, err := get(t, u); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("endless 103s gave an answer")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("endless 103s kept the request reading for 20 s")
	}
}

// TestLookingAtAnIdleConnectionAllocatesNothing: the look at the socket
// before each reuse of a pooled connection is on every proxied read's
// path, so it allocates nothing, and finds a healthy connection healthy.
func TestLookingAtAnIdleConnectionAllocatesNothing(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	// Two answers: the backend keeps the connection open for the second.
	u := New("legacy", Config{URL: mustURL(t, rawBackend(t, ok, ok)), Timeout: 5 * time.Second})
	resp, err := get(t, u)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	u.direct.mu.Lock()
	defer u.direct.mu.Unlock()
	if len(u.direct.idle) != 1 {
		t.Fatalf("%d idle connections, want the one just used", len(u.direct.idle))
	}
	c := u.direct.idle[0]
	if c.stale() {
		t.Fatal("a healthy idle connection was found stale")
	}
	if n := testing.AllocsPerRun(100, func() { c.stale() }); n != 0 {
		t.Fatalf("looking at an idle connection allocated %v times, want none", n)
	}
}

// TestAConnectionWaitingForItsAnswerHoldsNoReadBuffer: a request waiting
// for a slow backend holds no 4 KiB read buffer (but for the first few),
// so that a burst of requests to a slow backend costs the facade little
// memory. Measured as
// the live heap per waiting request, the backend's side included.
func TestAConnectionWaitingForItsAnswerHoldsNoReadBuffer(t *testing.T) {
	// Well above bufferedWaits, whose 4 KiB buffers this shares out.
	const n = 400
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var arrived sync.WaitGroup
	arrived.Add(n)
	answer := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// A small buffer and no bufio: the backend's own share of
				// the heap stays well under what is measured.
				var buf [512]byte
				for got := 0; !strings.Contains(string(buf[:got]), "\r\n\r\n"); {
					m, err := c.Read(buf[got:])
					if err != nil {
						return
					}
					got += m
				}
				arrived.Done()
				<-answer
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	u := New("legacy", Config{URL: mustURL(t, "http://"+ln.Addr().String()), Timeout: 10 * time.Second})

	var before, waiting runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, "/x")), http.Header{}, nil))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	arrived.Wait()
	time.Sleep(200 * time.Millisecond) // every client is past its write, waiting
	runtime.GC()
	runtime.ReadMemStats(&waiting)
	close(answer)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	perRequest := (int64(waiting.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes of live heap per waiting request", perRequest)
	if perRequest >= 4<<10 {
		t.Errorf("%d bytes of live heap per request waiting for its answer; want under 4 KiB (no read buffer held)", perRequest)
	}
}
