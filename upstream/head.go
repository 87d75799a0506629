package upstream

import (
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
)

// appendHead appends the head of req, a GET or HEAD without a body, as
// req.Write writes it, byte for byte: the request line, Host, User-Agent,
// then the other fields sorted by name, each value as it is. It is false
// for anything else, and for a request req.Write would change or refuse
// (a host it would convert, clean or drop, a control byte in the target,
// a field name it would drop, a value it would fold or trim) or report to
// a trace: req.Write then writes it. req.Write spends 10,000 instructions
// on a proxied GET's head (it formats with fmt and sorts through a pool),
// more than the direct path's whole exchange besides.
func appendHead(b []byte, req *http.Request) ([]byte, bool) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead || req.Body != nil && req.Body != http.NoBody ||
		req.ContentLength != 0 {
		return b, false
	}
	return appendHeadOf(b, req, -1)
}

// appendHeldHead is appendHead for a POST, PUT, PATCH or DELETE whose
// body, of req.ContentLength bytes (more than none), the caller holds
// whole in memory (whole) and writes after the head (writeHeld), as
// req.Write writes it:
// with its Content-Length field after User-Agent. req.Write spent about
// 9,000 instructions and 8 allocations on the head of a dual write's
// request, which goes out twice (to the primary, and its delivery to the
// secondary).
func appendHeldHead(b []byte, req *http.Request, whole bool) ([]byte, bool) {
	if !whole {
		return b, false
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return b, false
	}
	if req.ContentLength <= 0 {
		return b, false
	}
	return appendHeadOf(b, req, req.ContentLength)
}

// appendHeadOf is the head of req, with a Content-Length field of length
// unless it is negative.
func appendHeadOf(b []byte, req *http.Request, length int64) ([]byte, bool) {
	if req.Close || len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.URL == nil {
		return b, false
	}
	if t := httptrace.ContextClientTrace(req.Context()); t != nil && (t.WroteHeaderField != nil || t.WroteHeaders != nil || t.WroteRequest != nil) {
		return b, false
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	target := req.URL.RequestURI()
	if !plainHost(host) {
		return b, false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < ' ' || c == 0x7f {
			return b, false
		}
	}
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	// Absent, the transport's own; present but empty, none.
	ua := "Go-http-client/1.1"
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		if !plainValue(ua) {
			return b, false
		}
		b = append(b, "User-Agent: "...)
		b = append(b, ua...)
		b = append(b, "\r\n"...)
	}
	if length >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, "\r\n"...)
	}
	// A proxied request has a dozen fields or so: they sort in a buffer
	// on the stack.
	var buf [32]field
	fields := buf[:0]
	for name, values := range req.Header {
		switch name {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		fields = append(fields, field{name, values})
	}
	if len(fields) <= maxInsertionSort {
		// Sorted in place: slices.SortFunc does the same for so few, but
		// through calls of a comparison function, twice the cost.
		for i := 1; i < len(fields); i++ {
			for j := i; j > 0 && fields[j].name < fields[j-1].name; j-- {
				fields[j], fields[j-1] = fields[j-1], fields[j]
			}
		}
	} else {
		slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	}
	for _, f := range fields {
		if !token(f.name) {
			return b, false
		}
		for _, v := range f.values {
			if !plainValue(v) {
				return b, false
			}
			b = append(b, f.name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...), true
}

// maxInsertionSort is the most fields appendHead sorts by insertion,
// whose comparisons grow with the square of their number: a client's
// header of thousands of fields goes through slices.SortFunc.
const maxInsertionSort = 12

// field is a header field, for appendHead to sort.
type field struct {
	name   string
	values []string
}

// plainHost reports whether req.Write sends host as it is: ASCII letters,
// digits and the punctuation of names, IPv4 and IPv6 addresses and ports,
// but no zone (%), which it removes.
func plainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// plainValue reports whether req.Write sends v as it is: no CR or LF,
// which it turns into spaces, and no space or tab at either end, which it
// trims.
func plainValue(v string) bool {
	if v == "" {
		return true
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return false
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return false
	}
	return strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0
}

// tchar marks the bytes of a token (RFC 9110 section 5.6.2).
var tchar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// token reports whether name is a field name req.Write sends (RFC 9110
// section 5.1); it leaves out any other.
func token(name string) bool {
	for i := 0; i < len(name); i++ {
		if !tchar[name[i]] {
			return false
		}
	}
	return name != ""
}
