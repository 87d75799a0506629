// Package canonical owns the one form of a request that the facade decides
// on and forwards: the canonical path, the methods and header names it lets
// through, and the refusals for everything else. It is pure: no server, no
// configuration; the router applies it once per request, at the edge.
//
// The path rules follow RFC 3986 section 6.2.2 and Envoy's normalize_path,
// merge_slashes and path_with_escaped_slashes_action (REJECT_REQUEST): a
// request is routed on the path a normalising backend would see, and that
// exact path is what the backend receives.
package canonical

import (
	"net/http"
	"net/url"
	"strings"
)

// Refusal is the answer to a request the facade will not forward: the
// status and the short message of the client's JSON error body.
type Refusal struct {
	Status int
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

func badRequest(msg string) *Refusal { return &Refusal{Status: http.StatusBadRequest, Msg: msg} }

// The path refusals.
var (
	errNotAPath     = badRequest("the request-target is not a path")
	errAboveRoot    = badRequest("the path climbs above the root with ..")
	errBackslash    = badRequest(`the path contains a backslash (\ or %5C)`)
	errControl      = badRequest("the path contains a control character (such as %00)")
	errBadEscape    = badRequest("the path contains an invalid percent-encoding")
	errParams       = badRequest("the path contains a path parameter (; or %3B), which backends read differently")
	errDotInSlash   = badRequest("the path contains an encoded slash (%2F) beside a dot segment")
	errDoubleEscape = badRequest("the path contains a double percent-encoding (%25 and two hex digits, such as %252F), which a backend decoding twice reads as another path")
	errOverlong     = badRequest("the path contains an overlong UTF-8 encoding (such as %C0%AF), which lenient decoders read as an ASCII character")
	ErrEncodedSlash = badRequest("the path contains an encoded slash (%2F), which this route does not accept")
)

// Path is a request path in canonical form.
type Path struct {
	// Escaped is the canonical path, percent-encoded: what routes match,
	// and exactly what a backend receives after its base path. A trailing
	// slash is kept as the client sent it.
	Escaped string
	// EncodedSlash reports a %2F in it, which only a route with
	// allow_encoded_slash may take: every other route refuses the request.
	EncodedSlash bool
}

// Decoded is the path with its percent-encodings decoded, as url.URL.Path
// holds it.
func (p Path) Decoded() string {
	if strings.IndexByte(p.Escaped, '%') < 0 {
		return p.Escaped
	}
	d, _ := url.PathUnescape(p.Escaped) // canonical paths are valid escapes
	return d
}

// RouteKey is canonical path p without its trailing slash: what routes are
// matched against and dual-write resources are named by, so that POST
// /records/ is POST /records. The root stays "/".
func RouteKey(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

// Canonicalize returns the canonical form of p, the path of a request-target
// as the client sent it (percent-encodings intact, without the query):
//   - percent-encoded unreserved characters decoded (%72 is r, %2e is .),
//     every other percent-encoding in upper-case hex, and bytes that may
//     not appear raw in a path (non-ASCII, space, ", <, >, |, …) encoded;
//   - "." and ".." segments removed (RFC 3986 section 5.2.4), runs of "/"
//     merged;
//   - refused (a *Refusal, 400): ".." above the root, a backslash raw or as
//     %5C, control characters raw or encoded (%00), an invalid
//     percent-encoding, ";" raw or as %3B (path parameters, which Tomcat,
//     Jetty and Spring strip, Spring even after decoding: /records;x and
//     /records%3Bx are /records to them, and ..;/ is .., while routes
//     would see another path; Spring's StrictHttpFirewall refuses both),
//     and %2F beside a dot segment (..%2F, which a
//     backend decoding %2F reads as ..). Any other %2F is kept encoded and
//     reported in EncodedSlash.
//
// An already canonical path is returned as it is, without allocating.
func Canonicalize(p string) (Path, error) {
	if p == "" || p[0] != '/' {
		return Path{}, errNotAPath
	}
	if slash, ok := isCanonical(p); ok {
		return Path{Escaped: p, EncodedSlash: slash}, nil
	}
	return rebuild(p)
}

// isCanonical reports whether p is canonical, and whether it holds %2F.
// Anything unusual, refusals included, is left to rebuild, the one place
// that decides them.
func isCanonical(p string) (encodedSlash, ok bool) {
	start := 1          // of the current segment
	slashInSeg := false // the segment holds %2F
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[start:i]
			switch {
			case seg == "" && i < len(p), seg == ".", seg == "..":
				return false, false
			case (slashInSeg || seg != "" && seg[0] == '.') && checkSegment(seg) != nil:
				return false, false
			}
			start, slashInSeg = i+1, false
			continue
		}
		c := p[i]
		if c != '%' {
			if !rawOK(c) || c == ';' {
				return false, false
			}
			continue
		}
		if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) {
			return false, false
		}
		v := unhex(p[i+1])<<4 | unhex(p[i+2])
		switch {
		case v == '/':
			encodedSlash, slashInSeg = true, true
		case unreserved(v), isControl(v), v == '\\', v == ';', v == '%', v == 0xC0, v == 0xC1, v == 0xE0, v == 0xF0:
			// Some of them are refusals, which rebuild decides.
			return false, false
		}
		i += 2
	}
	return encodedSlash, true
}

