package shadow

import (
	"bytes"
	"slices"

	"strangler/domain"
)

// walker compares two parsed documents. One walker serves one comparison
// at a time; its scratch slices are kept between comparisons (the
// Comparer pools walkers), so a warm comparison allocates only for the
// differences it reports.
type walker struct {
	a, b tree
	// path is the way from the root to the values being compared.
	path []seg
	// record makes the walk go on after a difference and record it; when
	// false the walk stops at the first difference (used for trial
	// comparisons, like matching the elements of an unordered array).
	record bool
	// learn records paths with [*] for every index and no values.
	learn bool
	// depth is how deep matchDoc is in containers.
	depth int
	limit int
	diffs []Diff
	more  int
	red   *Redactor

	// Scratch stacks: a call pushes its entries above those of its
	// callers and truncates back before returning, so slices into them
	// are never held across a nested call.
	members []int32
	used    []bool
	hashes  []elemHash
	// free holds, for sorted candidates (an unordered array's by hash, a
	// large object's by key), the index of the first one from each on
	// that is not matched yet, or of one on the way (see nextFree).
	free []int32
	// buf holds unescaped strings, kbuf an unescaped key, out a rendering;
	// sk1 and sk2 the keys a large object's members are sorted by.
	buf, kbuf, out, sk1, sk2 []byte
}

type elemHash struct {
	h   uint64
	pos int32 // position in the array
}

// reset prepares the walker for a comparison.
func (w *walker) reset(red *Redactor, limit int, learn bool) {
	w.path, w.diffs, w.more = w.path[:0], nil, 0
	w.record, w.learn, w.limit, w.red = true, learn, limit, red
	w.members, w.used, w.hashes, w.free = w.members[:0], w.used[:0], w.hashes[:0], w.free[:0]
}

// diff compares node ai of a with node bi of b under the path node tn and
// reports whether they are equal.
func (w *walker) diff(ai, bi int32, tn *pathNode) bool {
	if tn.has(flagIgnore) {
		return true
	}
	na, nb := &w.a.nodes[ai], &w.b.nodes[bi]
	if na.kind != nb.kind {
		return w.differ(ai, bi, tn)
	}
	switch na.kind {
	case kindNumber:
		if domain.NumbersEqual(w.a.value(ai), w.b.value(bi)) {
			return true
		}
	case kindString:
		if w.stringsEqual(ai, bi) {
			return true
		}
	case kindObject, kindArray:
		// Equal bytes are equal whatever the rules below; this settles
		// most subtrees of documents that differ only in key order.
		if na.end-na.start == nb.end-nb.start && bytes.Equal(w.a.value(ai), w.b.value(bi)) {
			return true
		}
		switch {
		case na.kind == kindObject:
			return w.object(ai, bi, tn)
		case tn.has(flagUnordered):
			return w.unordered(ai, bi, tn)
		default:
			return w.array(ai, bi, tn)
		}
	default: // null, true, false: the kind is the value
		return true
	}
	return w.differ(ai, bi, tn)
}

// sameScalar reports whether a's node ai and b's node bi are the same
// scalar spelled the same way, which are equal whatever the rules: the
// members and elements of most documents compared, settled without the
// path bookkeeping of diff. False says nothing: diff decides.
func (w *walker) sameScalar(ai, bi int32) bool {
	na, nb := &w.a.nodes[ai], &w.b.nodes[bi]
	return na.kind == nb.kind && na.kind < kindObject &&
		string(w.a.src[na.start:na.end]) == string(w.b.src[nb.start:nb.end])
}

// differ records that the values at the current path differ; -1 stands
// for a value absent on that side. It returns false, for the caller to
// return.
func (w *walker) differ(ai, bi int32, tn *pathNode) bool {
	if !w.record {
		return false
	}
	if len(w.diffs) >= w.limit {
		w.more++
		return false
	}
	w.out = appendPath(w.out[:0], w.path, w.learn)
	d := Diff{Path: string(w.out)}
	if !w.learn {
		d.Primary = w.render(&w.a, ai, tn)
		d.Other = w.render(&w.b, bi, tn)
	}
	w.diffs = append(w.diffs, d)
	return false
}

