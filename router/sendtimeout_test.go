package router

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// writeLog is a ResponseWriter that records what the facade does to the
// client's connection: "deadline" for a write deadline set, "head" for
// WriteHeader, "write" and "flush".
type writeLog struct {
	header http.Header
	log    []string
}

func (w *writeLog) Header() http.Header { return w.header }
func (w *writeLog) WriteHeader(int)     { w.log = append(w.log, "head") }
func (w *writeLog) Write(p []byte) (int, error) {
	w.log = append(w.log, "write")
	return len(p), nil
}
func (w *writeLog) FlushError() error {
	w.log = append(w.log, "flush")
	return nil
}
func (w *writeLog) SetWriteDeadline(time.Time) error {
	w.log = append(w.log, "deadline")
	return nil
}

// TestEachWriteToTheClientIsArmedOnce: body_timeout bounds each write to
// the client (send_timeout), and is armed once for each: before the
// body's first bytes, which carry the head, before a flush that sends
// the head alone, as the exchange ends for a head sent then (a HEAD's
// answer, net/http writing it once the handler returned), and before a
// 1xx head, which net/http writes at once. It was armed
// when WriteHeader only buffered the head, and again for the first
// write: two changes of the runtime's timer an exchange where one does.
func TestEachWriteToTheClientIsArmedOnce(t *testing.T) {
	for _, tc := range []struct {
		name, method, answer string
		want                 []string
	}{
		{"a body of known length", http.MethodGet, rawJSONAnswer("200 OK", `{"id":1}`), []string{"head", "deadline", "write"}},
		{"a chunked body", http.MethodGet, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
			[]string{"head", "deadline", "flush", "deadline", "write", "flush"}},
		{"no body", http.MethodHead, rawJSONAnswer("200 OK", `{"id":1}`), []string{"head", "deadline"}},
		{"an early hint, then a body", http.MethodGet, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + rawJSONAnswer("200 OK", `{"id":1}`),
			[]string{"deadline", "head", "head", "deadline", "write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := rawBackend(t, tc.answer)
			_, r := benchRouter(t, backend, backend, "mode: legacy")
			w := &writeLog{header: http.Header{}}
			req := &http.Request{Method: tc.method, RequestURI: "/bench", URL: &url.URL{Path: "/bench"},
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Host: "facade", RemoteAddr: "127.0.0.1:1234"}
			r.ServeHTTP(w, req)
			if !slices.Equal(w.log, tc.want) {
				t.Errorf("the client's connection saw %v, want %v", w.log, tc.want)
			}
		})
	}
}
