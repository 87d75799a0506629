package edge

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"strangler/internal/testcert"
	"strangler/internal/testkit"
)

// answersServer is the public listener's server (NewServer) with its own
// answers made JSON refusals, on loopback: what the facade serves.
type answersServer struct {
	addr   string
	logs   *testkit.Logs
	hits   atomic.Int64 // requests that reached the handler
	mu     sync.Mutex
	counts map[string]int
}

func (s *answersServer) count(reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[reason]
}

// total is every refusal counted.
func (s *answersServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// serveAnswers serves h (nil: "ok" to everything) behind NewServer and
// ServerAnswers, over TLS when tlsCert is set.
func serveAnswers(t *testing.T, h http.HandlerFunc, tlsCert *Certificate) *answersServer {
	t.Helper()
	s := &answersServer{logs: &testkit.Logs{}, counts: map[string]int{}}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
	}
	log := s.logs.Logger(slog.LevelInfo)
	srv, err := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}), log)
	if err != nil {
		t.Fatal(err)
	}
	a := &ServerAnswers{Listener: "public", Log: log, Count: func(reason string) {
		s.mu.Lock()
		s.counts[reason]++
		s.mu.Unlock()
	}}
	a.Install(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	if tlsCert != nil {
		srv.TLSConfig = TLSConfig(tlsCert)
		go srv.ServeTLS(a.Listen(ln), "", "")
	} else {
		go srv.Serve(TrackFraming(a.Listen(ln)))
	}
	t.Cleanup(func() { srv.Close() })
	return s
}

// jsonRefusal checks that res, read from a raw connection, is a JSON
// refusal with status and the connection closed after it.
func jsonRefusal(t *testing.T, c *client, status int) {
	t.Helper()
	res, body := c.response()
	if res.StatusCode != status {
		t.Fatalf("status %d %q, want %d", res.StatusCode, body, status)
	}
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || len(e.RequestID) != 36 {
		t.Errorf("body %q, want a JSON error with a request id", body)
	}
	if !res.Close || res.Header.Get("Date") == "" {
		t.Errorf("Connection %q, Date %q; want close and a date", res.Header.Get("Connection"), res.Header.Get("Date"))
	}
	if n, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the refusal the connection gave %d bytes, %v; want it closed", n, err)
	}
}

// The marker stands for patient data in a request; no log line may hold it.
const marker = "4711-PATIENT"

