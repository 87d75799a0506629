package upstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// rawBackend answers each request on a connection with the next of
// answers, as raw bytes; after the last one of a connection it closes it.
// It returns its URL.
func rawBackend(t *testing.T, perConn ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for _, answer := range perConn {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					io.WriteString(c, answer)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
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
