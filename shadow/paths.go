package shadow

import (
	"strconv"
	"unicode/utf8"

	"strangler/domain"
)

// pathNode is a node of the trie the configured field paths are compiled
// into. The comparison walks it alongside the documents, so deciding
// whether a value is ignored, unordered or redacted costs one map lookup
// per object member under a configured path and nothing elsewhere.
type pathNode struct {
	// keys holds the member keys under a configured path. They are
	// usually few, and a linear scan then beats hashing the key; keyMap
	// indexes them when they are many.
	keys    []pathKey
	keyMap  map[string]*pathNode
	indexes map[int]*pathNode
	// any applies to every array element without an entry in indexes.
	any *pathNode
	// anyKey applies to every object member ({*}): alone to those
	// without an entry in keys, with their own rules to the others.
	anyKey *pathNode
	flags  pathFlags
	// below stands for every value under this one that no configured path
	// names, carrying the flags that cover a whole value (deepFlags); nil
	// when there are none.
	below *pathNode
}

type pathFlags uint8

const (
	flagIgnore pathFlags = 1 << iota
	flagUnordered
	flagRedact
	// flagKeep shows a value in clear in a sample (compare.keep_values).
	flagKeep
	// flagMap learns an object as a map in a schema (compare.maps).
	flagMap
)

// deepFlags are the flags that apply to everything below the path that
// has them: keeping a value keeps its fields, redacting it redacts them.
const deepFlags = flagRedact | flagKeep

func (n *pathNode) has(f pathFlags) bool { return n != nil && n.flags&f != 0 }

// maxScannedKeys is the most keys looked up by a linear scan.
const maxScannedKeys = 8

type pathKey struct {
	key  string
	node *pathNode
}

// child is the node for an object member; key is the decoded key, nil
// for a member no configured key names.
func (n *pathNode) child(key []byte) *pathNode {
	if n == nil {
		return nil
	}
	if n.keyMap != nil {
		if c, ok := n.keyMap[string(key)]; ok {
			return c
		}
		return n.otherKey()
	}
	for i := range n.keys {
		if n.keys[i].key == string(key) {
			return n.keys[i].node
		}
	}
	return n.otherKey()
}

// otherKey is the node for a member whose key no configured path names.
func (n *pathNode) otherKey() *pathNode {
	if n.anyKey != nil {
		return n.anyKey
	}
	return n.below
}

// elem is the node for element i of an array.
func (n *pathNode) elem(i int) *pathNode {
	if n == nil {
		return nil
	}
	if c, ok := n.indexes[i]; ok {
		return c
	}
	return n.anyElem()
}

// anyElem is the node for an element of an unordered array: positions
// mean nothing there, so only [*] paths apply.
func (n *pathNode) anyElem() *pathNode {
	if n == nil {
		return nil
	}
	if n.any != nil {
		return n.any
	}
	return n.below
}

// pathRule gives the values at a path some flags.
type pathRule struct {
	path  domain.FieldPath
	flags pathFlags
}

// buildPaths compiles rules into a trie. A [*] rule also applies below
// every [n] of the same array, so the walk never needs more than one node
// per level.
func buildPaths(rules []pathRule) *pathNode { return buildNode(rules, 0) }

// buildNode builds the node for rules under a path whose deep flags are
// inherited.
func buildNode(rules []pathRule, inherited pathFlags) *pathNode {
	if len(rules) == 0 {
		if inherited == 0 {
			return nil
		}
		return deepNode(inherited)
	}
	n := &pathNode{flags: inherited}
	byKey := map[string][]pathRule{}
	byIndex := map[int][]pathRule{}
	var anyRules, anyKeyRules []pathRule
	for _, r := range rules {
		if len(r.path) == 0 {
			n.flags |= r.flags
			continue
		}
		rest := pathRule{path: r.path[1:], flags: r.flags}
		switch step := r.path[0]; step.Kind {
		case domain.StepKey:
			byKey[step.Key] = append(byKey[step.Key], rest)
		case domain.StepIndex:
			byIndex[step.Index] = append(byIndex[step.Index], rest)
		case domain.StepAny:
			anyRules = append(anyRules, rest)
		case domain.StepAnyKey:
			anyKeyRules = append(anyKeyRules, rest)
		}
	}
	deep := n.flags & deepFlags
	for k, rs := range byKey {
		n.keys = append(n.keys, pathKey{key: k, node: buildNode(append(rs, anyKeyRules...), deep)})
	}
	n.anyKey = buildNode(anyKeyRules, deep)
	if len(n.keys) > maxScannedKeys {
		n.keyMap = make(map[string]*pathNode, len(n.keys))
		for _, k := range n.keys {
			n.keyMap[k.key] = k.node
		}
	}
	if len(byIndex) > 0 {
		n.indexes = make(map[int]*pathNode, len(byIndex))
		for i, rs := range byIndex {
			n.indexes[i] = buildNode(append(rs, anyRules...), deep)
		}
	}
	n.any = buildNode(anyRules, deep)
	if deep != 0 {
		n.below = deepNode(deep)
	}
	return n
}

// deepNode is the node of every value under one whose deep flags are f.
func deepNode(f pathFlags) *pathNode {
	d := &pathNode{flags: f}
	d.below = d
	return d
}

// seg is one step of the path to the values being compared.
type seg struct {
	// key is the raw (still escaped) member key when index < 0.
	key   []byte
	esc   bool
	index int32
}

// reservedRoots are the diff paths that are not JSON fields; a top-level
// JSON key spelt like one of them is quoted in a diff path.
var reservedRoots = [...]string{"status", "body", "header"}

// appendPath renders a diff path in the syntax of compare.ignore; with
// anyIndex every index is written [*], as noise fields are.
func appendPath(dst []byte, segs []seg, anyIndex bool) []byte {
	if len(segs) == 0 {
		return append(dst, "body"...)
	}
	for i, s := range segs {
		if s.index >= 0 {
			if anyIndex {
				dst = append(dst, "[*]"...)
			} else {
				dst = append(dst, '[')
				dst = strconv.AppendInt(dst, int64(s.index), 10)
				dst = append(dst, ']')
			}
			continue
		}
		key := s.key
		if s.esc {
			key = appendUnescaped(nil, key)
		}
		if !plainKey(key) || i == 0 && isReservedRoot(key) {
			dst = append(dst, `["`...)
			dst = append(dst, s.key...) // JSON string content is valid in the quotes
			dst = append(dst, `"]`...)
			continue
		}
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, key...)
	}
	return dst
}

func isReservedRoot(key []byte) bool {
	for _, r := range reservedRoots {
		if string(key) == r {
			return true
		}
	}
	return false
}

// plainKey reports whether a key can be written unquoted in a path; it
// mirrors config's rule.
func plainKey(key []byte) bool {
	if len(key) == 0 || !utf8.Valid(key) {
		return false
	}
	for _, c := range key {
		switch {
		case c <= ' ', c == 0x7f, c == '.', c == '[', c == ']', c == '"', c == '\\':
			return false
		}
	}
	return true
}
