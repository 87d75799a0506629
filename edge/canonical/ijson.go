package canonical

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// SameJSONEverywhere refuses a write's body that a backend may read as
// JSON (typed: its Content-Type says JSON, IsJSON; or it parses as JSON
// whatever its type says, as an app that decodes its input without
// looking at the type reads it) unless it is I-JSON (RFC 7493): one JSON
// value, no member name twice in one object, every string Unicode (UTF-8,
// no lone surrogate escape). Parsers read the rest differently, so the
// two backends of a dual write could keep different values, both
// answering 2xx: of {"name":"Ada","name":"Eve"} Go, PHP, Python and
// PostgreSQL's jsonb keep Eve, MariaDB's JSON_EXTRACT reads Ada, Gson and
// org.json refuse it; "\ud800" is U+FFFD to Go, a lone surrogate to
// Python and Java, and refused by PostgreSQL's jsonb (found by the lead's
// probe: such a create answered 201, journaled for modern). Refused as
// well: JSON behind a byte order mark or in UTF-16 or UTF-32, whatever
// its type says (unlikeUTF8); a body that begins with JSON that is not
// I-JSON (leadingValues); JSON holding U+0000 (nulEscape); typed JSON
// whose charset a backend may read it in other than UTF-8 (readAsUTF8);
// a multipart part typed JSON that one of these refuses (jsonParts).
// contentTypes are the request's Content-Type values. An empty body is
// none. The refusal says where (a byte offset), never what: a body may
// name a patient.
func SameJSONEverywhere(body []byte, contentTypes []string) error {
	for _, ct := range contentTypes {
		if err := jsonParts(ct, body); err != nil {
			return err
		}
	}
	return sameJSON(body, contentTypes)
}

// jsonParts refuses a multipart body, of type ct, with a part typed JSON
// that sameJSON refuses: Spring's @RequestPart reads such a part with
// Jackson, a PHP app json_decodes the field, a MariaDB one stores it and
// reads it with JSON_EXTRACT. A part of another type is a file's or a
// field's, passed as it is; a body that does not parse as multipart has
// no parts to check.
func jsonParts(ct string, body []byte) error {
	if len(ct) < len("multipart/") || !strings.EqualFold(ct[:len("multipart/")], "multipart/") {
		return nil // and no parse: its map is an allocation every write
	}
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil
	}
	// Without a boundary, NextRawPart fails at once.
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := r.NextRawPart()
		if err != nil {
			return nil
		}
		types := part.Header["Content-Type"]
		if !slices.ContainsFunc(types, IsJSON) {
			continue
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil
		}
		if err := sameJSON(b, types); err != nil {
			if r := (*Refusal)(nil); errors.As(err, &r) {
				return &Refusal{Status: r.Status, Msg: "a part of the multipart body: " + r.Msg}
			}
			return err
		}
	}
}

// sameJSON is SameJSONEverywhere for one body, not looking into parts.
func sameJSON(body []byte, contentTypes []string) error {
	if len(body) == 0 {
		return nil
	}
	typed := false
	for _, ct := range contentTypes {
		if IsJSON(ct) {
			typed = true
			if !readAsUTF8(ct, body) {
				return errJSONCharset
			}
		}
	}
	v := jsontext.Value(body)
	if v.IsValid() {
		return nulEscape(body, 0)
	}
	allowDuplicates, allowInvalid := jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)
	if enc := unlikeUTF8(body); enc != nil {
		if text, err := enc.NewDecoder().Bytes(body); err == nil && jsontext.Value(text).IsValid(allowDuplicates, allowInvalid) {
			return errJSONNotUTF8
		}
	}
	lax := v.IsValid(allowDuplicates, allowInvalid)
	switch {
	case !lax && !typed:
		return leadingValues(body)
	case !lax:
		return badRequest(fmt.Sprintf("the body is typed JSON and does not parse as one JSON value nested at most 10,000 deep (at byte %d): the backends of a dual write must read the same write; send well-formed JSON", firstFault(body, allowDuplicates, allowInvalid)))
	}
	return notIJSON(v, 0)
}

// leadingValues refuses a body not typed JSON that is not one JSON value
// either but begins with JSON values (a stream of them, as NDJSON, or one
// and then text) of which an object or array is not I-JSON: Go's
// json.Decoder and Jackson read the first value and leave the rest, an
// NDJSON reader reads each line. Text that does not begin with JSON
// passes, and so does a leading string that is not Unicode: it is as
// likely text in Latin-1 that begins with a quote ("Café" in Latin-1
// bytes, then more), or a binary's first bytes.
func leadingValues(body []byte) error {
	d := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	for {
		v, err := d.ReadValue()
		if err != nil {
			return nil
		}
		if k := v.Kind(); k != '{' && k != '[' {
			continue
		}
		at := d.InputOffset() - int64(len(v))
		if !v.IsValid() {
			return notIJSON(v, at)
		}
		if err := nulEscape(v, at); err != nil {
			return err
		}
	}
}

