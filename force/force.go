// Package force owns the tester override: a value for the
// X-Strangler-Force request header that sends requests on one route to
// one backend until it expires, signed with HMAC-SHA256 under the
// configuration's force_token_key so that no client can make one up. The
// admin API signs values; the router verifies them. Both use this
// package, so the format is decided in one place.
package force

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header is the request header a tester sends the value in. The facade
// strips it, like every X-Strangler-* header, before forwarding.
const Header = "X-Strangler-Force"

// Claim is what a value says: requests on Route go to Backend until
// Expires. ID names the value in the audit log and the log lines of the
// requests it forced; it is not secret.
type Claim struct {
	Route   string
	Backend string
	Expires time.Time
	ID      string
}

// Key signs and verifies values. It is safe for concurrent use.
type Key struct{ k []byte }

// NewKey returns the key for the configured 32 secret bytes.
func NewKey(secret [32]byte) *Key { return &Key{k: secret[:]} }

// Errors of Verify. Anything else wrong with a value is ErrMalformed.
var (
	// ErrMalformed: the value is not one this package makes.
	ErrMalformed = errors.New("force: malformed value")
	// ErrForged: the value is well formed but its signature is not this
	// key's: made up, altered, or signed under another key.
	ErrForged = errors.New("force: signature does not match")
	// ErrExpired: a genuine value whose time is up.
	ErrExpired = errors.New("force: expired")
)

// version prefixes every value, so the format can change without a new
// value being read the old way.
const version = "v1"

// maxLen bounds the values Verify looks at: a genuine one is far shorter
// (route names are short), and a long header is refused before any work.
const maxLen = 512

// NewID returns a random id for a claim.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Sign returns the header value of c, its expiry in whole seconds.
func (k *Key) Sign(c Claim) string {
	payload := strings.Join([]string{c.Route, c.Backend, strconv.FormatInt(c.Expires.Unix(), 10), c.ID}, "\n")
	enc := base64.RawURLEncoding
	return version + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(k.mac(payload))
}

// mac is the value's signature. The domain string keeps it from ever
// equalling an HMAC the same key could make for another purpose.
func (k *Key) mac(payload string) []byte {
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte("strangler force " + version + "\n"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks a header value and returns its claim, or ErrMalformed,
// ErrForged or ErrExpired. The signature is checked before the claim is
// read, and compared in constant time.
func (k *Key) Verify(value string, now time.Time) (Claim, error) {
	if len(value) > maxLen || !wellFormed(value) {
		return Claim{}, ErrMalformed
	}
	v, rest, ok := strings.Cut(value, ".")
	if !ok || v != version {
		return Claim{}, ErrMalformed
	}
	p64, s64, ok := strings.Cut(rest, ".")
	// Strict: other trailing bits would spell the same bytes another way.
	enc := base64.RawURLEncoding.Strict()
	payload, perr := enc.DecodeString(p64)
	sig, serr := enc.DecodeString(s64)
	if !ok || perr != nil || serr != nil || len(sig) != sha256.Size {
		return Claim{}, ErrMalformed
	}
	if !hmac.Equal(sig, k.mac(string(payload))) {
		return Claim{}, ErrForged
	}
	parts := strings.Split(string(payload), "\n")
	if len(parts) != 4 {
		return Claim{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Claim{}, ErrMalformed
	}
	c := Claim{Route: parts[0], Backend: parts[1], Expires: time.Unix(exp, 0).UTC(), ID: parts[3]}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// wellFormed reports whether a value holds only what Sign writes: the
// base64url alphabet and dots. The base64 decoder would skip a CR or LF,
// letting two spellings stand for one value.
func wellFormed(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
