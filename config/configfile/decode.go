package configfile

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"strangler/config"
	"strangler/internal/human"
)

// decoder turns a YAML node tree into Go values field by field, so that
// every error carries the line of the offending value and unknown keys are
// caught. Placeholders are expanded in scalar values only, which keeps line
// numbers exact and means an environment value can never inject YAML.
type decoder struct {
	file   string
	expand *expander
	errs   config.Errors
	// pos maps a field path (routes[2].mode) to where its value is.
	pos map[string]config.Position
	// failed holds the paths that could not be decoded, so validation does
	// not pile a second, misleading error on them.
	failed map[string]bool
	// expanded are the values placeholders gave, each with the text it
	// was written as, so that messages show ${VAR}, never what it held
	// (hide).
	expanded []expansion
	// fields caches structFields.
	fields map[reflect.Type]map[string]int
	// values counts the values decoded, aliases and merge keys expanded,
	// up to maxValues.
	values int
	// aliased says an alias or a merge key was met, for the message
	// when values passes maxValues.
	aliased bool
	// open holds the anchored nodes being decoded: an alias to one of
	// them stands inside its anchor's own value.
	open map[*yaml.Node]bool
}

// enter opens the anchored node n, which at (an alias to it, or n) stands
// for, and reports whether it was not open already. An alias inside its
// own anchor's value (&a {<<: *a}) would stand for itself for ever: it is
// refused as that, not decoded until maxValues.
func (d *decoder) enter(n, at *yaml.Node, path string) bool {
	if n.Anchor == "" {
		return true
	}
	if d.open[n] {
		d.errorf(at, path, "the alias *%s stands inside the value of its own anchor &%s (line %d), so for itself for ever", n.Anchor, n.Anchor, n.Line)
		return false
	}
	if d.open == nil {
		d.open = map[*yaml.Node]bool{}
	}
	d.open[n] = true
	return true
}

// leave closes what enter opened.
func (d *decoder) leave(n *yaml.Node) { delete(d.open, n) }

// maxValues bounds how many values one file decodes to once its aliases
// and merge keys are expanded: each alias costs a few bytes and may stand
// for a mapping of aliases, so a file of a few hundred bytes can expand to
// billions of values ("billion laughs") and hold a config check or a
// reload for hours. Without aliases it bounds the errors too: a list of
// a million bad values in a 4 MiB file is a million messages. A real
// configuration has a few thousand (about 20 a route).
const maxValues = 50_000

// budget counts one value decoded at n and reports whether decoding goes
// on. Past maxValues it stops for good, with the one error that says why in
// place of any others: those are the same few errors repeated by the
// expansion, or the first of a flood.
func (d *decoder) budget(n *yaml.Node, path string) bool {
	d.values++
	if d.values == maxValues+1 {
		d.errs = nil
		if d.aliased {
			d.errorf(n, path, "aliases and merge keys (<<) expand the file to more than %d values; write the values out or use fewer aliases", maxValues)
		} else {
			d.errorf(n, path, "the file holds more than %d values, the most a configuration holds (it needs about 20 a route)", maxValues)
		}
	}
	return d.values <= maxValues
}

