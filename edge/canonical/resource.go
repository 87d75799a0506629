package canonical

// Resource is the dual-write resource of a write to the canonical
// escaped path p: what it changes, the path it was routed on without the
// query or a trailing slash (RouteKey), as backends reading paths loosely
// read it (Fold), so that /records/4, /records/%34, /records/4/ and
// /records/4.json (Rails' and Spring's format suffix) are one resource.
// Writes to one resource reach the secondary in the order the primary
// answered them, whichever routes they came through: a PUT and a DELETE
// of /patients/42 are usually two routes, and were the DELETE to
// overtake a PUT still waiting for the secondary, the secondary would
// answer it 404 (a dead letter) and then create the patient. Taken for
// two resources, PUT /records/4 and PUT /records/4.json, which Rails
// applies to one record, were with the primary at once and could reach
// the secondary in the other order; taking two paths for one only makes
// their writes wait for each other.
//
// The router names the writes it journals by it, and the state store
// re-keys by it the writes an earlier release journaled: one rule.
func Resource(p string) string {
	key := RouteKey(p)
	// A path Fold refuses is refused at the edge (checkLoose): only a
	// Location can name one, which stays a resource of its own.
	if folded, err := Fold(key); err == nil {
		return folded
	}
	return key
}

// ResourceOf is the dual-write resource path names, as a request's path
// names its own (Resource); false when path has no canonical form.
func ResourceOf(path string) (string, bool) {
	p, err := Canonicalize(path)
	if err != nil {
		return "", false
	}
	return Resource(p.Escaped), true
}
