package shadow

import (
	"bytes"
	"cmp"
	"slices"
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
	// buf holds unescaped strings, kbuf an unescaped key, out a rendering.
	buf, kbuf, out []byte
}

type elemHash struct {
	h   uint64
	pos int32 // position in the array
}

// reset prepares the walker for a comparison.
func (w *walker) reset(red *Redactor, limit int, learn bool) {
	w.path, w.diffs, w.more = w.path[:0], nil, 0
	w.record, w.learn, w.limit, w.red = true, learn, limit, red
	w.members, w.used, w.hashes = w.members[:0], w.used[:0], w.hashes[:0]
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
		if numbersEqual(w.a.value(ai), w.b.value(bi)) {
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
		return nil
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
	base := len(w.members)
	defer func() { w.members, w.used = w.members[:base], w.used[:base] }()
	nb := int(w.b.nodes[bi].count)
	escaped := false
	for c, k := bi+1, 0; k < nb; c, k = w.b.nodes[c].next, k+1 {
		w.members = append(w.members, c)
		w.used = append(w.used, false)
		escaped = escaped || w.b.nodes[c].keyEsc
	}
	// Large objects are matched by binary search over b's members sorted
	// by key, so that a permuted object costs n log n, not n².
	sorted := nb > maxScannedMembers && !escaped
	if sorted {
		slices.SortStableFunc(w.members[base:base+nb], func(x, y int32) int { return bytes.Compare(w.b.key(x), w.b.key(y)) })
	}
	equal := true
	prev := -1
	na := int(w.a.nodes[ai].count)
	for c, k := ai+1, 0; k < na; c, k = w.a.nodes[c].next, k+1 {
		var j int
		if sorted && !w.a.nodes[c].keyEsc {
			j = w.searchMember(c, base, nb)
		} else {
			j = w.findMember(c, base, nb, prev)
		}
		if j >= 0 {
			w.used[base+j] = true
			prev = j
		}
		ct := w.childPath(tn, &w.a, c)
		if ct.has(flagIgnore) {
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
// member c, b's nb members at w.members[base:] being sorted by key.
func (w *walker) searchMember(c int32, base, nb int) int {
	key := w.a.key(c)
	j, _ := slices.BinarySearchFunc(w.members[base:base+nb], key, func(m int32, key []byte) int { return bytes.Compare(w.b.key(m), key) })
	for ; j < nb && bytes.Equal(w.b.key(w.members[base+j]), key); j++ {
		if !w.used[base+j] {
			return j
		}
	}
	return -1
}

// findMember finds the first unmatched member of b (among the nb at
// w.members[base:]) with the key of a's member c. It tries the members
// after and before the previous match first, so members in the same or
// in reverse order are found at once.
func (w *walker) findMember(c int32, base, nb, prev int) int {
	for _, j := range [2]int{prev + 1, prev - 1} {
		if j >= 0 && j < nb && !w.used[base+j] && w.keysEqual(c, w.members[base+j]) {
			return j
		}
	}
	for j := range nb {
		if !w.used[base+j] && w.keysEqual(c, w.members[base+j]) {
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
		if et.has(flagIgnore) {
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

// unordered compares two arrays as multisets. Elements are first tried in
// place, then the rest are matched through structural hashes; what stays
// unmatched is paired by likeness and reported at the primary's index
// (an element only the other side has, at the other's index).
func (w *walker) unordered(ai, bi int32, tn *pathNode) bool {
	et := tn.anyElem()
	if et.has(flagIgnore) {
		return true
	}
	base := len(w.members)
	defer func() { w.members, w.used = w.members[:base], w.used[:base] }()
	na, nb := int(w.a.nodes[ai].count), int(w.b.nodes[bi].count)
	for c, k := ai+1, 0; k < na; c, k = w.a.nodes[c].next, k+1 {
		w.members = append(w.members, c)
		w.used = append(w.used, false)
	}
	for c, k := bi+1, 0; k < nb; c, k = w.b.nodes[c].next, k+1 {
		w.members = append(w.members, c)
		w.used = append(w.used, false)
	}
	A, B := base, base+na // offsets of each side in the scratch stacks
	left := 0
	for i := range min(na, nb) {
		if w.same(w.members[A+i], w.members[B+i], et) {
			w.used[A+i], w.used[B+i] = true, true
		} else {
			left++
		}
	}
	left += max(na, nb) - min(na, nb)
	if left > 0 && na > 0 && nb > 0 {
		w.matchByHash(A, na, B, nb, et)
	}
	unmatched := false
	for k := range na + nb {
		if !w.used[base+k] {
			unmatched = true
			break
		}
	}
	if !unmatched {
		return true
	}
	if !w.record {
		return false
	}
	w.reportUnmatched(A, na, B, nb, et)
	return false
}

// matchByHash matches the elements still unmatched: each of a's looks up
// b's elements of equal hash, and a full comparison confirms.
func (w *walker) matchByHash(A, na, B, nb int, et *pathNode) {
	hbase := len(w.hashes)
	defer func() { w.hashes = w.hashes[:hbase] }()
	for j := range nb {
		if !w.used[B+j] {
			w.hashes = append(w.hashes, elemHash{h: w.hash(&w.b, w.members[B+j], et), pos: int32(j)})
		}
	}
	n := len(w.hashes) - hbase
	if n == 0 {
		return
	}
	slices.SortFunc(w.hashes[hbase:], func(x, y elemHash) int {
		return cmp.Or(cmp.Compare(x.h, y.h), cmp.Compare(x.pos, y.pos))
	})
	for i := range na {
		if w.used[A+i] {
			continue
		}
		h := w.hash(&w.a, w.members[A+i], et)
		k, _ := slices.BinarySearchFunc(w.hashes[hbase:hbase+n], h, func(e elemHash, h uint64) int { return cmp.Compare(e.h, h) })
		for ; k < n && w.hashes[hbase+k].h == h; k++ {
			j := int(w.hashes[hbase+k].pos)
			if !w.used[B+j] && w.same(w.members[A+i], w.members[B+j], et) {
				w.used[A+i], w.used[B+j] = true, true
				break
			}
		}
	}
}

// maxLikenessPairs bounds the pairs scored when pairing unmatched
// elements for the report; beyond it they pair in order.
const maxLikenessPairs = 256

// reportUnmatched records the unmatched elements of an unordered array,
// comparing each of a's with the most alike of b's, so that one changed
// element is reported by the field that changed.
func (w *walker) reportUnmatched(A, na, B, nb int, et *pathNode) {
	var la, lb int
	for k := range na {
		if !w.used[A+k] {
			la++
		}
	}
	for k := range nb {
		if !w.used[B+k] {
			lb++
		}
	}
	score := la*lb <= maxLikenessPairs
	next := 0 // without scoring, the first of b's not yet paired
	for i := range na {
		if w.used[A+i] {
			continue
		}
		best, bestScore := -1, -1
		if !score {
			for next < nb && w.used[B+next] {
				next++
			}
			if next < nb {
				best = next
			}
		}
		for j := range nb {
			if !score {
				break
			}
			if w.used[B+j] {
				continue
			}
			if s := w.likeness(w.members[A+i], w.members[B+j], et); s > bestScore {
				best, bestScore = j, s
			}
		}
		w.pushIndex(i)
		if best >= 0 {
			w.used[B+best] = true
			w.diff(w.members[A+i], w.members[B+best], et)
		} else {
			w.differ(w.members[A+i], -1, et)
		}
		w.pop()
	}
	for j := range nb {
		if !w.used[B+j] {
			w.pushIndex(j)
			w.differ(-1, w.members[B+j], et)
			w.pop()
		}
	}
}

// likeness counts the members of object x that object y has equal; it is
// 0 for anything but two objects.
func (w *walker) likeness(x, y int32, tn *pathNode) int {
	if w.a.nodes[x].kind != kindObject || w.b.nodes[y].kind != kindObject {
		return 0
	}
	n := 0
	for c, k := x+1, 0; k < int(w.a.nodes[x].count); c, k = w.a.nodes[c].next, k+1 {
		for d, l := y+1, 0; l < int(w.b.nodes[y].count); d, l = w.b.nodes[d].next, l+1 {
			if w.keysEqual(c, d) {
				if w.same(c, d, w.childPath(tn, &w.a, c)) {
					n++
				}
				break
			}
		}
	}
	return n
}

// hash is a structural hash of node i of t under tn: values the walk
// finds equal hash alike (key order, number spelling, string escapes and
// ignored fields make no difference).
func (w *walker) hash(t *tree, i int32, tn *pathNode) uint64 {
	if tn.has(flagIgnore) {
		return 0
	}
	n := &t.nodes[i]
	switch n.kind {
	case kindNull:
		return seedNull
	case kindFalse:
		return seedFalse
	case kindTrue:
		return seedTrue
	case kindNumber:
		return hashNumber(t.value(i))
	case kindString:
		return w.hashString(seedString, t.str(i), n.esc)
	case kindObject:
		var sum uint64
		for c, k := i+1, 0; k < int(n.count); c, k = t.nodes[c].next, k+1 {
			ct := w.childPath(tn, t, c)
			if ct.has(flagIgnore) {
				continue
			}
			kh := w.hashString(seedObject, t.key(c), t.nodes[c].keyEsc)
			sum += mix(kh, w.hash(t, c, ct))
		}
		return mix(seedObject, sum)
	}
	if tn.has(flagUnordered) {
		et := tn.anyElem()
		var sum uint64
		for c, k := i+1, 0; k < int(n.count); c, k = t.nodes[c].next, k+1 {
			sum += mix(seedSet, w.hash(t, c, et))
		}
		return mix(seedSet, sum)
	}
	h := uint64(seedArray)
	for c, k := i+1, 0; k < int(n.count); c, k = t.nodes[c].next, k+1 {
		et := tn.elem(k)
		if et.has(flagIgnore) {
			continue
		}
		h = mix(h, mix(uint64(k), w.hash(t, c, et)))
	}
	return h
}

func (w *walker) hashString(seed uint64, s []byte, esc bool) uint64 {
	if esc {
		w.buf = appendUnescaped(w.buf[:0], s)
		s = w.buf
	}
	return hashBytes(seed, s)
}
