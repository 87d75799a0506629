package shadow

import (
	"bytes"
	"math"
	"math/bits"

	"strangler/domain"
)

// Most shadowed answers are equal. Proving that does not need both
// documents as trees: the primary's is parsed (it is what the other's
// values are looked up in when keys come in another order), and the
// other's is read once, each value compared with the primary's node as
// it is scanned. Only a document found different is parsed too and
// walked for the diffs. The scan decides as walker.diff does: what makes
// them disagree is a bug, and FuzzFastPathAgrees looks for one.

// matchDoc compares the document src with w.a, which holds the primary's
// parsed document, under the rules tn, without building src's tree.
// Invalid JSON in src is different, as the trees would find it.
func (w *walker) matchDoc(src []byte, tn *pathNode) bool {
	if len(src) > math.MaxInt32 {
		return false
	}
	w.depth = 0
	i, eq := w.match(src, space(src, 0), 0, tn)
	return eq && space(src, i) == len(src)
}

// match compares the value at src[i] with a's node ai under tn, as
// w.diff would compare their trees, and returns the index after the
// value. Once they differ the index means nothing.
func (w *walker) match(src []byte, i int, ai int32, tn *pathNode) (int, bool) {
	if tn.has(flagIgnore) {
		return w.skip(src, i)
	}
	if i >= len(src) {
		return i, false
	}
	na := &w.a.nodes[ai]
	switch c := src[i]; {
	case c == '"':
		if na.kind == kindString && !na.esc {
			if end, ok := plainAt(src, i, w.a.str(ai)); ok {
				return end, true
			}
		}
		end, esc, err := scanString(src, i)
		if err != nil || na.kind != kindString {
			return end, false
		}
		sa, sb := w.a.str(ai), src[i+1:end-1]
		if !na.esc && !esc {
			return end, bytes.Equal(sa, sb)
		}
		w.buf = appendUnescaped(w.buf[:0], sa)
		n := len(w.buf)
		w.buf = appendUnescaped(w.buf, sb)
		return end, bytes.Equal(w.buf[:n], w.buf[n:])
	case c == '-' || c >= '0' && c <= '9':
		// The primary's digits, and no more of a number after them, are
		// the same number spelled the same way.
		if v := w.a.value(ai); na.kind == kindNumber && bytes.HasPrefix(src[i:], v) {
			if end := i + len(v); end == len(src) || !numberByte(src[end]) {
				return end, true
			}
		}
		end, err := scanNumber(src, i)
		if err != nil || na.kind != kindNumber {
			return end, false
		}
		return end, domain.NumbersEqual(w.a.value(ai), src[i:end])
	case c == '{' || c == '[':
		kind := kindObject
		if c == '[' {
			kind = kindArray
		}
		if na.kind != kind {
			return i, false
		}
		// A container is self-delimiting: the primary's bytes of it
		// found at src[i] are all of src's value, equal whatever the
		// rules. This settles most subtrees of documents in one order.
		if v := w.a.value(ai); bytes.HasPrefix(src[i:], v) {
			return i + len(v), true
		}
		switch {
		case kind == kindArray && tn.has(flagUnordered):
			return w.matchTree(src, i, ai, tn)
		case kind == kindArray:
			return w.matchArray(src, i, ai, tn)
		}
		return w.matchObject(src, i, ai, tn)
	case c == 't':
		end, err := scanLiteral(src, i, "true")
		return end, err == nil && na.kind == kindTrue
	case c == 'f':
		end, err := scanLiteral(src, i, "false")
		return end, err == nil && na.kind == kindFalse
	case c == 'n':
		end, err := scanLiteral(src, i, "null")
		return end, err == nil && na.kind == kindNull
	}
	return i, false
}

// maxMatchedMembers is the most members of an object the single pass
// pairs itself (their pairing is one bit each); a larger object is
// parsed and walked, which sorts its members.
const maxMatchedMembers = 64