// expansion is a scalar whose placeholders were expanded: what it held
// after, and how the file wrote it.
type expansion struct{ value, written string }

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// shortForm is implemented by structs that may also be written as a single
// scalar standing for one of their fields, such as a backfill column
// `first_name: FirstName` for `first_name: {from: FirstName}`.
type shortForm interface {
	// shortField is the yaml name of the field a scalar fills.
	ShortField() string
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := config.Error{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
	d.failed[path] = true
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	at := n
	if n.Kind == yaml.AliasNode {
		n, d.aliased = n.Alias, true
	}
	if !d.enter(n, at, path) {
		return
	}
	defer d.leave(n)
	if !d.budget(n, path) {
		return
	}
	if path != "" {
		d.pos[path] = config.Position{Line: n.Line, Column: n.Column}
	}
	if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!str" {
		// Values are read as text: another YAML tool would decode
		// !!binary, take !!int 0x10 as 16 or hand !vault to a plugin.
		d.errorf(n, path, "the tag %s is not read here; write the value itself (a secret through ${VAR} or ${file:…})", n.Tag)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		d.decodeText(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Struct:
		if sf, ok := v.Addr().Interface().(shortForm); ok && n.Kind == yaml.ScalarNode {
			d.decode(n, v.Field(d.structFields(v.Type())[sf.ShortField()]), path)
			return
		}
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want %s, got %s", want, kindName(n))
		return "", false
	}
	s, err := d.expand.expand(n.Value)
	if errors.Is(err, errPastBound) {
		d.failed[path] = true
		return "", false
	}
	if err != nil {
		d.errorf(n, path, "%v", err)
		return "", false
	}
	if s != n.Value && s != "" {
		d.expanded = append(d.expanded, expansion{value: s, written: n.Value})
	}
	if bad := badCharacter(s); bad != "" {
		d.errorf(n, path, "holds %s; a value holds no control character but newline and tab", bad)
		return "", false
	}
	return s, true
}

// badCharacter describes the first character of s that no key or value
// may hold, or is "". The file's own bytes are checked by the YAML
// reader, but a double-quoted string writes any character as an escape
// ("\0", "\e[31m", "\uFEFF"), and a placeholder brings what the
// environment or a file holds: invalid UTF-8; a control character (NUL
// ends a string in C libraries and database drivers; ESC reprograms the
// terminal that shows a message) or one that turns the text around it
// (human.ActsOnTerminal), except newline and tab, which multi-line
// values such as a backfill query hold; U+FEFF, a byte order mark out
// of place, unseen where it stands. The description says where, never
// what the text is: it may be a secret.
func badCharacter(s string) string {
	for i, at := 0, 1; i < len(s); at++ {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("bytes that are not UTF-8 (at character %d)", at)
		case r == '\n' || r == '\t':
		case r == '\uFEFF':
			return fmt.Sprintf("a byte order mark, U+FEFF (at character %d)", at)
		case human.ActsOnTerminal(r):
			return fmt.Sprintf("the control character %U (at character %d)", r, at)
		}
		i += size
	}
	return ""
}

func (d *decoder) decodeText(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, "a single value")
	if !ok {
		return
	}
	if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
		d.errorf(n, path, "%v", err)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errorf(n, path, "want true or false, got %q", s)
		}
	case reflect.Int, reflect.Int64:
		s, ok := d.scalar(n, path, "a whole number")
		if !ok {
			return
		}
		i, err := config.ParseWhole(s)
		if err != nil {
			d.errorf(n, path, "want a whole number: %v", err)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := config.ParseDecimal(s)
		if err != nil {
			d.errorf(n, path, "want a number: %v", err)
			return
		}
		v.SetFloat(f)
	default:
		panic("config: no decoder for " + v.Type().String())
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of keys to values, got %s", kindName(n))
		return
	}
	fields := d.structFields(v.Type())
	// Merged mappings go first wherever the << key stands: the mapping's
	// own keys override them (YAML merge key semantics).
	if m := d.mergeKey(n, path); m != nil {
		d.merge(m, v, path)
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Tag == "!!merge" {
			continue
		}
		if key.Kind != yaml.ScalarNode {
			// An alias's Value is its anchor's name, not the key YAML
			// reads: {name: &mode p, *mode : modern} has a key p.
			d.errorf(key, path, "want field names as keys, got %s", kindName(key))
			continue
		}
		if bad := badCharacter(key.Value); bad != "" {
			d.errorf(key, path, "a key holds %s", bad)
			continue
		}
		sub := key.Value
		if path != "" {
			sub = path + "." + key.Value
		}
		if first, dup := seen[key.Value]; dup {
			d.errorf(key, sub, "appears twice (first on line %d)", first.Line)
			continue
		}
		seen[key.Value] = key
		idx, ok := fields[key.Value]
		switch {
		case ok:
			d.decode(val, v.Field(idx), sub)
		default:
			d.errorf(key, sub, "unknown field%s", suggest(key.Value, fields))
		}
	}
}

// decodeMap decodes a mapping with string keys, such as a backfill table's
// columns, where the keys are names the user chooses rather than fields.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of keys to values, got %s", kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	// As for structs, merged mappings go first and the own keys override;
	// of the merged mappings, the first wins (merge), so the last goes
	// first.
	if m := d.mergeKey(n, path); m != nil {
		d.aliased = true
		for _, m := range slices.Backward(mergedMappings(m)) {
			if !d.budget(m, path) || !d.enter(m, m, path) {
				return
			}
			d.decodeMap(m, v, path)
			d.leave(m)
		}
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Tag == "!!merge" {
			continue
		}
		sub := path + "." + key.Value
		if key.Kind != yaml.ScalarNode || key.Value == "" {
			d.errorf(key, path, "want names as keys, got %s", kindName(key))
			continue
		}
		if bad := badCharacter(key.Value); bad != "" {
			d.errorf(key, path, "a key holds %s", bad)
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.errorf(key, sub, "appears twice (first on line %d)", first.Line)
			continue
		}
		seen[key.Value] = key
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, sub)
		v.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), elem)
	}
}

