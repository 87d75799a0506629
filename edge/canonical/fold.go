package canonical

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// errFoldRefused refuses a path that, once the characters NFKC makes ASCII
// are read as that, holds what the facade refuses: ＼ as \, ；as ;, ．．or
// ‥ above the root.
var errFoldRefused = badRequest("the path, with its fullwidth and other characters Unicode NFKC makes ASCII read as ASCII, is one the facade refuses")

// Fold returns route key p (a canonical path without its trailing slash)
// as a backend that reads paths loosely may route it: ASCII letters in
// lower case (IIS, ASP.NET, Spring with case-insensitive matching, MySQL
// collations behind a PHP router), and so the letters whose upper or
// lower case is an ASCII letter (ſ is S and K, the Kelvin sign, is k to
// Java's equalsIgnoreCase and .NET's ToUpperInvariant; ı is I), the
// characters Unicode's compatibility normalisation (NFKC) turns into ASCII
// as that ASCII (fullwidth forms, which Windows' best-fit mapping turns
// into ASCII too: ／ is /, ．is .; and ʳ is r, ﬁ is fi, ‥ is ..), dots
// and spaces ending a segment
// dropped (Windows drops them from file names, so IIS serves /records. as
// /records), and its ends read as LooseEnds reads them (/index.php/records
// and /records.json are /records). The router refuses a path whose folded
// form matches another route than the path itself.
//
// Fold returns p itself, or a part of it, without allocating, when only
// LooseEnds changes it.
func Fold(p string) (string, error) {
	if !needsFold(p) {
		return LooseEnds(p), nil
	}
	if hasNonASCII(p) {
		var err error
		if p, err = foldUnicode(p); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	b.Grow(len(p))
	rest := p[1:]
	for more := true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		for {
			trimmed := strings.TrimSuffix(strings.TrimSuffix(seg, "."), "%20")
			if trimmed == seg {
				break
			}
			seg = trimmed
		}
		if seg == "" && more {
			continue // merged, as Canonicalize merges runs of /
		}
		b.WriteByte('/')
		b.WriteString(FoldLiteral(seg))
	}
	return LooseEnds(RouteKey(b.String())), nil
}

// LooseEnds returns route key p (or a folded route pattern) as PHP front
// controllers, routers that read a format from the path and servers with
// index pages read its ends: leading segments naming a PHP script dropped
// while a segment follows them (Laravel and Symfony route
// /index.php/records as /records, the script being their front
// controller); the last segment cut at its first dot unless it starts
// with one (Rails' (.:format) on every resource route, and Spring's
// suffix pattern match, route /records.json as /records and
// /records/4.json as /records/4), with the spaces that then end it (IIS);
// and a last segment "index" dropped (Apache's and IIS's index pages
// serve /records/index.php for /records/, ASP.NET MVC's default action
// /records/index for /records). In a pattern, what is inside a
// parameter's braces counts for none of these (GET /a/{id}.json is GET
// /a/{id}), and a script named by a parameter is no script. p is lower
// case where it matters (Fold, FoldLiteral). It returns a part of p,
// without allocating.
func LooseEnds(p string) string {
	// A slash is never inside a parameter's braces: config refuses a
	// regexp with one, and a path's braces are percent-encoded (%7B).
	for len(p) > 1 {
		first := p
		if i := strings.IndexByte(p[1:], '/'); i >= 0 {
			first = p[:i+1]
		}
		if len(first) == len(p) || !strings.HasSuffix(first, ".php") || strings.IndexByte(first, '{') >= 0 {
			break
		}
		p = p[len(first):]
	}
	for {
		last := strings.LastIndexByte(p, '/') + 1 // the start of the last segment
		seg := p[last:]
		if dot := outsideBraces(seg, '.'); dot > 0 && dot < len(seg) {
			p = p[:last+dot]
			for strings.HasSuffix(p, "%20") {
				p = p[:len(p)-3]
			}
		} else if seg == "index" {
			p = p[:last]
		} else {
			return p
		}
		p = RouteKey(p)
	}
}

// outsideBraces returns the index of the first c in p that is outside a
// pattern parameter's braces (a regexp's), len(p) if there is none.
func outsideBraces(p string, c byte) int {
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			depth--
		case c:
			if depth == 0 {
				return i
			}
		}
	}
	return len(p)
}

