package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf8"
)

// duplicateKey returns the first key that appears twice in one object of
// the JSON document b, or "" if none does; an error if b is not JSON.
// Keys are compared as encoding/json matches them to fields, ignoring
// case: {"mode":…,"Mode":…} sets one field twice just as surely.
func duplicateKey(b []byte) (string, error) {
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
			return "", nil
		} else if err != nil {
			return "", err
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
				return key, nil
			}
			top.keys[folded], top.expectKey = true, false
			continue
		}
		valueDone()
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
