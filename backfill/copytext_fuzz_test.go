package backfill

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// FuzzCopyText checks the text COPY is fed against PostgreSQL's own rules
// for its text format, decoded here from its documentation: a value never
// holds a raw tab, newline or carriage return (they delimit columns and
// rows), reads back byte for byte (bytea through its hex input), and NULL
// stays apart from every value, the text \N included.
func FuzzCopyText(f *testing.F) {
	for _, seed := range []string{"", "plain", `\N`, `\`, `\\`, "a\tb", "a\nb", "a\rb", "\\.", ".", "é😀", "\x00\x01\x7f\xff", `\x41`, `\101`} {
		f.Add([]byte(seed), false, false)
		f.Add([]byte(seed), true, false)
	}
	f.Add([]byte(nil), false, true)
	f.Fuzz(func(t *testing.T, v []byte, binary, null bool) {
		if null {
			v = nil
		} else if v == nil {
			v = []byte{}
		}
		var buf bytes.Buffer
		appendCopyText(&buf, v, binary)
		field := buf.Bytes()
		if bytes.ContainsAny(field, "\t\n\r") {
			t.Fatalf("%q is written as %q, which holds a delimiter", v, field)
		}
		got, isNull := decodeCopyText(t, field)
		if isNull != (v == nil) {
			t.Fatalf("%q is written as %q, which reads as NULL: %v", v, field, isNull)
		}
		if binary && !isNull {
			// bytea's hex input: \x and two hex digits per byte.
			if len(got) < 2 || string(got[:2]) != `\x` {
				t.Fatalf("bytea %q is written as %q, not in hex", v, field)
			}
			var err error
			if got, err = hex.DecodeString(string(got[2:])); err != nil {
				t.Fatalf("bytea %q is written as %q: %v", v, field, err)
			}
		}
		if !isNull && !bytes.Equal(got, v) {
			t.Fatalf("%q is written as %q, which reads back as %q", v, field, got)
		}
	})
}

// decodeCopyText reads one field of COPY's text format the way
// PostgreSQL does (https://www.postgresql.org/docs/current/sql-copy.html,
// "Text Format"): \N alone is NULL; a backslash introduces \b \f \n \r
// \t \v, an octal \ddd (one to three digits), a hex \xhh (one or two
// digits), or stands for the character after it.
func decodeCopyText(t *testing.T, field []byte) (value []byte, null bool) {
	if string(field) == `\N` {
		return nil, true
	}
	out := []byte{}
	for i := 0; i < len(field); i++ {
		c := field[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(field) {
			t.Fatalf("%q ends in a lone backslash", field)
		}
		switch c = field[i]; {
		case c >= '0' && c <= '7':
			n := 0
			for k := 0; k < 3 && i < len(field) && field[i] >= '0' && field[i] <= '7'; k, i = k+1, i+1 {
				n = n*8 + int(field[i]-'0')
			}
			i--
			out = append(out, byte(n))
		case c == 'x' && i+1 < len(field) && isHex(field[i+1]):
			n := 0
			for k := 0; k < 2 && i+1 < len(field) && isHex(field[i+1]); k++ {
				i++
				b, _ := hex.DecodeString("0" + string(field[i]))
				n = n*16 + int(b[0])
			}
			out = append(out, byte(n))
		default:
			if e, ok := copyEscapes[c]; ok {
				c = e
			}
			out = append(out, c)
		}
	}
	return out, false
}

// copyEscapes are the letters COPY reads after a backslash as control
// characters.
var copyEscapes = map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
