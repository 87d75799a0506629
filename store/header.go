package store

import (
	"bytes"
	"fmt"
	"net/http"
)

// encodeHeader stores h as HTTP/1.1 header lines ("Name: value\r\n"), the
// form it arrived in. Unlike JSON, which replaces invalid UTF-8, this keeps
// every byte of a value, so a replayed write carries exactly the headers
// the primary saw.
func encodeHeader(h http.Header) []byte {
	var b bytes.Buffer
	// Header.Write sorts names, keeps the order of a name's values, and
	// cannot fail on a bytes.Buffer.
	h.Write(&b)
	// Never nil: the column is NOT NULL, and a nil slice is SQL NULL.
	return append([]byte{}, b.Bytes()...)
}

// decodeHeader is the inverse of encodeHeader. Names are kept as stored,
// not canonicalised again. An error names a line by its number, never
// its bytes: a header of a journaled write may be patient data.
func decodeHeader(b []byte) (http.Header, error) {
	h := http.Header{}
	for n := 1; len(b) > 0; n++ {
		line, rest, ok := bytes.Cut(b, []byte("\r\n"))
		if !ok {
			return nil, fmt.Errorf("header line %d is not terminated", n)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("header line %d has no colon", n)
		}
		h[string(name)] = append(h[string(name)], string(bytes.TrimPrefix(value, []byte(" "))))
		b = rest
	}
	return h, nil
}
