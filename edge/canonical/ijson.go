package canonical

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
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
// probe: such a create answered 201, journaled for modern). An empty body
// is none. The refusal says where (a byte offset), never what: a body
// may name a patient.
func SameJSONEverywhere(body []byte, typed bool) error {
	v := jsontext.Value(body)
	if len(body) == 0 || v.IsValid() {
		return nil
	}
	lax := v.IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if !lax && !typed {
		return nil // not JSON: no backend reads it as JSON
	}
	allowDuplicates, allowInvalid := jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)
	switch {
	case !lax:
		return badRequest(fmt.Sprintf("the body is typed JSON and does not parse as one JSON value nested at most 10,000 deep (at byte %d): the backends of a dual write must read the same write; send well-formed JSON", firstFault(body, allowDuplicates, allowInvalid)))
	case v.IsValid(allowDuplicates):
		return badRequest(fmt.Sprintf("the JSON body names a member twice in one object (at byte %d): parsers keep the first, the last or neither, so the backends of a dual write could keep different values; send each name once", firstFault(body)))
	default:
		return badRequest(fmt.Sprintf("the JSON body holds a string that is not Unicode (at byte %d: bytes that are not UTF-8, or an escaped surrogate without its pair), which parsers read differently, so the backends of a dual write could keep different values; send UTF-8", firstFault(body, allowDuplicates)))
	}
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