// mergeKey returns the value of the mapping n's merge key (<<), or nil if
// it has none. A second << is an error like any other key written twice:
// which of the two would count is a guess.
func (d *decoder) mergeKey(n *yaml.Node, path string) *yaml.Node {
	var val, first *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		switch {
		case key.Tag != "!!merge":
		case first != nil:
			d.errorf(key, path, "the merge key << appears twice (first on line %d); merge a list instead: <<: [*a, *b]", first.Line)
		default:
			first, val = key, n.Content[i+1]
		}
	}
	return val
}

// mergedMappings are the mappings a merge key's value brings: one, or a
// list of them.
func mergedMappings(n *yaml.Node) []*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return []*yaml.Node{n}
	}
	var out []*yaml.Node
	for _, m := range n.Content {
		out = append(out, mergedMappings(m)...)
	}
	return out
}

// merge applies a YAML merge key (<<: *defaults) before the mapping's own
// keys, which then override what it brought. Of a list of mappings
// (<<: [*a, *b]) the first wins, as the merge key's specification says
// and other YAML tools read it, so they are applied last to first.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	d.aliased = true
	at := n
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if !d.budget(n, path) || !d.enter(n, at, path) {
		return
	}
	defer d.leave(n)
	if n.Kind == yaml.SequenceNode {
		for _, m := range slices.Backward(n.Content) {
			d.merge(m, v, path)
		}
		return
	}
	d.decodeStruct(n, v, path)
}

// structFields maps the yaml names of t's fields to their indexes, once
// per type: aliases decode one mapping many times.
func (d *decoder) structFields(t reflect.Type) map[string]int {
	if fields, ok := d.fields[t]; ok {
		return fields
	}
	fields := map[string]int{}
	if d.fields == nil {
		d.fields = map[reflect.Type]map[string]int{}
	}
	d.fields[t] = fields
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// suggest names the known field closest to a misspelt one.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		if d := editDistance(key, f); d < bestDist || d == bestDist && f < best {
			best, bestDist = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.AliasNode:
		return "an alias (*" + n.Value + ")"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		// Not the value itself: it is a secret as often as not where a
		// mapping or a list belongs (store_encryption: KEY instead of
		// {keys: [KEY]}, tokens: TOKEN), and the message goes to a
		// terminal, a CI log or the reload log. The line and column
		// point at it.
		if n.Value == "" {
			return "an empty value"
		}
		return "a single value"
	}
	return "nothing"
}

// minHidden is the shortest expanded value hide replaces where a message
// has it unquoted: shorter ones (true, 2s, 8080) would garble the words
// around them, and a secret that short guards nothing anyway. Quoted, as
// messages quote values, every value is replaced.
const minHidden = 6

// hide replaces in each message what a placeholder expanded to with the
// placeholder as the file wrote it: a message saying an environment
// variable or a mounted file holds no valid duration, address or name
// must not print the value, which may be a secret put in the wrong
// place (and ends up in the reload log, or a CI log).
func (d *decoder) hide(errs config.Errors) config.Errors {
	if len(d.expanded) == 0 || len(errs) == 0 {
		return errs
	}
	// Each value once (an alias expands its value again each time it is
	// used), quoted once: values may be MiB long, errors many.
	type hidden struct{ value, quoted, written string }
	var exp []hidden
	seen := map[expansion]bool{}
	for _, x := range d.expanded {
		if !seen[x] {
			seen[x] = true
			exp = append(exp, hidden{x.value, strconv.Quote(x.value), x.written})
		}
	}
	// Longest first, so a value inside another is not replaced in it.
	slices.SortFunc(exp, func(a, b hidden) int { return len(b.value) - len(a.value) })
	out := make(config.Errors, len(errs))
	for i, e := range errs {
		for _, x := range exp {
			e.Msg = strings.ReplaceAll(e.Msg, x.quoted, strconv.Quote(x.written))
			if len(x.value) >= minHidden {
				e.Msg = strings.ReplaceAll(e.Msg, x.quoted[1:len(x.quoted)-1], x.written)
				e.Msg = strings.ReplaceAll(e.Msg, x.value, x.written)
			}
		}
		out[i] = e
	}
	return out
}
