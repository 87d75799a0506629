package shadow

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// The comparison parses JSON itself rather than through encoding/json:
// decoding into map[string]any costs an allocation per value and loses
// the literal digits of numbers, while a flat array of nodes pointing into
// the body allocates nothing once warm and keeps every number exact.

// The kinds of JSON values.
const (
	kindNull uint8 = iota
	kindFalse
	kindTrue
	kindNumber
	kindString
	kindObject
	kindArray
)

// node is one JSON value. The nodes of a document are stored in pre-order:
// a container's first child follows it, and each child's next is the index
// of its sibling.
type node struct {
	// start and end delimit the value in the source; a string's span
	// includes its quotes.
	start, end int32
	// keyStart and keyEnd delimit the key, without quotes, of a value
	// that is an object member.
	keyStart, keyEnd int32
	// next is the index of the first node after this value's subtree.
	next int32
	// count is the number of members or elements of a container.
	count int32
	kind  uint8
	// esc reports that a string value holds escapes; keyEsc the same of
	// the member key.
	esc, keyEsc bool
}

// tree is a parsed JSON document; the root is nodes[0].
type tree struct {
	src   []byte
	nodes []node
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

var (
	errSyntax   = errors.New("invalid JSON")
	errTooDeep  = errors.New("invalid JSON: nested too deep")
	errTooLarge = errors.New("JSON document too large")
)

// parse parses src, keeping the node storage of an earlier parse. It
// accepts exactly what json.Valid accepts.
func (t *tree) parse(src []byte) error {
	t.src, t.nodes = src, t.nodes[:0]
	if len(src) > math.MaxInt32 {
		return errTooLarge
	}
	p := parser{src: src, nodes: t.nodes}
	i, err := p.value(space(src, 0))
	t.nodes = p.nodes
	if err != nil {
		return err
	}
	if space(src, i) != len(src) {
		return errSyntax
	}
	return nil
}

func (t *tree) value(i int32) []byte { return t.src[t.nodes[i].start:t.nodes[i].end] }

func (t *tree) key(i int32) []byte { return t.src[t.nodes[i].keyStart:t.nodes[i].keyEnd] }

// str is the content of a string node between its quotes, still escaped.
func (t *tree) str(i int32) []byte { return t.src[t.nodes[i].start+1 : t.nodes[i].end-1] }

// parser holds what a parse keeps across values; the position in src is
// passed and returned by each function rather than kept here, so that it
// stays in a register through the loops.
type parser struct {
	src   []byte
	depth int
	nodes []node
}

// space returns the index of the first byte of s at or after i that is not
// whitespace. Most JSON an API sends has none between its tokens: the
// check of the next byte is small enough to be inlined, and only
// whitespace pays for the call.
func space(s []byte, i int) int {
	if i < len(s) && s[i] <= ' ' {
		return skipSpace(s, i)
	}
	return i
}

func skipSpace(s []byte, i int) int {
	for i < len(s) && s[i] <= ' ' && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// value parses the value at src[i] and returns the index after it.
func (p *parser) value(i int) (int, error) {
	s := p.src
	if i >= len(s) {
		return i, errSyntax
	}
	idx := len(p.nodes)
	p.nodes = append(p.nodes, node{start: int32(i)})
	var kind uint8
	var count int32
	var esc bool
	var err error
	switch c := s[i]; {
	case c == '"':
		kind = kindString
		i, esc, err = scanString(s, i)
	case c == '{':
		kind = kindObject
		i, count, err = p.object(i)
	case c == '[':
		kind = kindArray
		i, count, err = p.array(i)
	case c == '-' || c >= '0' && c <= '9':
		kind = kindNumber
		i, err = scanNumber(s, i)
	case c == 't':
		kind = kindTrue
		i, err = scanLiteral(s, i, "true")
	case c == 'f':
		kind = kindFalse
		i, err = scanLiteral(s, i, "false")
	case c == 'n':
		kind = kindNull
		i, err = scanLiteral(s, i, "null")
	default:
		err = errSyntax
	}
	if err != nil {
		return i, err
	}
	n := &p.nodes[idx]
	n.kind, n.count, n.esc = kind, count, esc
	n.end, n.next = int32(i), int32(len(p.nodes))
	return i, nil
}

// enter steps into the container whose opening bracket is at src[i] and
// returns the index of its first token.
func (p *parser) enter(i int) (int, error) {
	p.depth++
	if p.depth > maxDepth {
		return i, errTooDeep
	}
	return space(p.src, i+1), nil
}

// object parses the object at src[i] and returns the index after it and
// its number of members.
func (p *parser) object(i int) (int, int32, error) {
	i, err := p.enter(i)
	if err != nil {
		return i, 0, err
	}
	s := p.src
	if i < len(s) && s[i] == '}' {
		p.depth--
		return i + 1, 0, nil
	}
	var count int32
	for {
		if i >= len(s) || s[i] != '"' {
			return i, 0, errSyntax
		}
		keyStart := i + 1
		end, keyEsc, err := scanString(s, i)
		if err != nil {
			return end, 0, err
		}
		i = space(s, end)
		if i >= len(s) || s[i] != ':' {
			return i, 0, errSyntax
		}
		i = space(s, i+1)
		child := len(p.nodes)
		if i, err = p.value(i); err != nil {
			return i, 0, err
		}
		c := &p.nodes[child]
		c.keyStart, c.keyEnd, c.keyEsc = int32(keyStart), int32(end-1), keyEsc
		count++
		i = space(s, i)
		if i >= len(s) {
			return i, 0, errSyntax
		}
		switch s[i] {
		case ',':
			i = space(s, i+1)
		case '}':
			p.depth--
			return i + 1, count, nil
		default:
			return i, 0, errSyntax
		}
	}
}

// array parses the array at src[i] and returns the index after it and
// its number of elements.
func (p *parser) array(i int) (int, int32, error) {
	i, err := p.enter(i)
	if err != nil {
		return i, 0, err
	}
	s := p.src
	if i < len(s) && s[i] == ']' {
		p.depth--
		return i + 1, 0, nil
	}
	var count int32
	for {
		if i, err = p.value(i); err != nil {
			return i, 0, err
		}
		count++
		i = space(s, i)
		if i >= len(s) {
			return i, 0, errSyntax
		}
		switch s[i] {
		case ',':
			i = space(s, i+1)
		case ']':
			p.depth--
			return i + 1, count, nil
		default:
			return i, 0, errSyntax
		}
	}
}

// scanString scans the string whose opening quote is at s[i], returns the
// index after its closing quote and reports whether it holds escapes.
// Like encoding/json it accepts any byte above 0x1f, invalid UTF-8
// included.
func scanString(s []byte, i int) (int, bool, error) {
	// Most strings are plain to their closing quote: the first byte that
	// is not plain settles them.
	for i++; i+8 <= len(s); i += 8 {
		if m := special8(binary.LittleEndian.Uint64(s[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			if s[i] == '"' {
				return i + 1, false, nil
			}
			break
		}
	}
	return scanEscaped(s, i)
}

// scanEscaped is scanString from s[i], inside the string, on: what is
// left of a string that holds an escape, a control byte or fewer than
// eight bytes before the end of s.
func scanEscaped(s []byte, i int) (int, bool, error) {
	esc := false
	for ; i < len(s); i++ {
		// Most bytes are plain: skip them eight at a time, then one by one.
		for i+8 <= len(s) {
			if m := special8(binary.LittleEndian.Uint64(s[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(s) && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' {
			i++
		}
		if i >= len(s) {
			break
		}
		switch c := s[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(s) {
				return i, false, errSyntax
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					return i, false, errSyntax
				}
				for _, h := range s[i+1 : i+5] {
					if hexVal(h) < 0 {
						return i, false, errSyntax
					}
				}
				i += 4
			default:
				return i, false, errSyntax
			}
		case c < 0x20:
			return i, false, errSyntax
		}
	}
	return i, false, errSyntax
}

// special8 marks the bytes of v (eight bytes of a string, the first in
// the lowest byte) that end a run of plain string bytes: a quote, a
// backslash or a control byte. Each such byte gets its high bit set; bytes
// above the first marked one may be marked falsely (a borrow carries into
// them), so only the lowest mark is exact, which is all the scan needs.
func special8(v uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := v ^ (ones * '"')
	b := v ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (v-ones*0x20)&^v) & highs
}

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at s[i]
// and returns the index after it.
func scanNumber(s []byte, i int) (int, error) {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return i, errSyntax
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return i, errSyntax
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return i, errSyntax
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i, nil
}

// scanLiteral scans word at s[i] and returns the index after it.
func scanLiteral(s []byte, i int, word string) (int, error) {
	if len(s)-i < len(word) || string(s[i:i+len(word)]) != word {
		return i, errSyntax
	}
	return i + len(word), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendUnescaped appends the text of a valid JSON string's content (the
// bytes between the quotes) to dst. Like encoding/json it turns a lone
// surrogate into U+FFFD.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2 = hex4(s[i+3:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(s []byte) rune {
	return hexVal(s[0])<<12 | hexVal(s[1])<<8 | hexVal(s[2])<<4 | hexVal(s[3])
}