// rebuild canonicalizes p, which starts with "/", into a new string.
func rebuild(p string) (Path, error) {
	out := make([]byte, 0, len(p)+8)
	// kept holds where each segment kept in out starts (its "/"), so that
	// ".." can drop the last one.
	var keptBuf [16]int
	kept := keptBuf[:0]
	var encodedSlash, trailing bool
	rest := p[1:]
	for more := true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		start := len(out)
		out = append(out, '/')
		var err error
		var slash bool
		if out, slash, err = appendSegment(out, seg); err != nil {
			return Path{}, err
		}
		switch norm := string(out[start+1:]); norm {
		case "", ".":
			// An empty segment is merged with its neighbour; a last one,
			// like a last ".", leaves the path ending in a slash.
			out = out[:start]
			trailing = true
		case "..":
			if len(kept) == 0 {
				return Path{}, errAboveRoot
			}
			out = out[:kept[len(kept)-1]]
			kept = kept[:len(kept)-1]
			trailing = true
		default:
			if err := checkSegment(norm); err != nil {
				return Path{}, err
			}
			kept = append(kept, start)
			encodedSlash = encodedSlash || slash
			trailing = false
		}
	}
	if trailing || len(out) == 0 {
		out = append(out, '/')
	}
	return Path{Escaped: string(out), EncodedSlash: encodedSlash}, nil
}

// appendSegment appends seg to out in canonical form and reports whether
// it holds %2F.
func appendSegment(out []byte, seg string) ([]byte, bool, error) {
	slash := false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '%':
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return nil, false, errBadEscape
			}
			v := unhex(seg[i+1])<<4 | unhex(seg[i+2])
			i += 2
			switch {
			case isControl(v):
				return nil, false, errControl
			case v == '\\':
				return nil, false, errBackslash
			case v == ';':
				return nil, false, errParams
			case unreserved(v):
				out = append(out, v)
				continue
			case v == '/':
				slash = true
			}
			out = append(out, '%', upperHex[v>>4], upperHex[v&15])
		case isControl(c):
			return nil, false, errControl
		case c == '\\':
			return nil, false, errBackslash
		case c == ';':
			return nil, false, errParams
		case rawOK(c):
			out = append(out, c)
		default:
			out = append(out, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return out, slash, nil
}

// checkSegment refuses a canonical segment that backends may read as
// another path than routes do: ".." between %2F (which a backend decoding
// %2F splits on), a double percent-encoding (%252F is %2F once decoded,
// / twice), and an overlong UTF-8 encoding (%C0%AF is / to decoders that
// do not check for them, as IIS and old Java ones did).
func checkSegment(seg string) error {
	for i := 0; i < len(seg); i++ {
		switch {
		case seg[i] != '%':
		case strings.HasPrefix(seg[i:], "%25") && i+4 < len(seg) && isHex(seg[i+3]) && isHex(seg[i+4]):
			return errDoubleEscape
		case overlongAt(seg, i):
			return errOverlong
		}
	}
	whole := true
	for {
		piece, rest, more := strings.Cut(seg, "%2F")
		whole = whole && !more
		if (piece == "." || piece == "..") && !whole {
			return errDotInSlash
		}
		if !more {
			return nil
		}
		seg = rest
	}
}

// overlongAt reports an overlong UTF-8 sequence percent-encoded at
// seg[i:] (canonical: upper-case hex): a lead byte C0 or C1 before a
// continuation byte, E0 before 80 to 9F, F0 before 80 to 8F (RFC 3629
// section 3). A lone C0 or C1 stays data, as Latin-1's À or Á.
func overlongAt(seg string, i int) bool {
	if i+5 >= len(seg) || seg[i+3] != '%' {
		return false
	}
	lead, next := seg[i+1:i+3], seg[i+4]
	switch lead {
	case "C0", "C1":
		return '8' <= next && next <= 'B'
	case "E0":
		return next == '8' || next == '9'
	case "F0":
		return next == '8'
	}
	return false
}

const upperHex = "0123456789ABCDEF"

// Bit sets of ASCII characters, for c < 64 and c-64 < 64.
const (
	// unreserved: RFC 3986's unreserved characters, which mean the same
	// percent-encoded or not.
	unreservedLo = 0x03ff600000000000 // - . 0-9
	unreservedHi = 0x47fffffe87fffffe // A-Z _ a-z ~
	// rawOK adds the sub-delims, ":" and "@": RFC 3986's pchar, less
	// pct-encoded, which a path segment may hold unencoded.
	rawOKLo = 0x2fff7fd200000000 // ! $ & ' ( ) * + , - . 0-9 : ; =
	rawOKHi = 0x47fffffe87ffffff // @ A-Z _ a-z ~
)

func unreserved(c byte) bool { return inSet(c, unreservedLo, unreservedHi) }

func rawOK(c byte) bool { return inSet(c, rawOKLo, rawOKHi) }

func inSet(c byte, lo, hi uint64) bool {
	switch {
	case c < 64:
		return lo&(1<<c) != 0
	case c < 128:
		return hi&(1<<(c-64)) != 0
	}
	return false
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
