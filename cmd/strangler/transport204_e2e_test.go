package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// writeRawBackend serves each connection with answer, called for each
// request once it and its body were read whole, with how long the
// connection had waited idle before it; answer writes the reply itself
// and returns false to close the connection without one.
func writeRawBackend(t *testing.T, answer func(c net.Conn, req *http.Request, idle time.Duration) bool) string {
	t.Helper()
	addr := testkit.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		last := time.Now()
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			idle := time.Since(last)
			if _, err := io.Copy(io.Discard, req.Body); err != nil || !answer(c, req, idle) {
				return
			}
			last = time.Now()
		}
	})
	return "http://" + addr
}

// TestAWriteAnsweredWithoutABodyLeavesNothingForAnotherClient: writes went
// through Go's transport, which pooled the connection after a 204 to a
// PUT or DELETE (or a 304); a backend writing a body after such a head
// anyway wrote it a moment later, and the next write sent on the
// connection (another client's) read it as its answer: "SMUGGLED". Each
// client must get its own answer, whatever the size of its body.
func TestAWriteAnsweredWithoutABodyLeavesNothingForAnotherClient(t *testing.T) {
	backend := writeRawBackend(t, func(c net.Conn, req *http.Request, _ time.Duration) bool {
		switch req.URL.Path {
		case "/late-204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		case "/late-304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\n\r\n")
		default:
			answer := strings.TrimPrefix(req.URL.Path, "/")
			_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
			return err == nil
		}
		time.Sleep(50 * time.Millisecond)
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED")
		return err == nil
	})
	r := startFacadeYAML(t, backend, backend, "", `
  - {name: rest, match: "/*", mode: legacy}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	send := func(method, path string, size int) (*http.Response, error) {
		req, err := http.NewRequest(method, "http://"+r.public+path, strings.NewReader(strings.Repeat("x", size)))
		if err != nil {
			return nil, err
		}
		return client.Do(req)
	}
	for _, c := range []struct {
		method, target string
		size           int
	}{
		{http.MethodPut, "/late-204", 100},
		{http.MethodDelete, "/late-204", 0},
		{http.MethodPost, "/late-304", 100},
		{http.MethodPut, "/late-204", 200 << 10},
	} {
		t.Run(fmt.Sprintf("%s%s-%dB", c.method, c.target, c.size), func(t *testing.T) {
			var wrong atomic.Int64
			for round := range 5 {
				// The late answer first; then, while the backend has yet
				// to send its late bytes, others' writes.
				resp, err := send(c.method, c.target, c.size)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				var wg sync.WaitGroup
				for i := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						want := fmt.Sprintf("r%d-%d", round, i)
						resp, err := send(c.method, "/"+want, c.size)
						if err != nil {
							t.Error(err)
							return
						}
						got, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if string(got) != want && wrong.Add(1) <= 3 {
							t.Errorf("%s /%s: %d %q, not its own answer", c.method, want, resp.StatusCode, got)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// TestABackendsKeepAliveTimeoutLosesNoWrites: a backend that closes idle
// connections soon (Keep-Alive: timeout=1, as a Node.js or Apache backend
// says with its own number) closed a pooled connection just as a write was
// sent on it: the write, which cannot be sent again, failed with 502. The
// backend here answers no request that reaches a connection idle for more
// than 600 ms, as if its close had crossed it (a close crossing a request
// is a matter of microseconds, too rare to wait for in a test). Writes a
// client sends 700 ms apart must all be answered; before, every one after
// the first got 502.
func TestABackendsKeepAliveTimeoutLosesNoWrites(t *testing.T) {
	var lost atomic.Int64
	backend := writeRawBackend(t, func(c net.Conn, _ *http.Request, idle time.Duration) bool {
		if idle > 600*time.Millisecond {
			lost.Add(1)
			return false
		}
		_, err := io.WriteString(c, "HTTP/1.1 201 Created\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok")
		return err == nil
	})
	r := startFacadeYAML(t, backend, backend, "", `
  - {name: rest, match: "/*", mode: legacy}`)
	client := &http.Client{Timeout: 10 * time.Second}
	const writes = 5
	failed := 0
	for i := range writes {
		if i > 0 {
			time.Sleep(700 * time.Millisecond)
		}
		resp, err := client.Post("http://"+r.public+"/patients", "application/json", strings.NewReader(`{"name":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			failed++
		}
	}
	if failed > 0 || lost.Load() > 0 {
		t.Fatalf("%d of %d writes failed (%d reached a connection the backend was closing)", failed, writes, lost.Load())
	}
}
