package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// breakingBackend answers a request whose path ends in reset, closed,
// stalled or malformed with a 200 whose body breaks off that way, and
// any other with a whole 200.
func breakingBackend(t *testing.T) string {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return "http://" + testkit.ServeConns(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		const head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":"
		switch path.Base(req.URL.Path) {
		case "reset":
			io.WriteString(c, head)
			c.(*net.TCPConn).SetLinger(0) // a reset, not an orderly close
		case "closed":
			io.WriteString(c, head)
		case "stalled":
			io.WriteString(c, head)
			<-done
		case "malformed":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n")
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		}
	})
}

// TestBrokenAnswersAreCountedByRouteBackendAndReason: an answer that
// breaks off mid-body (a reset, an early close, a stall past the
// backend's timeout, a malformed chunk) was counted in
// strangler_requests_total with the 200 its client was sent, and nowhere
// else, so no dashboard or alert saw it. It counts in
// strangler_backend_answers_broken_total{route,backend,reason}, once, for
// the backend that served it, on every mode and on the direct path and
// Go's transport alike; a whole answer counts
// nothing, and neither does a shadow copy that broke off.
func TestBrokenAnswersAreCountedByRouteBackendAndReason(t *testing.T) {
	backend := breakingBackend(t)
	d := newDualWriteFacade(t, backend, backend, time.Second, `
  - {name: leg, match: "GET /leg/{how}", mode: legacy}
  - {name: tr, match: "POST /tr/{how}", mode: legacy}
  - {name: mod, match: "GET /mod/{how}", mode: modern}
  - {name: fb, match: "GET /fb/{how}", mode: fallback}
  - {name: sh, match: "GET /sh/{how}", mode: shadow}
  - {name: dw, match: "PUT /dw/{how}", mode: dual-write}`)
	reasons := []string{"reset", "closed", "stalled", "malformed"}
	for _, rt := range []struct{ route, method, served string }{
		{"leg", http.MethodGet, "legacy"},
		{"tr", http.MethodPost, "legacy"}, // a chunked request body: Go's transport
		{"mod", http.MethodGet, "modern"},
		{"fb", http.MethodGet, "modern"},
		{"sh", http.MethodGet, "legacy"},
		{"dw", http.MethodPut, "legacy"},
	} {
		for _, how := range append(reasons, "whole") {
			var body io.Reader
			switch rt.method {
			case http.MethodPut:
				body = strings.NewReader(`{}`)
			case http.MethodPost:
				body = io.MultiReader(strings.NewReader(`{}`)) // of unknown length
			}
			req, _ := http.NewRequest(rt.method, d.URL+"/"+rt.route+"/"+how, body)
			req.Close = true // no retry of the client's own on a fresh connection
			resp, err := d.Client().Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if (err == nil) != (how == "whole") {
				t.Fatalf("%s /%s/%s: error %v", rt.method, rt.route, how, err)
			}
		}
		for _, reason := range reasons {
			testkit.Eventually(t, 10*time.Second, rt.route+" "+reason+" counted", func() bool {
				return testkit.Gather(t, d.reg).Value("strangler_backend_answers_broken_total",
					"route", rt.route, "backend", rt.served, "reason", reason) == 1
			})
		}
	}
	m := testkit.Gather(t, d.reg)
	var total float64
	for _, rt := range []string{"leg", "tr", "mod", "fb", "sh", "dw"} {
		for _, b := range []string{"legacy", "modern"} {
			for _, reason := range reasons {
				total += m.Value("strangler_backend_answers_broken_total", "route", rt, "backend", b, "reason", reason)
			}
		}
	}
	if total != 24 {
		t.Errorf("%v broken answers counted, want 24: one per cut answer, none for whole ones or shadow copies", total)
	}
}

// TestAnAnswerOfModernsThatBrokeOffIsNoRequestServed: modern's 200 that
// breaks off mid-body (an early close) is a failure of modern's for the
// guard, and no request served toward retiring legacy; its whole 200 is
// one served.
func TestAnAnswerOfModernsThatBrokeOffIsNoRequestServed(t *testing.T) {
	backend := breakingBackend(t)
	f := newFacade(t, deadURL(t), backend, "", `
  - {name: mod, match: "GET /mod/{how}", mode: modern}
`)
	for _, how := range []string{"closed", "whole"} {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/mod/"+how, nil)
		req.Close = true
		resp, err := f.Client().Do(req)
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
	stats := f.router.Current().byName["mod"].stats
	testkit.Eventually(t, 10*time.Second, "both answers counted", func() bool {
		return stats.Window(time.Now(), time.Minute).ModernAttempts == 2
	})
	if w := stats.Window(time.Now(), time.Minute); w.ModernErrors != 1 {
		t.Errorf("the guard counts %d of modern's 2 answers failed, want 1: the one that broke off", w.ModernErrors)
	}
	sink := &countSink{}
	if err := f.router.deps.Stats.Flush(context.Background(), sink, time.Now()); err != nil {
		t.Fatal(err)
	}
	if sink.requests != 2 || sink.modernServed != 1 {
		t.Errorf("the store got %d requests, %d served by modern; want 2, 1: the whole answer", sink.requests, sink.modernServed)
	}
}