// matchObject compares the object at src[i] with a's object ai, member by
// member: each of src's members is paired with the first of a's not yet
// paired that has its key, so duplicate keys pair up in order of
// appearance, as the walk pairs them.
func (w *walker) matchObject(src []byte, i int, ai int32, tn *pathNode) (int, bool) {
	na := int(w.a.nodes[ai].count)
	if na > maxMatchedMembers {
		return w.matchTree(src, i, ai, tn)
	}
	// src's containers are as deep as a's they are compared with, and
	// a's are within the parser's limit: depth only tells parseAt how
	// deep it starts.
	w.depth++
	i = space(src, i+1)
	// members are the nodes of a's members and keyLens their keys'
	// lengths (-1: a key with escapes); free has bit k set while member
	// k is not paired, so that a look for a key passes over the paired
	// ones at once: with keys in another order than a's, late members
	// were paired first and every look walked past them again, reading
	// each one's node.
	var members, keyLens [maxMatchedMembers]int32
	for k, d := 0, ai+1; k < na; k, d = k+1, w.a.nodes[d].next {
		n := &w.a.nodes[d]
		members[k], keyLens[k] = d, n.keyEnd-n.keyStart
		if n.keyEsc {
			keyLens[k] = -1
		}
	}
	free := uint64(1)<<na - 1 // all ones for 64 members: the shift gives 0
	if i < len(src) && src[i] == '}' {
		i++
	} else {
		for {
			if i >= len(src) || src[i] != '"' {
				return i, false
			}
			j, end := w.plainMember(src, i, free, &members, &keyLens)
			var key []byte
			var keyEsc bool
			if j < 0 {
				keyStart := i + 1
				var err error
				if end, keyEsc, err = scanString(src, i); err != nil {
					return end, false
				}
				key = src[keyStart : end-1]
				for f := free; f != 0; f &= f - 1 {
					k := bits.TrailingZeros64(f)
					if l := keyLens[k]; !keyEsc && l >= 0 && int(l) != len(key) {
						continue // cheap: most keys differ in length
					}
					if w.keyIs(members[k], key, keyEsc) {
						j = k
						break
					}
				}
			}
			i = space(src, end)
			if i >= len(src) || src[i] != ':' {
				return i, false
			}
			i = space(src, i+1)
			var eq bool
			if j >= 0 {
				free &^= 1 << j
				c := members[j]
				var ct *pathNode
				if tn != nil {
					ct = w.childPath(tn, &w.a, c)
				}
				i, eq = w.match(src, i, c, ct)
			} else {
				// A member a lacks is different unless it is ignored
				// (the path node found as childPath finds it).
				switch {
				case tn == nil || tn.keys == nil:
					key = nil
				case keyEsc:
					w.kbuf = appendUnescaped(w.kbuf[:0], key)
					key = w.kbuf
				}
				if !tn.child(key).has(flagIgnore) {
					return i, false
				}
				i, eq = w.skip(src, i)
			}
			if !eq {
				return i, false
			}
			i = space(src, i)
			if i >= len(src) {
				return i, false
			}
			if src[i] == '}' {
				i++
				break
			}
			if src[i] != ',' {
				return i, false
			}
			i = space(src, i+1)
		}
	}
	w.depth--
	for f := free; f != 0; f &= f - 1 {
		if !w.childPath(tn, &w.a, members[bits.TrailingZeros64(f)]).has(flagIgnore) {
			return i, false // a member src lacks
		}
	}
	return i, true
}

// plainMember finds, among a's members not yet paired (set in free), the
// first whose key is the string at src[i] byte for byte, and returns its
// index and the index after src's key; j is -1 when none is, or when a
// key with escapes comes first, which only src's key unescaped can be
// told apart from. Most keys are found so, without scanning src's key
// first: the byte after a's key's length in src is the closing quote or
// the key is another.
func (w *walker) plainMember(src []byte, i int, free uint64, members, keyLens *[maxMatchedMembers]int32) (j, end int) {
	for ; free != 0; free &= free - 1 {
		k := bits.TrailingZeros64(free)
		l := int(keyLens[k])
		if l < 0 {
			break
		}
		// The length first: most keys differ in it.
		if end := i + 1 + l; end < len(src) && src[end] == '"' {
			n := &w.a.nodes[members[k]]
			if string(src[i+1:end]) == string(w.a.src[n.keyStart:n.keyEnd]) {
				return k, end + 1
			}
		}
	}
	return -1, 0
}

