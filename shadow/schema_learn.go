package shadow

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/phi"
)

// SchemaKey names one of a route's schemas: a request method and the
// status of the answer.
type SchemaKey struct {
	Method string
	Status int
}

// SchemaRules are a route's compare paths as schema learning reads them:
// the values of keep_values paths are counted (unless redacted), ignore
// paths are not checked, maps paths are learned as maps whatever their
// keys look like.
type SchemaRules struct {
	paths   *pathNode
	maxBody int64
}

// NewSchemaRules compiles the schema rules of a compare section.
func NewSchemaRules(c config.Compare) (*SchemaRules, error) {
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("compare.%s: %s", errs[0].Field, errs[0].Msg)
	}
	c = c.Effective()
	var rules []pathRule
	for _, list := range []struct {
		paths []string
		flags pathFlags
	}{{c.Ignore, flagIgnore}, {c.Redact, flagRedact}, {c.KeepValues, flagKeep}, {c.Maps, flagMap}} {
		for _, s := range list.paths {
			if _, header := domain.KeptHeader(s); header && list.flags == flagKeep {
				continue
			}
			p, _ := domain.ParseFieldPath(s) // validated above
			rules = append(rules, pathRule{path: p, flags: list.flags})
		}
	}
	return &SchemaRules{paths: buildPaths(rules), maxBody: int64(c.MaxBody)}, nil
}

// SchemaLearner learns one route's schemas from legacy's answers and
// checks modern's answers against them. It keeps two copies: known, what
// this replica checks against (the store's schemas once loaded, plus what
// it learned since), and delta, what it learned and found since its last
// flush. It is safe for concurrent use.
type SchemaLearner struct {
	route string
	trees *sync.Pool

	mu     sync.Mutex
	known  map[SchemaKey]*Schema
	delta  map[SchemaKey]*Schema
	loaded bool
	// tried is when Load last asked the store.
	tried time.Time
	// params are the route's request parameters, which tell the keys
	// of its answers from data.
	params *routeParams
}

// Found is a departure of one modern answer from the schema.
type Found struct {
	Path string
	Kind string
}

// parse returns the parsed JSON body of r, or nil when there is none to
// learn from: not JSON, cut at the capture cap, or not valid.
func (l *SchemaLearner) parse(r Response, rules *SchemaRules) *tree {
	if r.Truncated || len(r.Body) == 0 || !isJSON(r.Header) {
		return nil
	}
	body, err := DecodeBody(r.Header, r.Body, rules.maxBody)
	if err != nil {
		return nil
	}
	t := l.trees.Get().(*tree)
	if t.parse(body) != nil {
		l.release(t)
		return nil
	}
	return t
}

// release returns a tree to the pool, unless it grew large.
func (l *SchemaLearner) release(t *tree) {
	t.src = nil
	if cap(t.nodes) <= maxPooledNodes {
		l.trees.Put(t)
	}
}

// schemas returns the known and delta schemas of key, making them; nil
// when the route has as many schemas as it may.
func (l *SchemaLearner) schemas(key SchemaKey) (known, delta *Schema) {
	known = l.known[key]
	if known == nil {
		if len(l.known) >= maxSchemaKeys {
			return nil, nil
		}
		known = newSchema(l.route, key)
		l.known[key] = known
	}
	delta = l.delta[key]
	if delta == nil {
		delta = newSchema(l.route, key)
		l.delta[key] = delta
	}
	return known, delta
}

