package upstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
)

// proxiedGET is a GET as the facade forwards it.
func proxiedGET() *http.Request {
	return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: "legacy:8080", Path: "/v1/patients/42", RawQuery: "full=1"},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "",
		Header: http.Header{
			"Accept":            {"application/json"},
			"User-Agent":        {""},
			"X-Forwarded-For":   {"127.0.0.1"},
			"X-Forwarded-Host":  {"facade.example"},
			"X-Forwarded-Proto": {"http"},
			"X-Request-Id":      {"c530bd45-8f0e-4c3b-9a1e-2f9d7e4b6a10"},
			"Traceparent":       {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		}}
}

// heads returns appendHead's head of req, whether it wrote one, and
// req.Write's.
func heads(t *testing.T, req *http.Request) (got string, plain bool, want string) {
	t.Helper()
	b, plain := appendHead(nil, req)
	var w bytes.Buffer
	if err := req.Write(&w); err != nil {
		want = "error: " + err.Error()
	} else {
		want = w.String()
	}
	return string(b), plain, want
}

func TestAProxiedGETsHeadIsWrittenAsRequestWriteWritesIt(t *testing.T) {
	got, plain, want := heads(t, proxiedGET())
	if !plain {
		t.Fatal("a proxied GET goes to req.Write, not the short way")
	}
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEveryHeadIsWrittenAsRequestWriteWritesIt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *http.Request)
		plain  bool // appendHead writes it
	}{
		{"a HEAD", func(r *http.Request) { r.Method = http.MethodHead }, true},
		{"the Host field rather than the URL's host", func(r *http.Request) { r.Host = "other.example:81" }, true},
		{"an IPv6 host", func(r *http.Request) { r.URL.Host = "[::1]:8080" }, true},
		{"no host at all", func(r *http.Request) { r.URL.Host = "" }, true},
		{"no User-Agent field: the transport's own", func(r *http.Request) { delete(r.Header, "User-Agent") }, true},
		{"a client's User-Agent, the first of two", func(r *http.Request) { r.Header["User-Agent"] = []string{"curl/8", "x"} }, true},
		{"a User-Agent field without values", func(r *http.Request) { r.Header["User-Agent"] = []string{} }, true},
		{"a field of several values and an empty one", func(r *http.Request) {
			r.Header["Accept"] = []string{"a", "", "b\tc"}
		}, true},
		{"a field without values", func(r *http.Request) { r.Header["X-Empty"] = nil }, true},
		{"excluded fields in the map", func(r *http.Request) {
			for _, k := range []string{"Host", "Content-Length", "Transfer-Encoding", "Trailer"} {
				r.Header[k] = []string{"x"}
			}
		}, true},
		{"a name net/http would not canonicalise", func(r *http.Request) { r.Header["x-lower"] = []string{"1"} }, true},
		{"a lower-case user-agent, which is not the User-Agent field", func(r *http.Request) {
			delete(r.Header, "User-Agent")
			r.Header["user-agent"] = []string{"mixed"}
		}, true},
		{"many fields", func(r *http.Request) {
			for i := range 40 {
				r.Header[fmt.Sprintf("X-F%02d", i)] = []string{fmt.Sprint(i)}
			}
		}, true},
		{"an escaped path and an opaque URL", func(r *http.Request) { r.URL = &url.URL{Opaque: "/a%2Fb", RawQuery: "q"} }, true},
		{"an empty path", func(r *http.Request) { r.URL.Path, r.URL.RawQuery = "", "" }, true},
		{"a non-ASCII host", func(r *http.Request) { r.Host = "bücher.example" }, false},
		{"a host with a zone", func(r *http.Request) { r.Host = "[fe80::1%25eth0]:80" }, false},
		{"a host with a space", func(r *http.Request) { r.Host = "a b" }, false},
		{"a control byte in the path, which the URL escapes", func(r *http.Request) { r.URL.Path = "/a\x00b" }, true},
		{"a control byte in an opaque target", func(r *http.Request) { r.URL = &url.URL{Opaque: "/a\x00b"} }, false},
		{"DEL in the query", func(r *http.Request) { r.URL.RawQuery = "a=\x7f" }, false},
		{"a value with a line feed", func(r *http.Request) { r.Header["Accept"] = []string{"a\nb"} }, false},
		{"a value with a carriage return", func(r *http.Request) { r.Header["Accept"] = []string{"a\rb"} }, false},
		{"a value with spaces around it", func(r *http.Request) { r.Header["Accept"] = []string{" a "} }, false},
		{"a value ending in a tab", func(r *http.Request) { r.Header["Accept"] = []string{"a\t"} }, false},
		{"a User-Agent with a line feed", func(r *http.Request) { r.Header["User-Agent"] = []string{"a\nb"} }, false},
		{"an invalid field name", func(r *http.Request) { r.Header["Bad Name"] = []string{"x"} }, false},
		{"an empty field name", func(r *http.Request) { r.Header[""] = []string{"x"} }, false},
		{"a POST", func(r *http.Request) { r.Method = http.MethodPost }, false},
		{"an OPTIONS, which gets Content-Length: 0", func(r *http.Request) { r.Method = http.MethodOptions }, false},
		{"no method", func(r *http.Request) { r.Method = "" }, false},
		{"a body", func(r *http.Request) { r.Body, r.ContentLength = io.NopCloser(strings.NewReader("x")), 1 }, false},
		{"Connection: close", func(r *http.Request) { r.Close = true }, false},
		{"a trailer", func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} }, false},
		{"a trace that wants the fields written", func(r *http.Request) {
			*r = *r.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{WroteHeaderField: func(string, []string) {}}))
		}, false},
		{"a trace that only takes 1xx answers", func(r *http.Request) {
			*r = *r.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil }}))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := proxiedGET()
			tc.change(r)
			got, plain, want := heads(t, r)
			if plain != tc.plain {
				t.Fatalf("written the short way: %v, want %v", plain, tc.plain)
			}
			if plain && got != want {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func FuzzHeadsAreWrittenAsRequestWriteWritesThem(f *testing.F) {
	for _, s := range []string{"", "x", " a", "a\t", "a\nb", "\x00", "\x7f", "é", "[::1]", "a b", "%", "Bad Name", "user-agent"} {
		f.Add(s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, host, path, name, value string) {
		r := proxiedGET()
		r.Host = host
		r.URL.Path = path
		r.Header[name] = []string{value}
		got, plain, want := heads(t, r)
		if plain && got != want {
			t.Errorf("got\n%q\nwant\n%q", got, want)
		}
	})
}

// BenchmarkHead is a proxied GET's head, the short way and req.Write's.
func BenchmarkHead(b *testing.B) {
	r := proxiedGET()
	buf := make([]byte, 0, 4096)
	b.Run("appendHead", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			appendHead(buf[:0], r)
		}
	})
	b.Run("Request.Write", func(b *testing.B) {
		w := bytes.NewBuffer(buf)
		b.ReportAllocs()
		for b.Loop() {
			w.Reset()
			r.Write(w)
		}
	})
}

