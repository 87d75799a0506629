package main

import (
	"bytes"
	"errors"
	"io"
)

// respReader reads HTTP/1.x responses off one connection through a single
// reused buffer. It parses just enough to find where each response ends
// (status line, Content-Length, chunked framing, Connection) and discards
// bodies without copying them anywhere, so reading a response allocates
// nothing. It is the load generator's whole HTTP client.
type respReader struct {
	rd   io.Reader
	buf  []byte
	r, w int // unread bytes are buf[r:w]
}

var (
	errHeadTooLarge = errors.New("response head line longer than the read buffer")
	errMalformed    = errors.New("malformed HTTP response")
	crlf            = []byte("\r\n")
)

func newRespReader(rd io.Reader, size int) *respReader {
	return &respReader{rd: rd, buf: make([]byte, size)}
}

// reset points the reader at a new connection, dropping buffered bytes.
func (p *respReader) reset(rd io.Reader) { p.rd, p.r, p.w = rd, 0, 0 }

// next reads one final response, skipping 1xx interim responses, and
// returns its status and whether the connection may carry another request.
func (p *respReader) next() (status int, keepAlive bool, err error) {
	for {
		status, keepAlive, err = p.one()
		if err != nil || status >= 200 || status == 101 {
			return status, keepAlive, err
		}
	}
}

// one reads a single response, interim or final.
func (p *respReader) one() (int, bool, error) {
	line, err := p.line()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK": the reason phrase may be empty, even absent.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, false, errMalformed
	}
	status, ok := parseDecimal(line[9:12])
	if !ok || status < 100 {
		return 0, false, errMalformed
	}
	http10 := line[7] == '0'
	keepAlive := !http10
	length, chunked := int64(-1), false
	for {
		line, err := p.line()
		if err != nil {
			return 0, false, noEOF(err)
		}
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return 0, false, errMalformed
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseDecimal(value)
			if !ok {
				return 0, false, errMalformed
			}
			length = int64(n)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = hasToken(value, "chunked")
		case bytes.EqualFold(name, []byte("Connection")):
			if hasToken(value, "close") {
				keepAlive = false
			} else if http10 && hasToken(value, "keep-alive") {
				keepAlive = true
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		// No body (the generator sends no HEAD requests).
	case chunked:
		err = p.discardChunked()
	case length >= 0:
		err = p.discard(length)
	default:
		// The body runs to the end of the connection.
		keepAlive = false
		err = p.discardToEOF()
	}
	return status, keepAlive, noEOF(err)
}

// fill reads more bytes into the buffer, moving unread bytes to its front.
func (p *respReader) fill() error {
	if p.r > 0 {
		p.w = copy(p.buf, p.buf[p.r:p.w])
		p.r = 0
	}
	if p.w == len(p.buf) {
		return errHeadTooLarge
	}
	for {
		n, err := p.rd.Read(p.buf[p.w:])
		p.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// line returns the next CRLF-terminated line without its CRLF. The slice
// is only valid until the next call.
func (p *respReader) line() ([]byte, error) {
	for {
		if i := bytes.Index(p.buf[p.r:p.w], crlf); i >= 0 {
			line := p.buf[p.r : p.r+i]
			p.r += i + 2
			return line, nil
		}
		if err := p.fill(); err != nil {
			return nil, err
		}
	}
}

// discard skips n body bytes.
func (p *respReader) discard(n int64) error {
	for n > 0 {
		if p.r == p.w {
			if err := p.fill(); err != nil {
				return err
			}
		}
		k := min(n, int64(p.w-p.r))
		p.r += int(k)
		n -= k
	}
	return nil
}

// discardChunked skips a chunked body and its trailer section.
func (p *respReader) discardChunked() error {
	for {
		line, err := p.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, ok := parseHex(bytes.TrimRight(line, " \t"))
		if !ok {
			return errMalformed
		}
		if size == 0 {
			for { // trailer fields, up to the empty line
				line, err := p.line()
				if err != nil || len(line) == 0 {
					return err
				}
			}
		}
		if err := p.discard(int64(size)); err != nil {
			return err
		}
		if line, err := p.line(); err != nil || len(line) != 0 {
			return cmpErr(err, errMalformed)
		}
	}
}

func (p *respReader) discardToEOF() error {
	for {
		p.r, p.w = 0, 0
		if err := p.fill(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// noEOF turns an end of stream inside a response into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// hasToken reports whether the comma-separated list v contains tok,
// ignoring case and whitespace.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.Trim(item, " \t"), []byte(tok)) {
			return true
		}
	}
	return false
}

// parseDecimal parses a non-empty run of decimal digits that fits in 62 bits.
func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseHex parses a chunk size: a non-empty run of hex digits below 2^60.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}