// Learn learns from one of legacy's answers, to the request asked; it
// reports false when the answer has no JSON body to learn from.
func (l *SchemaLearner) Learn(key SchemaKey, asked Asked, r Response, rules *SchemaRules) bool {
	t := l.parse(r, rules)
	if t == nil {
		return false
	}
	defer l.release(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	known, delta := l.schemas(key)
	if known == nil {
		return false
	}
	vals := l.params.values(asked)
	for _, s := range [2]*Schema{known, delta} {
		lw := learnWalk{t: t, budget: maxShapes - s.Root.size()}
		if s == delta {
			// Only the delta's keys wait for evidence (withhold).
			lw.vals = vals
		}
		lw.observe(s.Root, 0, rules.paths, 0)
		s.Answers++
		s.Truncated = s.Truncated || lw.truncated
	}
	return true
}

// learnWalk adds one document to a shape tree.
type learnWalk struct {
	t         *tree
	budget    int
	truncated bool
	key       []byte
	// vals are the request's parameter values, by slot, that the
	// members seen are counted with; nil counts none.
	vals []uint64
}

func (lw *learnWalk) observe(sh *Shape, i int32, tn *pathNode, depth int) {
	t := lw.t
	typ := typeOf(t, i)
	sh.Types[typ]++
	switch typ {
	case typeObject:
		if depth >= maxSchemaDepth {
			lw.truncated = true
			return
		}
		n := &t.nodes[i]
		if sh.Map == nil && (tn.has(flagMap) || n.count > maxProperties || !lw.fieldNames(i)) {
			sh.toMap()
		}
		added := false
		for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
			if sh.Map != nil {
				lw.observe(sh.Map, c, tn.child(nil), depth+1)
				continue
			}
			key := lw.memberKey(c)
			child := sh.Properties[string(key)]
			if child == nil {
				if lw.budget <= 0 {
					lw.truncated = true
					continue
				}
				lw.budget--
				added = true
				child = &Shape{}
				if sh.Properties == nil {
					sh.Properties = map[string]*Shape{}
				}
				sh.Properties[string(key)] = child
			}
			if lw.vals != nil {
				if child.vary == nil {
					child.vary = &variation{}
				}
				child.vary.see(lw.vals)
			}
			lw.observe(child, c, tn.child(key), depth+1)
		}
		// Only a new key makes a map of a place (manyKeys walks every
		// key; once per object of an array of thousands is too many).
		if added && sh.manyKeys() {
			sh.toMap()
		}
	case typeArray:
		if depth >= maxSchemaDepth {
			lw.truncated = true
			return
		}
		n := &t.nodes[i]
		if n.count > 0 && sh.Items == nil {
			if lw.budget <= 0 {
				lw.truncated = true
				return
			}
			lw.budget--
			sh.Items = &Shape{}
		}
		for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
			lw.observe(sh.Items, c, tn.anyElem(), depth+1)
		}
	default:
		if tn.has(flagKeep) && !tn.has(flagRedact) && !sh.Many {
			countValue(sh, t, i)
		}
	}
}

// memberKey is the decoded key of member c; valid until the next call.
func (lw *learnWalk) memberKey(c int32) []byte {
	key := lw.t.key(c)
	if lw.t.nodes[c].keyEsc {
		lw.key = appendUnescaped(lw.key[:0], key)
		return lw.key
	}
	return key
}

// fieldNames reports whether every key of object i reads like a field
// name.
func (lw *learnWalk) fieldNames(i int32) bool {
	t := lw.t
	for c, k := i+1, int32(0); k < t.nodes[i].count; c, k = t.nodes[c].next, k+1 {
		if !phi.FieldName(lw.memberKey(c)) {
			return false
		}
	}
	return true
}

// countValue counts scalar i as a value of a keep_values path, keyed by
// its compact JSON, while the path looks like an enumeration: short
// values without control characters (which no enumeration has, and
// PostgreSQL's jsonb refuses as \u0000).
func countValue(sh *Shape, t *tree, i int32) {
	var v []byte
	control := false
	if t.nodes[i].kind == kindString {
		s := t.str(i)
		if t.nodes[i].esc {
			s = appendUnescaped(nil, s)
		}
		control = bytes.ContainsFunc(s, func(r rune) bool { return r < 0x20 })
		v = appendJSONString(nil, string(s))
	} else {
		v = bytes.Clone(t.value(i))
	}
	if _, ok := sh.Values[string(v)]; !ok && (control || len(v) > maxEnumValueLen || len(sh.Values) >= maxEnumValues) {
		sh.Values, sh.Many = nil, true
		return
	}
	if sh.Values == nil {
		sh.Values = map[string]int64{}
	}
	sh.Values[string(v)]++
}

// typeOf is the JSON type of node i: a number whose value is whole (1,
// 1.0, 1e2) is an integer, as JSON Schema counts them.
func typeOf(t *tree, i int32) jsonType {
	switch t.nodes[i].kind {
	case kindNull:
		return typeNull
	case kindTrue, kindFalse:
		return typeBoolean
	case kindString:
		return typeString
	case kindObject:
		return typeObject
	case kindArray:
		return typeArray
	}
	if domain.ParseNumber(t.value(i)).Integer() {
		return typeInteger
	}
	return typeNumber
}