// TestAHeldBodysHeadIsWrittenAsRequestWriteWritesIt: a request whose body
// the facade holds in memory (a dual write's, to the primary and to the
// secondary) is written the short way, head and body byte for byte as
// req.Write writes them: Content-Length after User-Agent, then the other
// fields sorted, then the body.
func TestAHeldBodysHeadIsWrittenAsRequestWriteWritesIt(t *testing.T) {
	body := []byte(`{"first_name":"Test","last_name":"Person"}`)
	for _, tc := range []struct {
		name   string
		change func(r *http.Request)
		plain  bool // appendHeldHead writes it
	}{
		{"a POST", func(r *http.Request) {}, true},
		{"a PUT", func(r *http.Request) { r.Method = http.MethodPut }, true},
		{"a PATCH", func(r *http.Request) { r.Method = http.MethodPatch }, true},
		{"a DELETE with a body", func(r *http.Request) { r.Method = http.MethodDelete }, true},
		{"no User-Agent field: the transport's own", func(r *http.Request) { delete(r.Header, "User-Agent") }, true},
		{"a Content-Length field in the map, which req.Write leaves out", func(r *http.Request) {
			r.Header["Content-Length"] = []string{"7"}
		}, true},
		{"an Expect field", func(r *http.Request) { r.Header["Expect"] = []string{"100-continue"} }, true},
		{"a GET with a body", func(r *http.Request) { r.Method = http.MethodGet }, false},
		{"an unusual method", func(r *http.Request) { r.Method = "REPORT" }, false},
		{"Connection: close", func(r *http.Request) { r.Close = true }, false},
		{"a value with a line feed", func(r *http.Request) { r.Header["Accept"] = []string{"a\nb"} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := proxiedGET()
			r.Method = http.MethodPost
			r.Header["Content-Type"] = []string{"application/json"}
			r.Body, r.ContentLength = Held(body), int64(len(body))
			tc.change(r)
			head, plain := appendHeldHead(nil, r, true)
			if plain != tc.plain {
				t.Fatalf("written the short way: %v, want %v", plain, tc.plain)
			}
			if !plain {
				return
			}
			var got bytes.Buffer
			bw := bufio.NewWriterSize(&got, 64) // smaller than head and body: written in pieces
			if err := writeHeld(bw, head, r.Body, r.ContentLength); err != nil {
				t.Fatal(err)
			}
			if err := bw.Flush(); err != nil {
				t.Fatal(err)
			}
			r.Body = Held(body)
			var want bytes.Buffer
			if err := r.Write(&want); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("got\n%q\nwant\n%q", got.String(), want.String())
			}
		})
	}
	r := proxiedGET()
	r.Method, r.Body, r.ContentLength = http.MethodPost, Held(body), int64(len(body))
	if _, plain := appendHeldHead(nil, r, false); plain {
		t.Error("a body not held whole is written the short way")
	}
}