func TestTheServersOwnAnswersAreJSONRefusals(t *testing.T) {
	s := serveAnswers(t, nil, nil)
	for _, c := range []struct {
		name, raw string
		status    int
		reason    string
	}{
		{"an invalid percent-encoding in the target", "GET /patients/%zz" + marker + " HTTP/1.1\r\nHost: f\r\n\r\n", 400, ReasonMalformed},
		{"a raw control character in the target", "GET /patients/\x01" + marker + " HTTP/1.1\r\nHost: f\r\n\r\n", 400, ReasonMalformed},
		{"an origin-form target not starting with /", "GET patients/" + marker + " HTTP/1.1\r\nHost: f\r\n\r\n", 400, ReasonMalformed},
		{"two Host headers", "GET /patients/" + marker + " HTTP/1.1\r\nHost: f\r\nHost: g\r\n\r\n", 400, ReasonMalformed},
		{"a header name that is no token", "GET / HTTP/1.1\r\nHost: f\r\nX User: " + marker + "\r\n\r\n", 400, ReasonHeader},
		{"a header name with a character no token has", "GET / HTTP/1.1\r\nHost: f\r\nX\x7fUser: " + marker + "\r\n\r\n", 400, ReasonMalformed},
		{"a header value with a control character", "GET / HTTP/1.1\r\nHost: f\r\nX-User: " + marker + "\x01\r\n\r\n", 400, ReasonMalformed},
		{"an invalid method token", "G(T /patients/" + marker + " HTTP/1.1\r\nHost: f\r\n\r\n", 400, ReasonMalformed},
		{"a request line without a version", "GET /patients/" + marker + "\r\nHost: f\r\n\r\n", 400, ReasonMalformed},
		{"a malformed version", "GET / HTTP/one\r\nHost: f\r\n\r\n", 400, ReasonMalformed},
		{"a header line without a colon", "GET / HTTP/1.1\r\nHost: f\r\n" + marker + "\r\n\r\n", 400, ReasonMalformed},
		{"a missing Host on HTTP/1.1", "GET /patients/" + marker + " HTTP/1.1\r\n\r\n", 400, ReasonHost},
		{"a malformed Host", "GET / HTTP/1.1\r\nHost: " + marker + "/x\r\n\r\n", 400, ReasonHost},
		{"a head over the limit", "GET / HTTP/1.1\r\nHost: f\r\nX-A: " + strings.Repeat(marker, 8<<10) + "\r\n\r\n", 431, ReasonHeadTooLarge},
		{"Transfer-Encoding gzip, chunked", "POST / HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, ReasonTransferEncoding},
		{"Transfer-Encoding identity", "POST / HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: identity\r\n\r\n", 501, ReasonTransferEncoding},
		{"two Transfer-Encoding fields", "POST / HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, ReasonTransferEncoding},
		{"HTTP/2.0 on an HTTP/1 connection", "GET /patients/" + marker + " HTTP/2.0\r\nHost: f\r\n\r\n", 505, ReasonHTTPVersion},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: f\r\n\r\n", 505, ReasonHTTPVersion},
		{"an Expect other than 100-continue", "POST /patients/" + marker + " HTTP/1.1\r\nHost: f\r\nExpect: " + marker + "\r\nContent-Length: 2\r\n\r\nhi", 417, ReasonExpect},
		{"an Expect on HTTP/1.0", "GET / HTTP/1.0\r\nExpect: 100-continue-not\r\n\r\n", 417, ReasonExpect},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, lines := s.count(c.reason), len(s.logs.Lines(t, "request refused"))
			cl := dial(t, s.addr)
			cl.send(c.raw)
			jsonRefusal(t, cl, c.status)
			if got := s.count(c.reason) - before; got != 1 {
				t.Errorf("counted %d times as %s, want once", got, c.reason)
			}
			got := s.logs.Lines(t, "request refused")
			if len(got) != lines+1 {
				t.Fatalf("%d log lines, want one", len(got)-lines)
			}
			if l := got[len(got)-1]; l["reason"] != c.reason || l["status"] != float64(c.status) || l["listener"] != "public" {
				t.Errorf("log line %v, want reason %s, status %d, listener public", l, c.reason, c.status)
			}
		})
	}
	if s.hits.Load() != 0 {
		t.Errorf("%d requests reached the handler", s.hits.Load())
	}
	if strings.Contains(s.logs.String(), marker) {
		t.Errorf("a log line holds what the client sent: %s", s.logs.String())
	}
}

// cannedBadRequest is byte for byte net/http's own plain-text 400.
const cannedBadRequest = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"

func TestAHandlersAnswerIsNeverTakenForTheServers(t *testing.T) {
	t.Run("the server's very bytes, written by a handler", func(t *testing.T) {
		s := serveAnswers(t, func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			io.WriteString(conn, cannedBadRequest)
		}, nil)
		c := dial(t, s.addr)
		c.send("GET / HTTP/1.1\r\nHost: f\r\n\r\n")
		if out, _ := io.ReadAll(c.br); string(out) != cannedBadRequest {
			t.Errorf("got %q, want the handler's bytes", out)
		}
		if n := s.total(); n != 0 {
			t.Errorf("counted %d refusals, want none", n)
		}
	})
	t.Run("a plain-text 400 without Date, on each request of a kept-alive connection", func(t *testing.T) {
		s := serveAnswers(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Date"] = nil
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "400 Bad Request")
		}, nil)
		c := dial(t, s.addr)
		for range 3 {
			c.send("GET / HTTP/1.1\r\nHost: f\r\n\r\n")
			if res, body := c.response(); res.StatusCode != 400 || body != "400 Bad Request" || res.Close {
				t.Fatalf("got %d %q (close %v), want the handler's kept-alive 400", res.StatusCode, body, res.Close)
			}
		}
		if n := s.total(); n != 0 {
			t.Errorf("counted %d refusals, want none", n)
		}
	})
	t.Run("a backend's plain-text 400 passed through", func(t *testing.T) {
		backend := testkit.ServeConns(t, func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, cannedBadRequest)
		})
		proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: backend})
		}}
		s := serveAnswers(t, proxy.ServeHTTP, nil)
		c := dial(t, s.addr)
		c.send("GET / HTTP/1.1\r\nHost: f\r\n\r\n")
		res, body := c.response()
		if res.StatusCode != 400 || body != "400 Bad Request" || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("got %d %q %q, want the backend's answer", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		if n := s.total(); n != 0 {
			t.Errorf("counted %d refusals, want none", n)
		}
	})
}

