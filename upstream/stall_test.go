package upstream

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deafBackend is a backend that accepts connections and never reads a
// byte of them (hung, or its accept queue the only part still working),
// with a receive buffer as small as the kernel allows, so that a sender
// blocks soon. It returns its URL.
func deafBackend(t *testing.T) *url.URL {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestASendTheBackendDoesNotReadTimesOut: a backend that accepts the
// connection and reads nothing held a write (an 8 MiB body) for as long
// as its caller waited, since the backend's timeout starts once the
// request is written: the client, the buffered body and the facade's
// goroutine waited with it. Now the send ends as a timeout once it has
// made no progress for the backend's timeout, and reads as a timeout.
func TestASendTheBackendDoesNotReadTimesOut(t *testing.T) {
	u := New("modern", Config{URL: deafBackend(t), Timeout: time.Second})
	for _, c := range []struct {
		name string
		size int
		held bool
	}{
		{"a large body", 8 << 20, false},
		{"a large body, 1xx held", 8 << 20, true},
		// Sent whole into the sockets' buffers: the watch, which counts
		// the wait for the answer too, ends it as the answer's timeout
		// does, and it must read as one (it read as a cancellation: 502).
		{"a small body", 1 << 10, false},
		{"a small body, 1xx held", 1 << 10, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The caller's own patience: far past the backend's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req := NewRequest(ctx, http.MethodPost, u.Target(&url.URL{Path: "/items"}), http.Header{}, bytes.Repeat([]byte("x"), c.size))
			start := time.Now()
			var err error
			var resp *http.Response
			if c.held {
				resp, err = u.RoundTripHeld(req, &Informational{})
			} else {
				resp, err = u.RoundTrip(req)
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("a backend that reads nothing answered")
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the send ended after %v, want within a few seconds of the backend's 1 s timeout", took.Round(time.Second))
			}
			if f := Classify(ctx, err); !f.Timeout || f.Canceled {
				t.Errorf("got %v (%+v), want a timeout", err, f)
			}
		})
	}
}

// TestASlowUploadIsNoStall: a client that uploads its body slowly (4 KiB
// every 400 ms, 3 s in all, with a backend timeout of 1 s) to a backend
// that reads it is not cut off: only the time the backend takes to read
// counts, not the time the body takes to come.
func TestASlowUploadIsNoStall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Got", strconv.FormatInt(n, 10))
	}))
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	u := New("modern", Config{URL: base, Timeout: time.Second})
	pr, pw := io.Pipe()
	go func() {
		for range 8 {
			time.Sleep(400 * time.Millisecond)
			if _, err := pw.Write(bytes.Repeat([]byte("y"), 4<<10)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, u.Target(&url.URL{Path: "/items"}).String(), pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := u.RoundTrip(req)
	if err != nil {
		t.Fatalf("a slow upload to a backend reading it failed: %v", err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Got"); resp.StatusCode != http.StatusOK || got != "32768" {
		t.Errorf("got %d, the backend read %s bytes; want 200, 32768", resp.StatusCode, got)
	}
}
