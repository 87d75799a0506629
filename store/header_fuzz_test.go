package store

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// servedAsIs reports whether net/http's server takes a request with
// header h (ReadRequest alone is more lenient): names are tokens, values
// hold no control characters but tabs.
func servedAsIs(h http.Header) bool {
	for name, values := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return false
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// FuzzHeaderEncoding checks that a journaled write's headers come back
// exactly as the primary saw them: any header block net/http accepts from
// a client, encoded for the journal and decoded for a replay, is the same
// header, every name, value and order of values.
func FuzzHeaderEncoding(f *testing.F) {
	for _, seed := range []string{
		"Content-Type: application/json",
		"X-A: 1\r\nX-A: 2\r\nx-a: 3",
		"X-Empty:",
		"X-Colon: a:b: c",
		"X-Spaces: a  b\t c",
		"X-Utf8: é😀\r\nX-Latin1: \xe9\xff",
		"Cookie: a=1; b=2\r\nAuthorization: Bearer x",
		"X-Tab:\tleading tab",
		"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"X-Strange_Name: v",
		" x\r\n:\t a\rb\n \x00bad name: v\x00X: \x00X:  \n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, block string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("PUT /p HTTP/1.1\r\nHost: h\r\n" + block + "\r\n\r\n")))
		// The journal's form is Header.Write's, byte for byte, for any
		// header, even one no server would take (names and values cut
		// from the block as they come): rows journaled before
		// encodeHeader wrote its own are read by the same decodeHeader.
		raw := http.Header{}
		for pair := range strings.SplitSeq(block, "\x00") {
			name, value, _ := strings.Cut(pair, ":")
			raw[name] = append(raw[name], value)
		}
		if err == nil {
			raw = req.Header
		}
		var want bytes.Buffer
		raw.Write(&want)
		if got := encodeHeader(raw); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("encoded %q as %q, Header.Write writes %q", raw, got, want.Bytes())
		}
		if err != nil || !servedAsIs(req.Header) {
			return // not a header the facade's server would take
		}
		got, err := decodeHeader(encodeHeader(req.Header))
		if err != nil {
			t.Fatalf("decoding the encoding of %q: %v", req.Header, err)
		}
		if !reflect.DeepEqual(got, req.Header) {
			t.Fatalf("got back %q, want %q", got, req.Header)
		}
	})
}
