package shadow

import "unicode/utf8"

// maxValueLen bounds a value rendered into a Diff; a sample shows where
// two answers differ, it does not archive them.
const maxValueLen = 512

// render writes node i of t compactly as JSON for a Diff, every value
// not kept (compare.keep_values) replaced by its placeholder; "" for -1,
// an absent value.
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

// appendJSON appends node i of t to dst as compact JSON. With a Redactor,
// a redacted value is replaced whole by its placeholder, and so is every
// other scalar not under a kept path: objects and arrays keep their shape
// and the keys that read like an API's field names (appendKey), their
// values do not.
// Without one, everything is copied. It stops early once dst is longer
// than limit, if limit > 0. Strings and numbers are copied as written.
func appendJSON(dst []byte, t *tree, i int32, tn *pathNode, r *Redactor, limit int) []byte {
	n := &t.nodes[i]
	if r != nil && (tn.has(flagRedact) || !tn.has(flagKeep) && n.kind != kindObject && n.kind != kindArray) {
		return r.appendPlaceholder(dst, t, i)
	}
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
			dst = r.appendKey(dst, t, c, tn.has(flagKeep))
			dst = append(dst, '"', ':')
			ct := tn.child(nil)
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