// Check checks one of modern's answers against what legacy's answers to
// the same method with the same status looked like, and returns where it
// departs, each field path and kind once. A place is checked once legacy
// sent MinEvidence values there: a field legacy always sends must be
// there, and come with a type legacy sent (an integer where legacy sent
// numbers is fine). Nothing is checked under compare.ignore paths.
func (l *SchemaLearner) Check(key SchemaKey, r Response, rules *SchemaRules) []Found {
	t := l.parse(r, rules)
	if t == nil {
		return nil
	}
	defer l.release(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	known := l.known[key]
	if known == nil || known.Answers < MinEvidence {
		return nil
	}
	cw := checkWalk{t: t}
	cw.check(known.Root, 0, rules.paths, "", 0)
	_, delta := l.schemas(key)
	for _, s := range [2]*Schema{known, delta} {
		s.Checked++
		for _, f := range cw.found {
			d := s.Drift[f.Path]
			if d == nil {
				d = &Drift{}
				s.Drift[f.Path] = d
			}
			if f.Kind == DriftMissing {
				d.Missing++
			} else {
				d.Type++
				d.ModernTypes[f.typ]++
			}
		}
	}
	var out []Found
	for _, f := range cw.found {
		out = append(out, f.Found)
	}
	return out
}

// checkWalk checks one document against a shape tree.
type checkWalk struct {
	t     *tree
	found []found
	key   []byte
}

type found struct {
	Found
	typ jsonType
}

func (cw *checkWalk) note(path, kind string, typ jsonType) {
	if slices.ContainsFunc(cw.found, func(f found) bool { return f.Path == path && f.Kind == kind }) {
		return
	}
	cw.found = append(cw.found, found{Found{Path: path, Kind: kind}, typ})
}

func (cw *checkWalk) check(sh *Shape, i int32, tn *pathNode, path string, depth int) {
	if sh == nil || tn.has(flagIgnore) || depth > maxSchemaDepth || sh.Types.total() < MinEvidence {
		return
	}
	t := cw.t
	typ := typeOf(t, i)
	if sh.Types[typ] == 0 && !(typ == typeInteger && sh.Types[typeNumber] > 0) {
		cw.note(displayPath(path), DriftType, typ)
		return
	}
	n := &t.nodes[i]
	switch typ {
	case typeObject:
		if sh.Map != nil {
			for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
				cw.check(sh.Map, c, tn.child(nil), path+"{*}", depth+1)
			}
			return
		}
		always, present := 0, 0
		for _, p := range sh.Properties {
			if sh.alwaysSends(p) {
				always++
			}
		}
		for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
			key := cw.memberKey(c)
			p := sh.Properties[string(key)]
			if p == nil {
				continue
			}
			if sh.alwaysSends(p) {
				present++
			}
			cw.check(p, c, tn.child(key), memberPath(path, string(key)), depth+1)
		}
		if present < always {
			cw.missing(sh, i, tn, path)
		}
	case typeArray:
		for c, k := i+1, int32(0); k < n.count; c, k = t.nodes[c].next, k+1 {
			cw.check(sh.Items, c, tn.anyElem(), path+"[*]", depth+1)
		}
	}
}

// missing notes the members legacy always sends that object i lacks.
func (cw *checkWalk) missing(sh *Shape, i int32, tn *pathNode, path string) {
	t := cw.t
	for _, key := range sortedKeys(sh.Properties) {
		if !sh.alwaysSends(sh.Properties[key]) || tn.child([]byte(key)).has(flagIgnore) {
			continue
		}
		has := false
		for c, k := i+1, int32(0); k < t.nodes[i].count && !has; c, k = t.nodes[c].next, k+1 {
			has = string(cw.memberKey(c)) == key
		}
		if !has {
			cw.note(memberPath(path, key), DriftMissing, 0)
		}
	}
}

func (cw *checkWalk) memberKey(c int32) []byte {
	key := cw.t.key(c)
	if cw.t.nodes[c].keyEsc {
		cw.key = appendUnescaped(cw.key[:0], key)
		return cw.key
	}
	return key
}

// alwaysSends reports whether the objects at sh always had member p, in
// enough of them to say so.
func (sh *Shape) alwaysSends(p *Shape) bool {
	objs := sh.objects()
	return objs >= MinEvidence && p.Types.total() >= objs
}

func sortedKeys(m map[string]*Shape) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Schemas holds every route's learner by route name, so that what was
// learned outlives configuration reloads and flips. It is safe for
// concurrent use.
type Schemas struct {
	mu     sync.Mutex
	routes map[string]*SchemaLearner
	trees  sync.Pool
}

// NewSchemas returns an empty registry.
func NewSchemas() *Schemas {
	s := &Schemas{routes: map[string]*SchemaLearner{}}
	s.trees.New = func() any { return new(tree) }
	return s
}

// Route returns route name's learner, making it.
func (s *Schemas) Route(name string) *SchemaLearner {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.routes[name]
	if l == nil {
		l = &SchemaLearner{route: name, trees: &s.trees, known: map[SchemaKey]*Schema{}, delta: map[SchemaKey]*Schema{}, params: newRouteParams()}
		s.routes[name] = l
	}
	return l
}

func (s *Schemas) all() []*SchemaLearner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*SchemaLearner, 0, len(s.routes))
	for _, l := range s.routes {
		out = append(out, l)
	}
	return out
}

// String writes the key for messages: "GET 200".
func (k SchemaKey) String() string { return k.Method + " " + strconv.Itoa(k.Status) }
