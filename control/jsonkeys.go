package control

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkKeys refuses a key of the JSON document b that appears twice in one
// object, or that names a field of v (or of a struct inside it) in other
// cases than the field's: encoding/json matches keys to fields ignoring
// case, so {"mode":…,"Mode":…} sets one field twice just as surely, and
// {"Mode":…} sets a field other tools reading the same body do not see.
// An error without a key is b not being JSON.
func checkKeys(b []byte, v any) error {
	names := map[string]string{}
	jsonNames(reflect.TypeOf(v), names)
	type object struct {
		keys      map[string]bool
		expectKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	// stack holds one entry per open container: an object, or nil for an
	// array.
	var stack []*object
	// valueDone marks the end of a value: in an object a key comes next.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1] != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		var top *object
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{keys: map[string]bool{}, expectKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			continue
		}
		if key, ok := tok.(string); ok && top != nil && top.expectKey {
			folded := foldKey(key)
			if top.keys[folded] {
				return fmt.Errorf("the key %q appears twice in one object", key)
			}
			if name, ok := names[folded]; ok && name != key {
				return fmt.Errorf("the key %q is spelled %q", key, name)
			}
			top.keys[folded], top.expectKey = true, false
			continue
		}
		valueDone()
	}
}

// loneSurrogate returns the offset in the JSON document b of a \u escape
// of a UTF-16 surrogate that is not half of a pair, or -1: encoding/json
// reads one as U+FFFD, so a reason holding it would reach the audit log
// as another text than the one sent. A backslash is only ever inside a
// string of valid JSON, and one that is not is refused by the decoder.
func loneSurrogate(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		switch surrogateAt(b, i) {
		case 'h':
			if surrogateAt(b, i+6) != 'l' {
				return i
			}
			i += 11
		case 'l':
			return i
		default:
			i++ // the escaped character, which may be a backslash
		}
	}
	return -1
}

// surrogateAt says whether b holds at i the \u escape of a high ('h') or
// low ('l') UTF-16 surrogate, or neither (0).
func surrogateAt(b []byte, i int) byte {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return 0
	}
	n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
	switch {
	case err != nil || n < 0xD800 || n >= 0xE000:
		return 0
	case n < 0xDC00:
		return 'h'
	}
	return 'l'
}

// jsonNames adds to names the JSON key of each field of t and of the
// structs inside it, by its folded form (foldKey).
func jsonNames(t reflect.Type, names map[string]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" && f.IsExported() {
			names[foldKey(name)] = name
			jsonNames(f.Type, names)
		}
	}
}

// foldKey folds s as encoding/json does when it matches a key to a field:
// each rune to the smallest rune of its case-folding orbit.
func foldKey(s string) string {
	var out []byte
	for _, r := range s {
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				r = next
				break
			}
			r = next
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// bodyProblem says what is wrong with a JSON body in the API's words,
// for decode: encoding/json's own errors name the facade's Go types
// ("Go struct field patchRequest.mode of type *domain.Mode"), which a
// caller cannot act on and which describe the code to whoever probes it.
// Errors of the API's own types (an unknown mode, a negative duration)
// already speak its words and pass through.
func bodyProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends inside its JSON value"
	case errors.As(err, &syntax):
		return fmt.Sprintf("not JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ) && strings.HasPrefix(typ.Value, "number "):
		// A number the field's Go type cannot hold; encoding/json does
		// not say which field that is.
		if want := jsonType(typ.Type); want != "a number" {
			return fmt.Sprintf("the %s is not %s in range", typ.Value, want)
		}
		return fmt.Sprintf("the %s is out of range", typ.Value)
	case errors.As(err, &typ) && typ.Field == "":
		return "the body must be a JSON object, not " + article(typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("%q takes %s, not %s", typ.Field, jsonType(typ.Type), article(typ.Value))
	}
	// Decoder.DisallowUnknownFields's "json: unknown field \"x\"".
	msg, _ := strings.CutPrefix(err.Error(), "json: ")
	return msg
}

// textUnmarshaler is the type of a field that takes a JSON string it
// parses itself (a mode, a duration).
var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonType names the JSON type a field of Go type t takes.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// article puts "a" or "an" before a JSON type's name as encoding/json
// gives it (string, number, bool, array, object).
func article(value string) string {
	if value == "bool" {
		return "true or false"
	}
	if strings.ContainsRune("aeiou", rune(value[0])) {
		return "an " + value
	}
	return "a " + value
}
