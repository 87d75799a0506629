// Package phi owns how the facade keeps protected health information out
// of what it stores and shows: the keyed hash that stands for a value (a
// path parameter, a query value, a field of a shadow sample, a journaled
// write's resource) wherever the value must be recognisable but not
// readable.
//
// The hash is HMAC-SHA256 under one secret key per deployment. The key
// lives in the state store (sealed with the store's encryption key when
// there is one), so every replica and every restart hashes a value alike:
// two samples of one mismatch on one patient group together, and writes
// to one resource queue in order. Without the key nobody can reverse a
// hash or test guesses (a name, a date of birth) against it.
package phi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// KeySize is the size of the hash key in bytes.
const KeySize = 32

// Hasher computes keyed hashes. A Hasher made by NewHasher(nil) has no key
// until SetKey: the state store that keeps the key may be unreachable when
// the facade starts. It is safe for concurrent use.
type Hasher struct {
	key atomic.Pointer[keyed]
}

// keyed is a key with a pool of HMACs under it: setting one up costs two
// SHA-256 blocks and a few allocations, more than hashing a short value.
type keyed struct {
	macs sync.Pool // of *mac
}

// mac is an HMAC with the buffers one hash uses: what it hashes is
// written in one piece and its sum read into one, as a slice passed to
// an interface's method escapes, and each one built per hash was an
// allocation (four a digest; a dual write journals three digests).
type mac struct {
	hash.Hash
	in, out []byte
}

// keptInput is the most of its input buffer a pooled mac keeps: a long
// value hashed once (a body's) is not held for good.
const keptInput = 4 << 10

// NewHasher returns a Hasher with key, or without a key yet for nil.
func NewHasher(key *[KeySize]byte) *Hasher {
	h := &Hasher{}
	if key != nil {
		h.SetKey(*key)
	}
	return h
}

// RandomHasher returns a Hasher with a key drawn at random, for a facade
// without a state store (its hashes agree within the process only) and
// for tests.
func RandomHasher() *Hasher {
	k := NewKey()
	return NewHasher(&k)
}

// NewKey draws a random hash key.
func NewKey() [KeySize]byte {
	var k [KeySize]byte
	rand.Read(k[:]) // never fails: crypto/rand crashes the program instead
	return k
}

// SetKey gives the Hasher its key.
func (h *Hasher) SetKey(key [KeySize]byte) {
	k := &keyed{}
	k.macs.New = func() any { return &mac{Hash: hmac.New(sha256.New, key[:])} }
	h.key.Store(k)
}

// Ready reports whether the Hasher has its key. Nothing hashed before is
// fit to keep.
func (h *Hasher) Ready() bool { return h.key.Load() != nil }

// unavailable stands for a hash computed without a key. Callers check
// Ready before keeping anything, so it is never stored; it only keeps a
// missing key from ever showing a value.
const unavailable = "h:unavailable"

// Hash returns what stands for value: "h:" and 16 hex digits (64 bits
// of HMAC-SHA256, plenty to tell values apart in a sample, too few to
// serve as a table of them).
func (h *Hasher) Hash(value string) string {
	sum, ok := keyedSum(h, "value", value)
	if !ok {
		return unavailable
	}
	var d [2 + 16]byte
	copy(d[:], "h:")
	hex.Encode(d[2:], sum[:8])
	return string(d[:])
}

// AppendHash appends the hash of value to dst.
func (h *Hasher) AppendHash(dst, value []byte) []byte {
	sum, ok := keyedSum(h, "value", value)
	if !ok {
		return append(dst, unavailable...)
	}
	dst = append(dst, "h:"...)
	return hex.AppendEncode(dst, sum[:8])
}

