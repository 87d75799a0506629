package upstream

import (
	"bytes"
	"io"
	"net/http"
	"strings"
)

// plainResponse is the response whose head is head, as http.ReadResponse
// reads it, field for field, when head has the plain shape most answers
// have; nil for any other, which ReadResponse then reads. head is a
// response head as bufferedHead gives it, the empty line that ends it
// included; req is the request it answers. Plain is: a status line
// "HTTP/1.1 NNN reason" with a status from 200 to 599 other than 204 and
// 304, every line ending in CRLF, field names spelled canonically and
// values of visible ASCII, spaces and tabs, one Content-Length of digits
// alone, none of the fields net/http reads more into (Transfer-Encoding,
// Connection, Trailer, Pragma), and no folded line; req not a HEAD.
// ReadResponse spends about 8,500 instructions and 8 allocations on a
// plain head of three fields; this one allocation (the head's bytes as
// one string, whose parts the names and values are) and the map.
//
// The body, of ContentLength bytes, is for the caller to read from where
// head ends (see lengthBody): Body is nil.
func plainResponse(head []byte, req *http.Request) *http.Response {
	if req.Method == http.MethodHead || !bytes.HasPrefix(head, []byte("HTTP/1.1 ")) {
		return nil
	}
	s := string(head)
	line, s, ok := strings.Cut(s, "\r\n")
	if !ok || strings.IndexByte(line, '\n') >= 0 || len(line) < 12 || len(line) > 12 && line[12] != ' ' {
		return nil
	}
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return nil
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified || !visible(line[12:]) {
		return nil
	}
	fields := strings.Count(s, "\n") - 1
	resp := &http.Response{Status: line[9:], StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, fields), ContentLength: -1, Request: req}
	// Each field's first value is a slice of one of these, of its own
	// capacity, as net/http makes them: a later value appended to a field
	// cannot overwrite the next field's.
	values := make([]string, fields)
	for {
		line, s, ok = strings.Cut(s, "\r\n")
		if !ok || strings.IndexByte(line, '\n') >= 0 {
			return nil
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !token(name) || !canonicalName(name) || !visible(value) {
			return nil
		}
		value = trimBlanks(value)
		switch name {
		case "Transfer-Encoding", "Connection", "Trailer", "Pragma":
			return nil
		case "Content-Length":
			if resp.ContentLength >= 0 || value == "" || len(value) > 18 {
				return nil
			}
			n := int64(0)
			for _, c := range []byte(value) {
				if c < '0' || c > '9' {
					return nil
				}
				n = n*10 + int64(c-'0')
			}
			resp.ContentLength = n
		}
		if vs, ok := resp.Header[name]; ok {
			resp.Header[name] = append(vs, value)
		} else {
			values[0] = value
			resp.Header[name], values = values[:1:1], values[1:]
		}
	}
	if s != "" || resp.ContentLength < 0 {
		return nil
	}
	return resp
}

// visible reports whether s holds visible ASCII, spaces and tabs alone:
// bytes net/http takes in a field value as they are.
func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c > '~') && c != '\t' {
			return false
		}
	}
	return true
}

// trimBlanks is s without the spaces and tabs at either end, as
// textproto trims a field's value.
func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// canonicalName reports whether name, a token, is spelled as
// textproto.CanonicalMIMEHeaderKey spells it: upper case at the start
// and after each hyphen, lower case elsewhere.
func canonicalName(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// lengthBody reads a body of n bytes from r as net/http's reader of a
// body of known length does: its last bytes come with io.EOF, a
// connection that ends before them gives io.ErrUnexpectedEOF, and every
// read after either gives io.EOF.
type lengthBody struct {
	r   io.Reader
	n   int64
	eof bool
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.eof || b.n <= 0 {
		b.eof = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		if b.n > 0 {
			err = io.ErrUnexpectedEOF
		}
	case err == nil && n > 0 && b.n == 0:
		b.eof = true
		err = io.EOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
