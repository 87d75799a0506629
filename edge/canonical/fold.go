package canonical

import "strings"

// errFoldRefused refuses a path that, once its fullwidth forms are read as
// ASCII, holds what the facade refuses: ＼ as \, ；as ;, ．．above the root.
var errFoldRefused = badRequest("the path, with its fullwidth characters read as ASCII, is one the facade refuses")

// Fold returns route key p (a canonical path without its trailing slash)
// as a backend that reads paths loosely may route it: ASCII letters in
// lower case (IIS, ASP.NET, Spring with case-insensitive matching, MySQL
// collations behind a PHP router), fullwidth forms of ASCII (U+FF01 to
// U+FF5E, which Unicode NFKC and Windows' best-fit mapping turn into
// ASCII: ／ is /, ．is .) as ASCII, and dots and spaces ending a segment
// dropped (Windows drops them from file names, so IIS serves /records. as
// /records). The router refuses a path whose folded form matches another
// route than the path itself.
//
// Fold returns p itself, without allocating, when folding changes nothing.
func Fold(p string) (string, error) {
	if !needsFold(p) {
		return p, nil
	}
	if strings.Contains(p, "%EF%B") {
		var err error
		if p, err = foldWidth(p); err != nil {
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
	return RouteKey(b.String()), nil
}

// needsFold reports whether Fold may change p: an upper-case letter, a
// possible fullwidth form, or a segment ending in a dot or a space.
func needsFold(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'A' <= c && c <= 'Z' && !inEscape(p, i):
			return true
		case c == '%' && strings.HasPrefix(p[i:], "%EF%B"):
			return true
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

// foldWidth reads the fullwidth forms in p as the ASCII characters they
// stand for, and canonicalizes the result: a fullwidth / splits a segment,
// a fullwidth . makes a dot segment, a fullwidth \ is refused.
func foldWidth(p string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if r, ok := fullwidthAt(p, i); ok {
			switch c := byte(r - 0xFEE0); {
			case c == '/' || c == '.':
				b.WriteByte(c)
			default:
				b.WriteString("%" + string(upperHex[c>>4]) + string(upperHex[c&15]))
			}
			i += len("%EF%BC%81") - 1
			continue
		}
		b.WriteByte(p[i])
	}
	c, err := Canonicalize(b.String())
	if err != nil {
		return "", errFoldRefused
	}
	return c.Escaped, nil
}

// fullwidthAt decodes the fullwidth form of an ASCII character (U+FF01
// to U+FF5E, UTF-8 EF BC 81 to EF BD 9E) percent-encoded at p[i:].
func fullwidthAt(p string, i int) (rune, bool) {
	const n = len("%EF%BC%81")
	if i+n > len(p) || p[i:i+5] != "%EF%B" || p[i+6] != '%' || !isUpperHex(p[i+7]) || !isUpperHex(p[i+8]) {
		return 0, false
	}
	b2, b3 := p[i+5], unhex(p[i+7])<<4|unhex(p[i+8])
	var r rune
	switch b2 {
	case 'C':
		r = 0xFF00 | rune(b3&0x3F)
	case 'D':
		r = 0xFF40 | rune(b3&0x3F)
	default:
		return 0, false
	}
	if b3&0xC0 != 0x80 || r < 0xFF01 || r > 0xFF5E {
		return 0, false
	}
	return r, true
}