// Digest returns a 128-bit keyed digest of value for purpose, as "h:" and
// 32 hex digits: long enough that two values never share one, for keys a
// database orders or deduplicates by (a write's resource, a queued
// entity key). Different purposes give unrelated digests.
func (h *Hasher) Digest(purpose, value string) string {
	sum, ok := keyedSum(h, purpose, value)
	if !ok {
		return unavailable
	}
	var d [2 + 32]byte
	copy(d[:], "h:")
	hex.Encode(d[2:], sum[:16])
	return string(d[:])
}

// keyedSum is the HMAC of purpose, a zero byte and value under h's key;
// false without a key.
func keyedSum[V string | []byte](h *Hasher, purpose string, value V) ([sha256.Size]byte, bool) {
	var out [sha256.Size]byte
	k := h.key.Load()
	if k == nil {
		return out, false
	}
	m := k.macs.Get().(*mac)
	out = macSum(m, purpose, value)
	k.macs.Put(m)
	return out, true
}

// macSum is keyedSum with m, which it leaves holding no copy of value:
// the value may be patient data, and m waits in a pool.
func macSum[V string | []byte](m *mac, purpose string, value V) (out [sha256.Size]byte) {
	m.in = append(append(append(m.in[:0], purpose...), 0), value...)
	m.Reset()
	m.Write(m.in)
	m.out = m.Sum(m.out[:0])
	copy(out[:], m.out)
	clear(m.in)
	if cap(m.in) > keptInput {
		m.in = nil
	}
	return out
}

// Placeholder returns "{name:h:…}", or "{h:…}" without a name: what a
// path parameter, a query value or a body value becomes in a stored
// path or curl command. An operator replays the request by replacing
// each placeholder with the value it stands for.
func (h *Hasher) Placeholder(name, value string) string {
	if name != "" {
		return "{" + name + ":" + h.Hash(value) + "}"
	}
	return "{" + h.Hash(value) + "}"
}

// Path returns path with what the route pattern does not spell out
// replaced by placeholders: each parameter's segment becomes
// {name:h:…} (the pattern /patients/{id} makes /patients/MRN123 read
// /patients/{id:h:3f9a…}), a trailing wildcard {*:h:…}, and a segment
// beyond the pattern or unlike it (a created resource's new id) {h:…}.
// Segments are hashed decoded, so a value hashes alike in a path, a
// query and a body. pattern "" hashes every segment.
func (h *Hasher) Path(pattern, path string) string {
	var b strings.Builder
	for i, s := range pathSegments(pattern, path) {
		if i > 0 {
			b.WriteByte('/')
		}
		if s.param {
			b.WriteString(h.Placeholder(s.name, s.value))
		} else {
			b.WriteString(s.raw)
		}
	}
	return b.String()
}

// segment is one segment of a request path as Path and Params read it
// against a route pattern.
type segment struct {
	// raw is the segment as sent; param says the pattern does not spell
	// it out, name is its parameter's name ("*" for a trailing wildcard,
	// whose segment is the rest of the path; "" for one unlike the
	// pattern) and value its decoded text.
	raw, name, value string
	param            bool
}

// pathSegments splits path into its segments as pattern reads them: the
// one place that decides which segments are the request's data.
func pathSegments(pattern, path string) []segment {
	var pat []string
	if pattern != "" {
		pat = strings.Split(pattern, "/")
	}
	segs := strings.Split(path, "/")
	out := make([]segment, 0, len(segs))
	for i, s := range segs {
		p := ""
		if i < len(pat) {
			p = pat[i]
		}
		switch {
		case p == "*" && i == len(pat)-1:
			rest := strings.Join(segs[i:], "/")
			return append(out, segment{raw: rest, name: "*", value: unescapePath(rest), param: true})
		case s == "":
			// The root, a trailing slash, or an empty segment: nothing to hide.
			out = append(out, segment{})
		case s == p && !strings.ContainsAny(p, "{}"):
			out = append(out, segment{raw: s})
		default:
			out = append(out, segment{raw: s, name: paramName(p), value: unescapePath(s), param: true})
		}
	}
	return out
}

