package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// TestFieldsNamedBesideCloseAreDroppedOnEveryPath: a backend's
// "Connection: close, X-Secret" makes X-Secret connection-specific, however
// the answer is read: on the direct path with a head that fits its read
// buffer or not, through the transport (a HEAD, after a 1xx or not), and
// from an https backend speaking HTTP/1.1. net/http deletes the field on
// reading "close" in it; X-Secret reached the client everywhere but on the
// direct path's small heads (found by the red team).
func TestFieldsNamedBesideCloseAreDroppedOnEveryPath(t *testing.T) {
	pad := "X-Pad: " + strings.Repeat("p", 6<<10) + "\r\n"
	answer := func(before, fields string) string {
		return before + "HTTP/1.1 200 OK\r\nX-Secret: s\r\n" + fields + "Connection: close, X-Secret\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok"
	}
	early := "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nConnection: X-Hint\r\n\r\n"
	for _, c := range []struct {
		name, method, answer string
	}{
		{"direct, a small head", http.MethodGet, answer("", "")},
		{"direct, a head larger than the read buffer", http.MethodGet, answer("", pad)},
		{"direct, a large head after a 103", http.MethodGet, answer(early, pad)},
		{"transport, a small head", http.MethodHead, answer("", "")},
		{"transport, a large head", http.MethodHead, answer("", pad)},
		{"transport, after a 103", http.MethodHead, answer(early, "")},
		{"a status line with two spaces", http.MethodGet, strings.Replace(answer("", pad), "HTTP/1.1 200", "HTTP/1.1  200", 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := New("legacy", Config{URL: mustURL(t, rawBackend(t, c.answer)), Timeout: 5 * time.Second})
			resp, err := u.RoundTrip(NewRequest(context.Background(), c.method, u.Target(mustURL(t, "/x")), http.Header{}, nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			checkConnectionSpecific(t, resp)
		})
	}
	t.Run("https, HTTP/1.1", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Secret", "s")
			w.Header().Set("X-Public", "yes")
			w.Header().Set("Connection", "close, X-Secret") // net/http sends it as it is
			io.WriteString(w, r.Proto)
		}))
		t.Cleanup(srv.Close)
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		u := New("modern", Config{URL: mustURL(t, srv.URL), Timeout: 5 * time.Second, TLS: &tls.Config{RootCAs: pool}})
		resp, err := u.RoundTrip(NewRequest(context.Background(), http.MethodGet, u.Target(mustURL(t, "/x")), http.Header{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if proto := readAll(t, resp); proto != "HTTP/1.1" {
			t.Fatalf("the backend was reached over %q, want HTTP/1.1", proto)
		}
		checkConnectionSpecific(t, resp)
	})
}

// checkConnectionSpecific fails t unless resp's header, with hop-by-hop
// fields removed as the forwarder removes them, has X-Public and not
// X-Secret.
func checkConnectionSpecific(t *testing.T, resp *http.Response) {
	t.Helper()
	RemoveHopByHop(resp.Header)
	if got := resp.Header.Get("X-Secret"); got != "" {
		t.Errorf("X-Secret, named in Connection beside close, passed on: %q", got)
	}
	if got := resp.Header.Get("X-Public"); got != "yes" {
		t.Errorf("X-Public = %q, want yes", got)
	}
}

// TestFieldsNamedBesideCloseInA1xxAnswerAreDropped: the same holds for
// each 1xx answer passed on, the second as the first, on the direct path
// and through the transport (a HEAD), where net/http deleted the field
// before the facade saw the 1xx answer.
func TestFieldsNamedBesideCloseInA1xxAnswerAreDropped(t *testing.T) {
	hint := func(n string) string {
		return "HTTP/1.1 103 Early Hints\r\nLink: </" + n + ".css>\r\nConnection: close, X-Hint-" + n + "\r\nX-Hint-" + n + ": s\r\n\r\n"
	}
	answer := hint("a") + hint("b") + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			u := New("legacy", Config{URL: mustURL(t, rawBackend(t, answer)), Timeout: 5 * time.Second})
			var got []textproto.MIMEHeader
			trace := &httptrace.ClientTrace{Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
				got = append(got, h)
				return nil
			}}
			ctx := httptrace.WithClientTrace(context.Background(), trace)
			resp, err := u.RoundTrip(NewRequest(ctx, method, u.Target(mustURL(t, "/x")), http.Header{}, nil))
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if len(got) != 2 {
				t.Fatalf("got %d 1xx answers, want 2", len(got))
			}
			for i, n := range []string{"a", "b"} {
				if got[i].Get("X-Hint-"+n) != "" || got[i].Get("Link") != "</"+n+".css>" {
					t.Errorf("1xx answer %d = %v, want its Link without X-Hint-%s", i+1, got[i], n)
				}
			}
		})
	}
}
