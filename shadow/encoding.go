package shadow

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"
)

// The facade passes Accept-Encoding through and responses back as the
// backend sent them, so two backends may compress the same JSON
// differently, or one may not compress it at all. The comparison, and the
// search for a dual write's new id, undo gzip and deflate; other codings
// are read as they are.

var (
	errUndecodable  = errors.New("undecodable Content-Encoding")
	errBodyTooLarge = errors.New("body decodes to more than max_body")
)

// DecodeBody returns body as its client reads it: its Content-Encoding
// undone and a UTF-8 byte order mark before it skipped (a PHP file saved
// with one writes it before every answer; browsers, .NET and Java skip
// it, and RFC 8259 section 8.1 lets a JSON parser ignore it), or an
// error if it decodes to more than limit bytes. The comparison, schema
// learning and a dual write's search for the primary's id all read an
// answer through it.
func DecodeBody(h http.Header, body []byte, limit int64) ([]byte, error) {
	out, err := decodeBody(h, body, limit)
	return bytes.TrimPrefix(out, utf8BOM), err
}

func decodeBody(h http.Header, body []byte, limit int64) ([]byte, error) {
	ce := h["Content-Encoding"]
	if len(ce) != 1 || len(body) == 0 {
		return body, nil
	}
	var r io.Reader
	var err error
	switch strings.ToLower(strings.TrimSpace(ce[0])) {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		// RFC 9110 deflate is zlib-wrapped, but some servers send it raw.
		r, err = zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			r, err = flate.NewReader(bytes.NewReader(body)), nil
		}
	default:
		return body, nil
	}
	if err != nil {
		return body, errUndecodable
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	switch {
	case err != nil:
		return body, errUndecodable
	case int64(len(out)) > limit:
		return nil, errBodyTooLarge
	}
	return out, nil
}

// utf8BOM is the UTF-8 byte order mark.
var utf8BOM = []byte("\uFEFF")