// paramName is the parameter a pattern segment consists of ("id" for {id}
// or {id:[0-9]+}), or "" when the segment is not exactly one parameter.
func paramName(seg string) string {
	if len(seg) < 3 || seg[0] != '{' || seg[len(seg)-1] != '}' || strings.Count(seg, "{") != 1 {
		return ""
	}
	name, _, _ := strings.Cut(seg[1:len(seg)-1], ":")
	return name
}

// Query returns a raw query with every value replaced by a placeholder:
// full=1&q=Jane becomes full={h:…}&q={h:…}. A name stays when it reads
// like a field name (FieldName), as it then names what the API takes,
// and is not one of the query's values; any other name is data (a
// record number, a date, a name with a space: ?MRN7730019=1) and is
// hashed as a value is. A part without "=" is hashed whole.
func (h *Hasher) Query(raw string) string {
	return h.query(raw, Params("", "?"+raw))
}

// query is Query with a name also hashed when it is one of values, the
// request's path parameters and query values.
func (h *Hasher) query(raw string, values []Param) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		if p == "" {
			continue
		}
		if k, v, ok := strings.Cut(p, "="); ok {
			if name := unescapeQuery(k); !FieldName(name) || isValue(name, values) {
				k = h.Placeholder("", name)
			}
			parts[i] = k + "=" + h.Placeholder("", unescapeQuery(v))
		} else {
			parts[i] = h.Placeholder("", unescapeQuery(p))
		}
	}
	return strings.Join(parts, "&")
}

// isValue reports whether s is one of values, without regard to case, as
// a record number may be spelt either way.
func isValue(s string, values []Param) bool {
	for _, v := range values {
		if strings.EqualFold(v.Value, s) {
			return true
		}
	}
	return false
}

// Target returns a request target (path and query) with its path
// parameters and query values replaced by placeholders, as Path and Query
// do; a query name that is one of the path parameters is hashed too.
func (h *Hasher) Target(pattern, target string) string {
	path, query, ok := strings.Cut(target, "?")
	out := h.Path(pattern, path)
	if ok {
		out += "?" + h.query(query, Params(pattern, target))
	}
	return out
}

// FieldName reports whether a name (an object key, a query name) reads
// like a field name an API defines rather than data used as a name: 1 to
// 64 bytes of ASCII letters, digits, _, -, $ and ., starting with a
// letter, _, $ or @ (JSON-LD's @id), with at most four digits in all. A
// record number (MRN7730019), an id, a date, a phone number, a name with
// a space, an e-mail address or anything beyond ASCII is not.
func FieldName[T ~string | ~[]byte](key T) bool {
	if len(key) == 0 || len(key) > 64 {
		return false
	}
	digits := 0
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$':
		case c == '@' && i == 0:
		case c >= '0' && c <= '9' && i > 0:
			digits++
		case (c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return digits <= 4
}

// A Param is a value a request carries that its route's pattern does not
// spell out, one Target hides: a path segment (Segment its index) or a
// query value (Segment -1; Name the query name, "" for a part without
// "=", which is a value whole).
type Param struct {
	Segment     int
	Name, Value string
}

// Params returns the values target carries that pattern does not spell
// out, decoded, in order: what Target replaces by placeholders (besides
// the query names it hashes, which are not values).
func Params(pattern, target string) []Param {
	path, query, _ := strings.Cut(target, "?")
	var out []Param
	for i, s := range pathSegments(pattern, path) {
		if s.param {
			out = append(out, Param{Segment: i, Name: s.name, Value: s.value})
		}
	}
	for p := range strings.SplitSeq(query, "&") {
		if p == "" {
			continue
		}
		if k, v, ok := strings.Cut(p, "="); ok {
			out = append(out, Param{Segment: -1, Name: k, Value: unescapeQuery(v)})
		} else {
			out = append(out, Param{Segment: -1, Value: unescapeQuery(p)})
		}
	}
	return out
}

func unescapePath(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	return s
}

func unescapeQuery(s string) string {
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}
