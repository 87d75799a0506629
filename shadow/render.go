package shadow

import "unicode/utf8"

// maxValueLen bounds a value rendered into a Diff; a sample shows where
// two answers differ, it does not archive them.
const maxValueLen = 512

// render writes node i of t compactly as JSON for a Diff, with the values
// at redacted paths replaced by their hash; "" for -1, an absent value.
func (w *walker) render(t *tree, i int32, tn *pathNode) string {
	if i < 0 {
		return ""
	}
	w.out = appendJSON(w.out[:0], t, i, tn, w.red, maxValueLen+1)
	return cut(w.out, maxValueLen)
}

// cut returns b as a string, shortened to at most limit bytes on a rune
// boundary and marked with "…" when it was longer.
func cut(b []byte, limit int) string {
	if len(b) <= limit {
		return string(b)
	}
	n := limit
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + "…"
}

// appendJSON appends node i of t to dst as compact JSON, hashing the values
// at paths flagged for redaction. It stops early once dst is longer than
// limit, if limit > 0. Strings and numbers are copied as written.
func appendJSON(dst []byte, t *tree, i int32, tn *pathNode, r *Redactor, limit int) []byte {
	if tn.has(flagRedact) && r != nil {
		return r.appendHashJSON(dst, t, i)
	}
	n := &t.nodes[i]
	switch n.kind {
	case kindObject:
		dst = append(dst, '{')
		for c, k := i+1, 0; k < int(n.count); c, k = t.nodes[c].next, k+1 {
			if limit > 0 && len(dst) > limit {
				return dst
			}
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, t.key(c)...)
			dst = append(dst, '"', ':')
			var ct *pathNode
			if tn != nil && tn.keys != nil {
				key := t.key(c)
				if t.nodes[c].keyEsc {
					key = appendUnescaped(nil, key)
				}
				ct = tn.child(key)
			}
			dst = appendJSON(dst, t, c, ct, r, limit)
		}
		return append(dst, '}')
	case kindArray:
		dst = append(dst, '[')
		for c, k := i+1, 0; k < int(n.count); c, k = t.nodes[c].next, k+1 {
			if limit > 0 && len(dst) > limit {
				return dst
			}
			if k > 0 {
				dst = append(dst, ',')
			}
			et := tn.elem(k)
			if tn.has(flagUnordered) {
				et = tn.anyElem()
			}
			dst = appendJSON(dst, t, c, et, r, limit)
		}
		return append(dst, ']')
	}
	return append(dst, t.value(i)...)
}
