package shadow

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"strangler/phi"
)

// A learned response schema is what legacy's JSON answers to one route,
// method and status looked like: at each place in the document, how often
// a value was there and of which JSON types, and below it the members of
// objects and the elements of arrays. It never holds a value: only the
// values of compare.keep_values paths, which the configuration declares
// free of patient data, are counted, and only while they look like an
// enumeration. Object keys are kept only while they read like the field
// names of an API: an object whose keys are data (record numbers, ids,
// dates, names, e-mail addresses) or that has many distinct keys is
// learned as a map, its keys forgotten and its values learned as one.
// Which it is takes evidence: the keys of a place are stored (and so
// shown) only once MinEvidence objects were seen there (settled), so that
// a map keyed by surnames is a map before any of its keys is stored.

// jsonType is a JSON type, with whole numbers apart from other numbers as
// JSON Schema has them.
type jsonType uint8

const (
	typeNull jsonType = iota
	typeBoolean
	typeInteger
	typeNumber
	typeString
	typeObject
	typeArray
	numTypes
)

var typeNames = [numTypes]string{"null", "boolean", "integer", "number", "string", "object", "array"}

// typeCounts counts values by type; it is written as an object of the
// types seen: {"string": 12, "null": 1}.
type typeCounts [numTypes]int64