func TestAServerRefusalLeavesNeighboursAlone(t *testing.T) {
	s := serveAnswers(t, nil, nil)
	other := dial(t, s.addr)
	other.send("GET /first HTTP/1.1\r\nHost: f\r\n\r\n")
	if res, _ := other.response(); res.StatusCode != 200 {
		t.Fatalf("status %d on the other connection", res.StatusCode)
	}
	t.Run("a bad request after a good one on a kept-alive connection", func(t *testing.T) {
		c := dial(t, s.addr)
		c.send("GET /ok HTTP/1.1\r\nHost: f\r\n\r\nGET /patients/%zz HTTP/1.1\r\nHost: f\r\n\r\n")
		if res, body := c.response(); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("first answer %d %q, want 200 ok", res.StatusCode, body)
		}
		jsonRefusal(t, c, 400)
	})
	t.Run("a good request pipelined after a bad one is not served", func(t *testing.T) {
		hits := s.hits.Load()
		c := dial(t, s.addr)
		c.send("GET /patients/%zz HTTP/1.1\r\nHost: f\r\n\r\nGET /ok HTTP/1.1\r\nHost: f\r\n\r\n")
		jsonRefusal(t, c, 400)
		if s.hits.Load() != hits {
			t.Errorf("the request after the refused one was served")
		}
	})
	other.send("GET /second HTTP/1.1\r\nHost: f\r\n\r\n")
	if res, _ := other.response(); res.StatusCode != 200 {
		t.Errorf("status %d on the other connection after the refusals", res.StatusCode)
	}
	if s.count(ReasonMalformed) != 2 {
		t.Errorf("counted %d, want 2", s.count(ReasonMalformed))
	}
}

func TestPlainHTTPOnTheTLSListenerIsAJSONRefusal(t *testing.T) {
	ca := testcert.NewAuthority(t)
	certFile, keyFile := ca.Files("server")
	ca.Issue(t, 1, certFile, keyFile, "127.0.0.1")
	cert, err := LoadCertificate(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := serveAnswers(t, nil, cert)
	c := dial(t, s.addr)
	c.send("GET /patients/" + marker + " HTTP/1.1\r\nHost: f\r\n\r\n")
	jsonRefusal(t, c, 400)
	if s.count(ReasonNotTLS) != 1 {
		t.Errorf("counted %d as %s, want one", s.count(ReasonNotTLS), ReasonNotTLS)
	}
	if s.hits.Load() != 0 || strings.Contains(s.logs.String(), marker) {
		t.Errorf("%d requests reached the handler; logs %s", s.hits.Load(), s.logs.String())
	}
	// TLS itself is untouched, for HTTP/1.1 and HTTP/2.
	for _, h2 := range []bool{false, true} {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}}
		res, err := client.Get("https://" + s.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "ok" || res.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Errorf("over TLS (h2 %v): %s %d %q, want ok", h2, res.Proto, res.StatusCode, body)
		}
	}
	if n := s.total(); n != 1 {
		t.Errorf("counted %d refusals, want only the plain request's", n)
	}
}