// nulEscape refuses JSON text b, at byte at of the body, holding the
// character U+0000, which well-formed JSON writes only as the escape
// \u0000: it is I-JSON, and Go, PHP and MariaDB keep it, but PostgreSQL's
// jsonb refuses it ("unsupported Unicode escape sequence") and its text
// cannot hold it, so a modern on PostgreSQL refused a write legacy had
// applied, as with "\ud800".
func nulEscape(b []byte, at int64) error {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(`u0000`))
		if j < 0 {
			return nil
		}
		j += i
		// An escape when an odd run of backslashes comes before it; in
		// well-formed JSON a backslash is in a string.
		n := 0
		for k := j - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 1 {
			return badRequest(fmt.Sprintf("the JSON body holds the character U+0000 (\\u0000, at byte %d), which PostgreSQL cannot store and other backends keep, so one backend of a dual write could apply a write the other refuses; leave it out", at+int64(j-1)))
		}
		i = j + len("u0000")
	}
}

// notIJSON refuses v, a JSON value at byte at of the body that parses
// once duplicate names and strings that are not Unicode are allowed but
// not without, saying which fault comes first and where.
func notIJSON(v jsontext.Value, at int64) error {
	allowDuplicates := jsontext.AllowDuplicateNames(true)
	if v.IsValid(allowDuplicates) {
		return badRequest(fmt.Sprintf("the JSON body names a member twice in one object (at byte %d): parsers keep the first, the last or neither, so the backends of a dual write could keep different values; send each name once", at+firstFault(v)))
	}
	return badRequest(fmt.Sprintf("the JSON body holds a string that is not Unicode (at byte %d: bytes that are not UTF-8, or an escaped surrogate without its pair), which parsers read differently, so the backends of a dual write could keep different values; send UTF-8", at+firstFault(v, allowDuplicates)))
}

// readAsUTF8 reports whether every backend reads body, typed JSON by
// Content-Type ct, as the UTF-8 the facade checks. RFC 8259 gives JSON
// no charset parameter, but Spring (Jackson behind an InputStreamReader)
// and ASP.NET decode the body in the one ct names: of "é" in UTF-8
// under charset=latin1 Go keeps é and Spring Ã©. A charset that keeps
// ASCII bytes ASCII (asciiCharset) reads an ASCII body the same
// everywhere; a type that names a charset and does not parse (two
// charsets) may be read in either.
func readAsUTF8(ct string, body []byte) bool {
	if !strings.Contains(strings.ToLower(ct), "charset") {
		return true // and no parse: its map is an allocation every write
	}
	_, params, err := mime.ParseMediaType(ct)
	cs, named := params["charset"]
	switch {
	case err != nil:
		return false
	case !named || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8"):
		return true
	}
	return asciiCharset(cs) && ascii(body)
}

// ascii reports whether b is all ASCII.
func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// errJSONCharset refuses typed JSON in a charset other than UTF-8.
var errJSONCharset = &Refusal{Status: http.StatusUnsupportedMediaType,
	Msg: "the JSON body's Content-Type names a charset other than UTF-8, which some backends decode the body in and others ignore, so the backends of a dual write could keep different values; send UTF-8 with charset=utf-8 or none"}

// errJSONNotUTF8 refuses JSON in a byte order mark, UTF-16 or UTF-32.
var errJSONNotUTF8 = badRequest("the body is JSON behind a byte order mark or in UTF-16 or UTF-32, which some parsers read (Python's json.loads, Jackson) and others refuse (Go, PHP), so one backend of a dual write could apply a write the other refuses; send UTF-8 without a byte order mark")

// unlikeUTF8 is the encoding Python's json.loads (its detect_encoding,
// after RFC 4627's section 3) and Jackson read body in when that is not
// plain UTF-8, the facade's reading: UTF-8 behind a byte order mark, or
// UTF-16 or UTF-32, told by their byte order mark or by the zero bytes
// of the ASCII first characters of any JSON text; nil for UTF-8.
func unlikeUTF8(body []byte) encoding.Encoding {
	var b [4]byte
	copy(b[:], body)
	switch {
	case bytes.HasPrefix(body, []byte{0xef, 0xbb, 0xbf}):
		return unicode.UTF8BOM
	case bytes.HasPrefix(body, []byte{0xff, 0xfe, 0, 0}), bytes.HasPrefix(body, []byte{0, 0, 0xfe, 0xff}):
		return utf32.UTF32(utf32.BigEndian, utf32.ExpectBOM)
	case bytes.HasPrefix(body, []byte{0xff, 0xfe}), bytes.HasPrefix(body, []byte{0xfe, 0xff}):
		return unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM)
	case len(body) < 2:
		return nil
	case len(body) >= 4 && b[0] == 0 && b[1] == 0:
		return utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM)
	case b[0] == 0:
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
	case len(body) >= 4 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		return utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM)
	case b[1] == 0:
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	}
	return nil
}

// firstFault is the byte offset of the first fault a reading of body as
// one JSON value under opts finds.
func firstFault(body []byte, opts ...jsontext.Options) int64 {
	d := jsontext.NewDecoder(bytes.NewReader(body), opts...)
	_, err := d.ReadValue()
	if se := (*jsontext.SyntacticError)(nil); errors.As(err, &se) {
		return se.ByteOffset
	}
	return d.InputOffset() // the value ends here, and more follows
}