// numberByte reports whether c can go on a JSON number.
func numberByte(c byte) bool {
	return isDigit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// plainAt reports whether the string whose opening quote is at src[i]
// is v, which holds no escape, spelled as it is, and returns the index
// after it. Since v holds no quote, backslash or control byte, src's
// string is v exactly when it starts with v's bytes and a quote follows.
func plainAt(src []byte, i int, v []byte) (int, bool) {
	end := i + 1 + len(v)
	if end < len(src) && src[end] == '"' && string(src[i+1:end]) == string(v) {
		return end + 1, true
	}
	return i, false
}

// keyIs reports whether a's member c has the key key (escaped if esc).
func (w *walker) keyIs(c int32, key []byte, esc bool) bool {
	n := &w.a.nodes[c]
	if !n.keyEsc && !esc {
		return int(n.keyEnd-n.keyStart) == len(key) && string(w.a.src[n.keyStart:n.keyEnd]) == string(key)
	}
	w.buf = appendUnescaped(w.buf[:0], w.a.key(c))
	m := len(w.buf)
	w.buf = appendUnescaped(w.buf, key)
	return bytes.Equal(w.buf[:m], w.buf[m:])
}

// matchArray compares the array at src[i] with a's array ai element by
// element.
func (w *walker) matchArray(src []byte, i int, ai int32, tn *pathNode) (int, bool) {
	w.depth++
	i = space(src, i+1)
	na := int(w.a.nodes[ai].count)
	c, k := ai+1, 0
	if i < len(src) && src[i] == ']' {
		i++
	} else {
		for {
			var et *pathNode
			if tn != nil {
				et = tn.elem(k)
			}
			var eq bool
			if k < na {
				i, eq = w.match(src, i, c, et)
				c = w.a.nodes[c].next
			} else if et.has(flagIgnore) {
				i, eq = w.skip(src, i)
			} else {
				return i, false // an element a lacks
			}
			if !eq {
				return i, false
			}
			k++
			i = space(src, i)
			if i >= len(src) {
				return i, false
			}
			if src[i] == ']' {
				i++
				break
			}
			if src[i] != ',' {
				return i, false
			}
			i = space(src, i+1)
		}
	}
	w.depth--
	for ; k < na; k++ {
		if !tn.elem(k).has(flagIgnore) {
			return i, false // an element src lacks
		}
	}
	return i, true
}

// matchTree compares the value at src[i] with a's node ai through the
// walk, src's value parsed into w.b: an unordered array, matched as a
// multiset, and an object too large to pair here need it.
func (w *walker) matchTree(src []byte, i int, ai int32, tn *pathNode) (int, bool) {
	end, err := w.b.parseAt(src, i, w.depth)
	if err != nil {
		return end, false
	}
	return end, w.same(ai, 0, tn)
}

// skip checks the value at src[i], which is ignored, is valid JSON and
// returns the index after it.
func (w *walker) skip(src []byte, i int) (int, bool) {
	end, err := w.b.parseAt(src, i, w.depth)
	return end, err == nil
}

// parseAt parses the one value at src[i], nested depth deep in its
// document, keeping the node storage of an earlier parse, and returns
// the index after it. Its nodes point into all of src.
func (t *tree) parseAt(src []byte, i, depth int) (int, error) {
	t.src = src
	p := parser{src: src, depth: depth, nodes: t.nodes[:0]}
	i, err := p.value(i)
	t.nodes = p.nodes
	return i, err
}
