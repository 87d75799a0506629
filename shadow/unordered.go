package shadow

import (
	"cmp"
	"slices"
)

// unordered compares two arrays as multisets. Elements are first tried in
// place, then the rest are matched through structural hashes; what stays
// unmatched is paired by likeness and reported at the primary's index
// (an element only the other side has, at the other's index).
func (w *walker) unordered(ai, bi int32, tn *pathNode) bool {
	et := tn.anyElem()
	if et.has(flagIgnore) {
		return true
	}
	na, nb := int(w.a.nodes[ai].count), int(w.b.nodes[bi].count)
	if na != nb && !w.record {
		return false // no element is ignored, so the sizes must agree
	}
	base := len(w.members)
	defer func() { w.members, w.used = w.members[:base], w.used[:base] }()
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
	fbase := len(w.free)
	defer func() { w.free = w.free[:fbase] }()
	for k := range n {
		w.free = append(w.free, int32(k))
	}
	for i := range na {
		if w.used[A+i] {
			continue
		}
		h := w.hash(&w.a, w.members[A+i], et)
		k, _ := slices.BinarySearchFunc(w.hashes[hbase:hbase+n], h, func(e elemHash, h uint64) int { return cmp.Compare(e.h, h) })
		// Elements matched already are jumped over, not looked at again
		// for each element: an array of a value repeated n times, in
		// another order on each side, took n²/8 looks (11 s of CPU for
		// a 160 KB answer, minutes at max_body, on every copy; found by
		// the red team). Elements whose hashes are equal but that differ
		// (a key twice, in another order) are tried maxProbes times per
		// element at most: past that it counts as unmatched. The stacks
		// are indexed afresh after each comparison, which may grow them.
		for probes := 0; probes < maxProbes; probes++ {
			if k = nextFree(w.free[fbase:fbase+n], k); k == n || w.hashes[hbase+k].h != h {
				break
			}
			if j := int(w.hashes[hbase+k].pos); w.same(w.members[A+i], w.members[B+j], et) {
				w.used[A+i], w.used[B+j] = true, true
				w.free[fbase+k] = int32(k + 1)
				break
			}
			k++
		}
	}
}

// maxProbes bounds the elements of equal hash but unequal value an
// element of an unordered array is compared with (see matchByHash).
const maxProbes = 16

// maxLikenessPairs bounds the pairs scored when pairing unmatched
// elements for the report; beyond it they pair in order.
const maxLikenessPairs = 256

// maxLikenessMembers bounds the members of an object likeness scores:
// it looks for each of one's members among the other's.
const maxLikenessMembers = 64

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
// 0 for anything but two objects, and for objects of more than
// maxLikenessMembers members.
func (w *walker) likeness(x, y int32, tn *pathNode) int {
	if w.a.nodes[x].kind != kindObject || w.b.nodes[y].kind != kindObject {
		return 0
	}
	if w.a.nodes[x].count > maxLikenessMembers || w.b.nodes[y].count > maxLikenessMembers {
		// Scored, two objects of 20,000 members each took 10 s of CPU
		// (found by the red team): such elements pair in order.
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
