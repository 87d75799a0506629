package shadow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/textproto"

	"strangler/config"
)

// HashKey is the secret key of the hash that replaces redacted values.
//
// The hash is HMAC-SHA256 under a key drawn at random once per process,
// cut to 64 bits: the same value hashes alike in every sample and curl
// command of that process, so a reader can tell that two redacted values
// are equal, yet without the key, which never leaves memory, nobody can
// reverse a hash or test guesses (a name, a date of birth) against it,
// and hashes from different processes cannot be joined.
type HashKey [32]byte

// NewHashKey draws a random key. Call it once per process and share the
// key between all comparers, so hashes agree across routes and reloads.
func NewHashKey() HashKey {
	var k HashKey
	rand.Read(k[:]) // never fails: crypto/rand crashes the program instead
	return k
}

// alwaysRedacted are the request and response headers that carry
// credentials; they are redacted whatever compare.redact says.
var alwaysRedacted = [...]string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization"}

// Redactor replaces sensitive values in samples and curl commands by
// their keyed hash. It is safe for concurrent use.
type Redactor struct {
	key HashKey
	// headers are canonical header names, params query parameter names.
	headers map[string]bool
	params  map[string]bool
	// paths holds the redacted JSON field paths.
	paths *pathNode
	// any is set when compare.redact names anything: a request body that
	// cannot be redacted field by field is then left out.
	any bool
}

// newRedactor builds a Redactor for compare.redact, already parsed. A path
// of a single key also names a header and a query parameter.
func newRedactor(key HashKey, redact []config.FieldPath) *Redactor {
	r := &Redactor{key: key, headers: map[string]bool{}, params: map[string]bool{}, any: len(redact) > 0}
	for _, h := range alwaysRedacted {
		r.headers[h] = true
	}
	rules := make([]pathRule, len(redact))
	for i, p := range redact {
		rules[i] = pathRule{path: p, flags: flagRedact}
		if len(p) == 1 && p[0].Kind == config.StepKey {
			r.headers[textproto.CanonicalMIMEHeaderKey(p[0].Key)] = true
			r.params[p[0].Key] = true
		}
	}
	r.paths = buildPaths(rules)
	return r
}

// Hash returns what stands for value in samples and curl commands:
// "redacted:" and 16 hex digits.
func (r *Redactor) Hash(value string) string { return string(r.appendHash(nil, []byte(value))) }

func (r *Redactor) appendHash(dst, value []byte) []byte {
	m := hmac.New(sha256.New, r.key[:])
	m.Write(value)
	var sum [sha256.Size]byte
	dst = append(dst, "redacted:"...)
	return hex.AppendEncode(dst, m.Sum(sum[:0])[:8])
}

// appendHashJSON appends the hash of node i of t as a JSON string. A
// string is hashed by its text, like a header value, so a name hashes
// alike in a body and in a header; anything else by its compact JSON.
func (r *Redactor) appendHashJSON(dst []byte, t *tree, i int32) []byte {
	var value []byte
	if n := &t.nodes[i]; n.kind == kindString {
		value = appendUnescaped(nil, t.str(i))
	} else {
		value = appendJSON(nil, t, i, nil, nil, 0)
	}
	dst = append(dst, '"')
	dst = r.appendHash(dst, value)
	return append(dst, '"')
}

// header reports whether the values of the header (a canonical name) are
// redacted.
func (r *Redactor) header(name string) bool { return r.headers[name] }