// needsFold reports whether Fold may change p: an upper-case letter, a
// possible fullwidth form, or a segment ending in a dot or a space.
func needsFold(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'A' <= c && c <= 'Z' && !inEscape(p, i):
			return true
		case c == '%' && i+1 < len(p) && p[i+1] >= 'C':
			return true // a UTF-8 lead byte
		case (i+1 == len(p) || p[i+1] == '/') && (c == '.' || strings.HasSuffix(p[:i+1], "%20")):
			return true
		}
	}
	return false
}

// inEscape reports whether p[i] is one of the hex digits of a
// percent-encoding.
func inEscape(p string, i int) bool {
	return i >= 1 && p[i-1] == '%' || i >= 2 && p[i-2] == '%'
}

// FoldLiteral puts the ASCII letters of s in lower case, except the hex
// digits of its percent-encodings: the folding of a route pattern's
// literal text, and of a path.
func FoldLiteral(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' && !inEscape(s, i) {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' && !inEscape(s, j) {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// hasNonASCII reports a percent-encoded UTF-8 lead byte (C0 to FF) in
// canonical path p.
func hasNonASCII(p string) bool {
	for i := strings.IndexByte(p, '%'); i >= 0 && i+1 < len(p); {
		if p[i+1] >= 'C' {
			return true
		}
		j := strings.IndexByte(p[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// foldUnicode reads the non-ASCII characters in p that stand for ASCII
// ones (those NFKC makes ASCII, as fullwidth forms, and letters whose case
// is an ASCII letter) as those,
// and canonicalizes the result: a fullwidth / splits a segment, a
// fullwidth . makes a dot segment, a fullwidth \ is refused.
func foldUnicode(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		r, n := encodedRuneAt(p, i)
		if n == 0 {
			b.WriteByte(p[i])
			continue
		}
		i += n - 1
		ascii := asciiForm(r)
		switch {
		case ascii != "":
			for _, c := range []byte(ascii) {
				switch c {
				case '/', '.':
					b.WriteByte(c)
				default:
					b.Write([]byte{'%', upperHex[c>>4], upperHex[c&15]})
				}
			}
		case unicode.ToLower(r) < utf8.RuneSelf:
			b.WriteRune(unicode.ToLower(r))
		case unicode.ToUpper(r) < utf8.RuneSelf:
			b.WriteRune(unicode.ToLower(unicode.ToUpper(r)))
		default:
			b.WriteString(p[i-n+1 : i+1])
		}
	}
	c, err := Canonicalize(b.String())
	if err != nil {
		return "", errFoldRefused
	}
	return c.Escaped, nil
}

// asciiForm is the ASCII text Unicode's compatibility normalisation
// (NFKC) makes of r, "" if it makes anything else: ｒ (fullwidth) and ʳ
// are r, ﬁ is fi, ‥ is .., ﹨ is \.
func asciiForm(r rune) string {
	var buf [utf8.UTFMax]byte
	// The compatibility decomposition is NFKC's result when it is ASCII,
	// which composes no further; it is read from the tables, without
	// allocating.
	d := norm.NFKC.Properties(buf[:utf8.EncodeRune(buf[:], r)]).Decomposition()
	for _, c := range d {
		if c >= utf8.RuneSelf {
			return ""
		}
	}
	return string(d)
}

// encodedRuneAt decodes the non-ASCII character percent-encoded in UTF-8
// at p[i:] (canonical: upper-case hex), and the length of its encoding; 0
// if there is none.
func encodedRuneAt(p string, i int) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := 0
	for j := i; n < len(buf) && j+2 < len(p) && p[j] == '%' && isUpperHex(p[j+1]) && isUpperHex(p[j+2]); j += 3 {
		buf[n] = unhex(p[j+1])<<4 | unhex(p[j+2])
		n++
	}
	if n == 0 || buf[0] < utf8.RuneSelf {
		return 0, 0
	}
	r, size := utf8.DecodeRune(buf[:n])
	if r == utf8.RuneError {
		return 0, 0
	}
	return r, 3 * size
}