// MarshalJSON writes the non-zero counts by type name.
func (c typeCounts) MarshalJSON() ([]byte, error) {
	m := map[string]int64{}
	for t, n := range c {
		if n != 0 {
			m[typeNames[t]] = n
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes; an unknown type name is an
// error.
func (c *typeCounts) UnmarshalJSON(b []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = typeCounts{}
	for name, n := range m {
		t := slices.Index(typeNames[:], name)
		if t < 0 || n < 0 {
			return fmt.Errorf("schema: unknown type %q", name)
		}
		c[t] = n
	}
	return nil
}

// total is how many values the counts cover.
func (c *typeCounts) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Shape is what was learned of the values at one place in the answers.
type Shape struct {
	// Types counts the values seen here by JSON type.
	Types typeCounts `json:"types"`
	// Properties are an object's members by key; a member's presence is
	// its count of values against this shape's count of objects.
	Properties map[string]*Shape `json:"properties,omitempty"`
	// Map, when set, stands for every member of an object whose keys are
	// data: the keys are not kept, Properties is empty.
	Map *Shape `json:"map,omitempty"`
	// Items are an array's elements, all in one.
	Items *Shape `json:"items,omitempty"`
	// Values counts the values of a compare.keep_values path, keyed by
	// their compact JSON; Many says more than maxEnumValues came, and none
	// are kept any more.
	Values map[string]int64 `json:"values,omitempty"`
	Many   bool             `json:"many,omitempty"`
	// held counts, in a replica's delta, the objects at this place whose
	// keys Properties holds back (withhold) while their count is stored
	// already. It is never stored.
	held int64
	// vary is what a replica's delta saw of the requests whose answers
	// had this member (see Asked). It is never stored.
	vary *variation
}

// Schema is the shape learned from legacy's answers to one route, method
// and status, and what checking modern's answers against it found.
type Schema struct {
	Route  string `json:"route"`
	Method string `json:"method"`
	Status int    `json:"status"`
	// Answers counts the legacy answers learned from; Checked the modern
	// answers checked against them.
	Answers int64 `json:"answers"`
	Checked int64 `json:"checked"`
	// Truncated says a bound on the schema's size left places unlearned.
	Truncated bool `json:"truncated,omitempty"`
	// KeyRule is the rule its keys were stored by (keyRule); a schema
	// stored by an earlier rule loses its keys on load.
	KeyRule int    `json:"key_rule,omitempty"`
	Root    *Shape `json:"root"`
	// Drift counts modern's departures from the schema, by field path.
	Drift map[string]*Drift `json:"drift,omitempty"`
}

// Drift is how often modern's answers departed from the schema at one
// field path.
type Drift struct {
	// Missing counts answers without a field legacy always sends; Type
	// those where it came with a type legacy never sent there, which
	// ModernTypes counts.
	Missing     int64      `json:"missing,omitempty"`
	Type        int64      `json:"type,omitempty"`
	ModernTypes typeCounts `json:"modern_types"`
}

// The drift kinds, the kind label of strangler_schema_drift_total.
const (
	DriftMissing = "missing"
	DriftType    = "type"
)

// Bounds on what a schema keeps, so that a route with huge or highly
// variable answers cannot grow it without limit.
const (
	// maxShapes bounds the places one schema learns; past it, new places
	// are not learned and the schema says it is truncated.
	maxShapes = 512
	// maxProperties is the most distinct keys an object learns before it
	// is taken for a map.
	maxProperties = 64
	// minMapKeys is the fewest distinct keys a place is taken for a map
	// by for having more than mapKeysPerObject times as many keys as its
	// objects have on average.
	minMapKeys       = 8
	mapKeysPerObject = 4
	// maxEnumValues is the most distinct keep_values values counted.
	maxEnumValues = 16
	// maxEnumValueLen is the longest value counted; a longer one makes
	// the path not an enumeration.
	maxEnumValueLen = 64
	// maxSchemaDepth is how deep a document is learned.
	maxSchemaDepth = 32
	// maxSchemaKeys is how many method and status pairs a route learns.
	maxSchemaKeys = 8
	// MinEvidence is how many legacy values a place needs before modern's
	// answers are checked against it: fewer say too little.
	MinEvidence = 10
)

// keyRule is the rule keys are stored by: 1, only once they came with
// requests that tell them from data (variation.tells). Keys stored
// before it may be data that came with one request every time.
const keyRule = 1

// objects is how many objects the shape saw: what its properties'
// presence is counted against.
func (s *Shape) objects() int64 { return s.Types[typeObject] }

// size is the number of shapes in the tree under s, s included.
func (s *Shape) size() int {
	if s == nil {
		return 0
	}
	n := 1 + s.Map.size() + s.Items.size()
	for _, c := range s.Properties {
		n += c.size()
	}
	return n
}

// clone returns a deep copy of s.
func (s *Shape) clone() *Shape {
	if s == nil {
		return nil
	}
	c := &Shape{Types: s.Types, Map: s.Map.clone(), Items: s.Items.clone(), Values: maps.Clone(s.Values), Many: s.Many, held: s.held, vary: s.vary.clone()}
	if s.Properties != nil {
		c.Properties = make(map[string]*Shape, len(s.Properties))
		for k, v := range s.Properties {
			c.Properties[k] = v.clone()
		}
	}
	return c
}

// merge adds what o learned to s. New places are added while budget (the
// shapes the schema may still add) allows; it returns false if some were
// left out.
func (s *Shape) merge(o *Shape, budget *int) bool {
	if o == nil {
		return true
	}
	complete := true
	for t, n := range o.Types {
		s.Types[t] += n
	}
	s.held += o.held
	if o.vary != nil {
		if s.vary == nil {
			s.vary = &variation{}
		}
		s.vary.merge(o.vary)
	}
	s.Many = s.Many || o.Many
	if s.Many {
		s.Values = nil
	} else if len(o.Values) > 0 {
		if s.Values == nil {
			s.Values = map[string]int64{}
		}
		for v, n := range o.Values {
			s.Values[v] += n
		}
		if len(s.Values) > maxEnumValues {
			s.Values, s.Many = nil, true
		}
	}
	s.Items, complete = mergeChild(s.Items, o.Items, budget, complete)
	if o.Map != nil || s.Map != nil {
		s.toMap()
		m := o.Map
		if m == nil && o.Properties != nil {
			oc := o.clone()
			oc.toMap()
			m = oc.Map
		}
		s.Map, complete = mergeChild(s.Map, m, budget, complete)
		return complete
	}
	for k, oc := range o.Properties {
		if s.Properties == nil {
			s.Properties = map[string]*Shape{}
		}
		s.Properties[k], complete = mergeChild(s.Properties[k], oc, budget, complete)
	}
	if s.manyKeys() {
		s.toMap()
	}
	return complete
}

// manyKeys reports whether the objects at s have keys too many to be an
// API's field names: more than maxProperties, or at least minMapKeys and
// more than mapKeysPerObject times as many as an object has on average
// (an object keyed by patients: each has a few, every answer others). An
// API's optional fields rarely go so far; if they do, the place is
// learned as a map, which checks less but keeps no key.
func (s *Shape) manyKeys() bool {
	k := int64(len(s.Properties))
	if k > maxProperties {
		return true
	}
	if k < minMapKeys || s.objects() == 0 {
		return false
	}
	var members int64
	for _, p := range s.Properties {
		members += p.Types.total()
	}
	return k*s.objects() > mapKeysPerObject*members
}

// settled reports whether MinEvidence objects were seen at s, enough to
// tell field names from keys that are data, or it is a map, or has no
// keys.
func (s *Shape) settled() bool {
	return s.Map != nil || len(s.Properties) == 0 || s.objects() >= MinEvidence
}

// withhold takes out of s (a schema about to be stored: st, what was
// stored, with d, a replica's delta, merged in) the keys d brought to
// places where they are not evidence enough yet, and returns them as a
// shape for the replica's next delta. Keys are evidence enough at a place
// that st already has keys at (it settled), or where the replica itself
// saw MinEvidence objects (a replica does not publish its one answer's
// keys on the strength of others' objects, whose keys it does not know);
// and a key st does not have yet is evidence enough once it came with
// requests that tell it from data (variation.tells; the route's
// requests carried slots parameters).
// A withheld place keeps its counts in s; its keys come back with theirs
// once they are evidence enough, so that no count is lost or counted
// twice.
func (s *Shape) withhold(st, d *Shape, slots int) *Shape {
	if s == nil || d == nil {
		return nil
	}
	if s.Map == nil && len(d.Properties) > 0 && !(st != nil && len(st.Properties) > 0) && d.objects()+d.held < MinEvidence {
		held := &Shape{Properties: s.Properties, held: d.objects() + d.held}
		s.Properties = nil
		return held
	}
	var held *Shape
	hold := func() *Shape {
		if held == nil {
			held = &Shape{}
		}
		return held
	}
	holdKey := func(k string, h *Shape) {
		if hold().Properties == nil {
			held.Properties = map[string]*Shape{}
		}
		held.Properties[k] = h
	}
	for k, c := range s.Properties {
		dk := d.Properties[k]
		if dk != nil && st.property(k) == nil && !dk.vary.tells(slots) {
			// The whole member waits, counts and all: the place's
			// objects are stored, the member's presence comes with it.
			holdKey(k, c)
			delete(s.Properties, k)
			continue
		}
		if h := c.withhold(st.property(k), dk, slots); h != nil {
			holdKey(k, h)
		}
	}
	if h := s.Map.withhold(st.mapShape(), d.Map, slots); h != nil {
		hold().Map = h
	}
	if h := s.Items.withhold(st.items(), d.Items, slots); h != nil {
		hold().Items = h
	}
	return held
}

// property, mapShape and items are s's member k, map and elements; nil
// for a nil s.
func (s *Shape) property(k string) *Shape {
	if s == nil {
		return nil
	}
	return s.Properties[k]
}

func (s *Shape) mapShape() *Shape {
	if s == nil {
		return nil
	}
	return s.Map
}

func (s *Shape) items() *Shape {
	if s == nil {
		return nil
	}
	return s.Items
}

// sanitize applies this release's rules to a stored shape that an
// earlier one wrote: keys that are data, too many keys, and keys of a
// place that has not settled are not kept.
func (s *Shape) sanitize() {
	if s == nil {
		return
	}
	if s.Map == nil && len(s.Properties) > 0 {
		switch {
		case !s.settled():
			s.Properties = nil
		case s.manyKeys() || slices.ContainsFunc(slices.Collect(maps.Keys(s.Properties)), func(k string) bool { return !phi.FieldName(k) }):
			s.toMap()
		}
	}
	for _, c := range s.Properties {
		c.sanitize()
	}
	s.Map.sanitize()
	s.Items.sanitize()
}

// forgetKeys drops every key under s, keeping the counts of the places
// that had them: they are learned again.
func (s *Shape) forgetKeys() {
	if s == nil {
		return
	}
	s.Properties = nil
	s.Map.forgetKeys()
	s.Items.forgetKeys()
}

// mergeChild merges o into the child s, making s if there is budget.
func mergeChild(s, o *Shape, budget *int, complete bool) (*Shape, bool) {
	if o == nil {
		return s, complete
	}
	if s == nil {
		if *budget < o.size() {
			return nil, false
		}
		*budget -= o.size()
		return o.clone(), complete
	}
	ok := s.merge(o, budget)
	return s, complete && ok
}

// toMap makes s a map: its properties' shapes become one, their keys are
// dropped.
func (s *Shape) toMap() {
	if s.Map == nil {
		s.Map = &Shape{}
	}
	unlimited := maxShapes * 2
	for _, c := range s.Properties {
		s.Map.merge(c, &unlimited)
	}
	s.Properties = nil
}

// newSchema returns an empty schema.
func newSchema(route string, key SchemaKey) *Schema {
	return &Schema{Route: route, Method: key.Method, Status: key.Status, KeyRule: keyRule, Root: &Shape{}, Drift: map[string]*Drift{}}
}

// Key is the schema's method and status.
func (s *Schema) Key() SchemaKey { return SchemaKey{Method: s.Method, Status: s.Status} }

// clone returns a deep copy of s.
func (s *Schema) clone() *Schema {
	c := *s
	c.Root = s.Root.clone()
	c.Drift = make(map[string]*Drift, len(s.Drift))
	for p, d := range s.Drift {
		dc := *d
		c.Drift[p] = &dc
	}
	return &c
}

// merge adds what o learned and found to s, within the bounds.
func (s *Schema) merge(o *Schema) {
	s.Answers += o.Answers
	s.Checked += o.Checked
	budget := maxShapes - s.Root.size()
	if !s.Root.merge(o.Root, &budget) {
		s.Truncated = true
	}
	s.Truncated = s.Truncated || o.Truncated
	for p, d := range o.Drift {
		cur := s.Drift[p]
		if cur == nil {
			cur = &Drift{}
			s.Drift[p] = cur
		}
		cur.Missing += d.Missing
		cur.Type += d.Type
		for t, n := range d.ModernTypes {
			cur.ModernTypes[t] += n
		}
	}
	s.pruneDrift()
}

// pruneDrift drops drift at paths the schema no longer has (a place that
// became a map): the drift map stays bounded by the schema's size.
func (s *Schema) pruneDrift() {
	if len(s.Drift) == 0 {
		return
	}
	places := map[string]bool{}
	s.Root.walk("", func(path string, _, _ *Shape) { places[displayPath(path)] = true })
	for p := range s.Drift {
		if !places[p] {
			delete(s.Drift, p)
		}
	}
}

// walk calls f for s and every shape below it with its field path and its
// parent (nil for the root).
func (s *Shape) walk(path string, f func(path string, sh, parent *Shape)) {
	var rec func(path string, sh, parent *Shape)
	rec = func(path string, sh, parent *Shape) {
		f(path, sh, parent)
		for _, k := range slices.Sorted(maps.Keys(sh.Properties)) {
			rec(memberPath(path, k), sh.Properties[k], sh)
		}
		if sh.Map != nil {
			rec(path+"{*}", sh.Map, sh)
		}
		if sh.Items != nil {
			rec(path+"[*]", sh.Items, sh)
		}
	}
	rec(path, s, nil)
}

// memberPath is the field path of member key under path, written like
// compare.ignore's paths; "{*}" stands for any member of a map.
func memberPath(path, key string) string {
	if strings.ContainsAny(key, `.[]"{}*`) || path == "" && isReservedRoot([]byte(key)) {
		b, _ := json.Marshal(key)
		return path + "[" + string(b) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// displayPath is a field path as listings show it: "body" for the root.
func displayPath(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// MarshalSchema encodes a schema for the state store.
func MarshalSchema(s *Schema) ([]byte, error) { return json.Marshal(s) }

// UnmarshalSchema decodes a stored schema, checking its bounds: a
// document that breaks them was not written by this package.
func UnmarshalSchema(b []byte) (*Schema, error) {
	var s Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if s.Root == nil {
		s.Root = &Shape{}
	}
	if s.Drift == nil {
		s.Drift = map[string]*Drift{}
	}
	for p, d := range s.Drift {
		if d == nil {
			delete(s.Drift, p)
		}
	}
	if n := s.Root.size(); n > maxShapes {
		return nil, fmt.Errorf("schema: %d places, more than %d", n, maxShapes)
	}
	if s.KeyRule < keyRule {
		s.Root.forgetKeys()
		s.KeyRule = keyRule
	}
	s.Root.sanitize()
	s.pruneDrift()
	return &s, nil
}