func (w *walker) stringsEqual(ai, bi int32) bool {
	sa, sb := w.a.str(ai), w.b.str(bi)
	if !w.a.nodes[ai].esc && !w.b.nodes[bi].esc {
		return bytes.Equal(sa, sb)
	}
	w.buf = appendUnescaped(w.buf[:0], sa)
	n := len(w.buf)
	w.buf = appendUnescaped(w.buf, sb)
	return bytes.Equal(w.buf[:n], w.buf[n:])
}

func (w *walker) keysEqual(ai, bi int32) bool {
	na, nb := &w.a.nodes[ai], &w.b.nodes[bi]
	if !na.keyEsc && !nb.keyEsc {
		return na.keyEnd-na.keyStart == nb.keyEnd-nb.keyStart &&
			string(w.a.src[na.keyStart:na.keyEnd]) == string(w.b.src[nb.keyStart:nb.keyEnd])
	}
	ka, kb := w.a.key(ai), w.b.key(bi)
	w.buf = appendUnescaped(w.buf[:0], ka)
	n := len(w.buf)
	w.buf = appendUnescaped(w.buf, kb)
	return bytes.Equal(w.buf[:n], w.buf[n:])
}

// childPath is the path node of member c of t under tn.
func (w *walker) childPath(tn *pathNode, t *tree, c int32) *pathNode {
	if tn == nil || tn.keys == nil {
		return tn.child(nil)
	}
	key := t.key(c)
	if t.nodes[c].keyEsc {
		w.kbuf = appendUnescaped(w.kbuf[:0], key)
		key = w.kbuf
	}
	return tn.child(key)
}

func (w *walker) pushKey(t *tree, c int32) {
	w.path = append(w.path, seg{key: t.key(c), esc: t.nodes[c].keyEsc, index: -1})
}

func (w *walker) pushIndex(i int) { w.path = append(w.path, seg{index: int32(i)}) }

func (w *walker) pop() { w.path = w.path[:len(w.path)-1] }

// object compares two objects member by member, matching members by key
// whatever their order. Duplicate keys pair up in order of appearance.
func (w *walker) object(ai, bi int32, tn *pathNode) bool {
	base, fbase := len(w.members), len(w.free)
	defer func() { w.members, w.used, w.free = w.members[:base], w.used[:base], w.free[:fbase] }()
	nb := int(w.b.nodes[bi].count)
	for c, k := bi+1, 0; k < nb; c, k = w.b.nodes[c].next, k+1 {
		w.members = append(w.members, c)
		w.used = append(w.used, false)
	}
	// Large objects are matched by binary search over b's members sorted
	// by key, so that a permuted object costs n log n, not n²: also when
	// a key has escapes (they sort unescaped), and however often a key
	// repeats (matched members are jumped over). One escaped key made a
	// permuted object of 20,000 members take 5 s of CPU, and a key that
	// came 20,000 times 2.5 s, minutes at max_body, on every copy
	// (found by the red team).
	sorted := nb > maxScannedMembers
	if sorted {
		slices.SortStableFunc(w.members[base:base+nb], func(x, y int32) int {
			return bytes.Compare(w.bKey(x, &w.sk1), w.bKey(y, &w.sk2))
		})
		for j := range nb {
			w.free = append(w.free, int32(j))
		}
	}
	equal := true
	first := 0 // b's first member not yet matched
	na := int(w.a.nodes[ai].count)
	for c, k := ai+1, 0; k < na; c, k = w.a.nodes[c].next, k+1 {
		var j int
		if sorted {
			j = w.searchMember(c, base, nb, fbase)
		} else {
			j = w.findMember(c, base, nb, first)
		}
		if j >= 0 {
			w.used[base+j] = true
			for first < nb && w.used[base+first] {
				first++
			}
		}
		ct := w.childPath(tn, &w.a, c)
		if ct.has(flagIgnore) || j >= 0 && w.sameScalar(c, w.members[base+j]) {
			continue
		}
		w.pushKey(&w.a, c)
		var eq bool
		if j < 0 {
			eq = w.differ(c, -1, ct)
		} else {
			eq = w.diff(c, w.members[base+j], ct)
		}
		w.pop()
		if !eq {
			equal = false
			if !w.record {
				return false
			}
		}
	}
	for j := range nb {
		if w.used[base+j] {
			continue
		}
		c := w.members[base+j]
		ct := w.childPath(tn, &w.b, c)
		if ct.has(flagIgnore) {
			continue
		}
		w.pushKey(&w.b, c)
		w.differ(-1, c, ct)
		w.pop()
		equal = false
		if !w.record {
			return false
		}
	}
	return equal
}

