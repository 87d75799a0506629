package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// stallingBackend writes answer to every request, then waits until the
// test ends (pause < 0) or for pause and writes rest.
func stallingBackend(t *testing.T, answer string, pause time.Duration, rest string) string {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return "http://" + testkit.ServeConns(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, answer)
		if pause < 0 {
			<-done
			return
		}
		select {
		case <-time.After(pause):
			io.WriteString(c, rest)
		case <-done:
		}
	})
}

// TestAStalledBodyOfKnownLengthIsCutAfterTheBackendsTimeout: a backend
// sends the head of an answer with a Content-Length and part of its body,
// then nothing; the facade ends the client's answer (its connection
// closed short of the length, net/http drops what it buffered) once a
// read has waited for the backend's
// timeout (1 s), on the direct path (GET) and Go's transport (a chunked
// request body). It held the client for as long as the backend waited.
func TestAStalledBodyOfKnownLengthIsCutAfterTheBackendsTimeout(t *testing.T) {
	legacy := stallingBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", -1, "")
	f := newFacade(t, legacy, legacy, "", `  - {name: x, match: "/x", mode: legacy}`)
	for name, request := range map[string]string{
		"direct":    "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"transport": "POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			conn.SetDeadline(start.Add(8 * time.Second))
			io.WriteString(conn, request)
			answer, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("after %v the client still waits (%v), with %q", time.Since(start).Round(time.Millisecond), err, answer)
			}
			// net/http's server drops what it buffered of an answer it
			// aborts: the client may get nothing, never all 10 bytes.
			if _, body, _ := strings.Cut(string(answer), "\r\n\r\n"); len(body) >= 10 {
				t.Errorf("answer %q, want it cut short of its length", answer)
			}
		})
	}
}

// TestAPausingStreamIsNotCut: a body of unknown length (chunked) that
// pauses for twice the backend's timeout reaches the client whole.
func TestAPausingStreamIsNotCut(t *testing.T) {
	legacy := stallingBackend(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", 2*time.Second, "2\r\ncd\r\n0\r\n\r\n")
	f := newFacade(t, legacy, legacy, "", `  - {name: x, match: "/x", mode: legacy}`)
	resp, body := f.get(t, "/x")
	if resp.StatusCode != http.StatusOK || body != "abcd" {
		t.Errorf("got %d %q, want 200 abcd", resp.StatusCode, body)
	}
}

// TestAModernAnswerThatBreaksOffCountsAsModernFailing: modern sends a
// 200's head and part of its body, then resets the connection (a pod
// killed mid-answer) or stalls past its timeout. The client's answer is
// cut; for the guard it was a success, so a modern breaking every answer
// never rolled a route back. It counts as a failed attempt of modern, on
// a modern and a fallback route alike.
func TestAModernAnswerThatBreaksOffCountsAsModernFailing(t *testing.T) {
	legacy := testkit.NewBackend(t, testkit.Answer(200, `{"from":"legacy"}`))
	resets := "http://" + testkit.ServeConns(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
		// A reset, not an orderly close.
		c.(*net.TCPConn).SetLinger(0)
		_ = req
	})
	stalls := stallingBackend(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":", -1, "")
	for name, modern := range map[string]string{"reset": resets, "stall": stalls} {
		t.Run(name, func(t *testing.T) {
			f := newFacade(t, legacy.URL, modern, "", `
  - {name: mod, match: "GET /mod/{id}", mode: modern}
  - {name: fb, match: "GET /fb/{id}", mode: fallback}`)
			for _, route := range []string{"mod", "fb"} {
				for i := range 3 {
					req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/%s/%d", f.URL, route, i), nil)
					req.Close = true // no retry of the client's own on a fresh connection
					resp, err := f.Client().Do(req)
					if err == nil {
						_, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					if err == nil {
						t.Fatalf("GET /%s/%d: a whole answer, want it cut", route, i)
					}
				}
				// The client sees its answer cut before the handler that
				// cut it has returned and counted it.
				stats := f.router.Current().byName[route].stats
				testkit.Eventually(t, 5*time.Second, "route "+route+": 3 attempts of modern, 3 failed", func() bool {
					w := stats.Window(time.Now(), time.Minute)
					return w.ModernAttempts == 3 && w.ModernErrors == 3
				})
			}
		})
	}
}

// TestAModernTimeoutCountsWhenItHappens: modern answers nothing until its
// timeout (3 s here) and the request falls back to legacy. Its failure
// was counted at the moment the request began, 3 s before it was known:
// a guard whose window is shorter than modern's timeout never saw one,
// and a longer one saw it for that much less. It counts when it happens.
func TestAModernTimeoutCountsWhenItHappens(t *testing.T) {
	legacy := testkit.NewBackend(t, testkit.Answer(200, `{"from":"legacy"}`))
	hangs := stallingBackend(t, "", -1, "")
	f := serveConfig(t, parseConfig(t, fmt.Sprintf(`backends:
  legacy: {url: %q, timeout: 1s}
  modern: {url: %q, timeout: 3s}
routes:
  - {name: fb, match: "GET /fb/{id}", mode: fallback}
`, legacy.URL, hangs)))
	if resp, body := f.get(t, "/fb/1"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "legacy") {
		t.Fatalf("got %d %q, want legacy's 200", resp.StatusCode, body)
	}
	stats := f.router.Current().byName["fb"].stats
	testkit.Eventually(t, 5*time.Second, "modern's timeout and the fallback within the last 2 s", func() bool {
		w := stats.Window(time.Now(), 2*time.Second)
		return w.ModernAttempts == 1 && w.ModernErrors == 1 && w.Fallbacks == 1 && w.Requests == 1
	})
}
