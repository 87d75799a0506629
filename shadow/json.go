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
	p.space()
	err := p.value()
	t.nodes = p.nodes
	if err != nil {
		return err
	}
	p.space()
	if p.pos != len(src) {
		return errSyntax
	}
	return nil
}

func (t *tree) value(i int32) []byte { return t.src[t.nodes[i].start:t.nodes[i].end] }

func (t *tree) key(i int32) []byte { return t.src[t.nodes[i].keyStart:t.nodes[i].keyEnd] }

// str is the content of a string node between its quotes, still escaped.
func (t *tree) str(i int32) []byte { return t.src[t.nodes[i].start+1 : t.nodes[i].end-1] }

type parser struct {
	src   []byte
	pos   int
	depth int
	nodes []node
}

// space skips whitespace. Most JSON an API sends has none between its
// tokens: the check of the next byte is small enough to be inlined, and
// only whitespace pays for the call.
func (p *parser) space() {
	if p.pos < len(p.src) && p.src[p.pos] <= ' ' {
		p.skipSpace()
	}
}

func (p *parser) skipSpace() {
	i := p.pos
	for i < len(p.src) && p.src[i] <= ' ' && (p.src[i] == ' ' || p.src[i] == '\t' || p.src[i] == '\n' || p.src[i] == '\r') {
		i++
	}
	p.pos = i
}

func (p *parser) value() error {
	if p.pos >= len(p.src) {
		return errSyntax
	}
	idx := len(p.nodes)
	p.nodes = append(p.nodes, node{start: int32(p.pos)})
	var kind uint8
	var count int32
	var esc bool
	var err error
	switch c := p.src[p.pos]; {
	case c == '{':
		kind = kindObject
		count, err = p.object()
	case c == '[':
		kind = kindArray
		count, err = p.array()
	case c == '"':
		kind = kindString
		esc, err = p.string()
	case c == '-' || c >= '0' && c <= '9':
		kind = kindNumber
		err = p.number()
	case c == 't':
		kind = kindTrue
		err = p.literal("true")
	case c == 'f':
		kind = kindFalse
		err = p.literal("false")
	case c == 'n':
		kind = kindNull
		err = p.literal("null")
	default:
		err = errSyntax
	}
	if err != nil {
		return err
	}
	n := &p.nodes[idx]
	n.kind, n.count, n.esc = kind, count, esc
	n.end, n.next = int32(p.pos), int32(len(p.nodes))
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return errTooDeep
	}
	p.pos++ // the opening bracket
	p.space()
	return nil
}

func (p *parser) object() (int32, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	var count int32
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.depth--
		return 0, nil
	}
	for {
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return 0, errSyntax
		}
		keyStart := p.pos + 1
		keyEsc, err := p.string()
		if err != nil {
			return 0, err
		}
		keyEnd := p.pos - 1
		p.space()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return 0, errSyntax
		}
		p.pos++
		p.space()
		child := len(p.nodes)
		if err := p.value(); err != nil {
			return 0, err
		}
		c := &p.nodes[child]
		c.keyStart, c.keyEnd, c.keyEsc = int32(keyStart), int32(keyEnd), keyEsc
		count++
		p.space()
		if p.pos >= len(p.src) {
			return 0, errSyntax
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
			p.space()
		case '}':
			p.pos++
			p.depth--
			return count, nil
		default:
			return 0, errSyntax
		}
	}
}

func (p *parser) array() (int32, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	var count int32
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.depth--
		return 0, nil
	}
	for {
		if err := p.value(); err != nil {
			return 0, err
		}
		count++
		p.space()
		if p.pos >= len(p.src) {
			return 0, errSyntax
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
			p.space()
		case ']':
			p.pos++
			p.depth--
			return count, nil
		default:
			return 0, errSyntax
		}
	}
}

// string scans a string starting at its opening quote and reports whether
// it holds escapes. Like encoding/json it accepts any byte above 0x1f,
// invalid UTF-8 included.
func (p *parser) string() (bool, error) {
	esc := false
	s := p.src
	for i := p.pos + 1; i < len(s); i++ {
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
			p.pos = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(p.src) {
				return false, errSyntax
			}
			switch p.src[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p.src) {
					return false, errSyntax
				}
				for _, h := range p.src[i+1 : i+5] {
					if hexVal(h) < 0 {
						return false, errSyntax
					}
				}
				i += 4
			default:
				return false, errSyntax
			}
		case c < 0x20:
			return false, errSyntax
		}
	}
	return false, errSyntax
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

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *parser) number() error {
	s, i := p.src, p.pos
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
		return errSyntax
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return errSyntax
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
			return errSyntax
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	p.pos = i
	return nil
}

func (p *parser) literal(word string) error {
	if len(p.src)-p.pos < len(word) || string(p.src[p.pos:p.pos+len(word)]) != word {
		return errSyntax
	}
	p.pos += len(word)
	return nil
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