// maxScannedMembers is the largest object whose members are matched by
// linear search.
const maxScannedMembers = 32

// searchMember finds the first unmatched member of b with the key of a's
// member c, b's nb members at w.members[base:] being sorted by key, and
// takes it: the next search jumps over it (w.free[fbase:] are theirs).
func (w *walker) searchMember(c int32, base, nb, fbase int) int {
	key := w.a.key(c)
	if w.a.nodes[c].keyEsc {
		w.kbuf = appendUnescaped(w.kbuf[:0], key)
		key = w.kbuf
	}
	j, _ := slices.BinarySearchFunc(w.members[base:base+nb], key, func(m int32, key []byte) int { return bytes.Compare(w.bKey(m, &w.sk1), key) })
	free := w.free[fbase : fbase+nb]
	if j = nextFree(free, j); j < nb && bytes.Equal(w.bKey(w.members[base+j], &w.sk1), key) {
		free[j] = int32(j + 1)
		return j
	}
	return -1
}

// bKey is the key of b's member m as keys compare: unescaped, in *buf,
// when it has escapes.
func (w *walker) bKey(m int32, buf *[]byte) []byte {
	key := w.b.key(m)
	if !w.b.nodes[m].keyEsc {
		return key
	}
	*buf = appendUnescaped((*buf)[:0], key)
	return *buf
}

// nextFree is the first index of free from k on whose candidate is not
// matched yet, len(free) if none: free[i] is i for such a candidate, and
// further on for a matched one. It shortens the way there for the next
// look (path halving, as in a disjoint-set forest), so that n lookups in
// a run of n equal candidates take about n steps, not n²/2.
func nextFree(free []int32, k int) int {
	for k < len(free) && int(free[k]) != k {
		next := int(free[k])
		if next < len(free) {
			free[k] = free[next]
		}
		k = next
	}
	return k
}

// findMember finds the first unmatched member of b (among the nb at
// w.members[base:], the first first of which are matched) with the key
// of a's member c: the first, so that duplicate keys pair up in order of
// appearance whatever the order of the others.
func (w *walker) findMember(c int32, base, nb, first int) int {
	na := &w.a.nodes[c]
	for j := first; j < nb; j++ {
		m := w.members[base+j]
		if nm := &w.b.nodes[m]; w.used[base+j] ||
			!na.keyEsc && !nm.keyEsc && na.keyEnd-na.keyStart != nm.keyEnd-nm.keyStart {
			continue // cheap: most keys differ in length
		}
		if w.keysEqual(c, m) {
			return j
		}
	}
	return -1
}

// array compares two arrays element by element.
func (w *walker) array(ai, bi int32, tn *pathNode) bool {
	na, nb := int(w.a.nodes[ai].count), int(w.b.nodes[bi].count)
	ca, cb := ai+1, bi+1
	equal := true
	for i := range max(na, nb) {
		x, y := int32(-1), int32(-1)
		if i < na {
			x, ca = ca, w.a.nodes[ca].next
		}
		if i < nb {
			y, cb = cb, w.b.nodes[cb].next
		}
		et := tn.elem(i)
		if et.has(flagIgnore) || x >= 0 && y >= 0 && w.sameScalar(x, y) {
			continue
		}
		w.pushIndex(i)
		var eq bool
		if x >= 0 && y >= 0 {
			eq = w.diff(x, y, et)
		} else {
			eq = w.differ(x, y, et)
		}
		w.pop()
		if !eq {
			equal = false
			if !w.record {
				return false
			}
		}
	}
	return equal
}

// same reports, without recording anything, whether a's node x equals b's
// node y.
func (w *walker) same(x, y int32, tn *pathNode) bool {
	record := w.record
	w.record = false
	eq := w.diff(x, y, tn)
	w.record = record
	return eq
}
