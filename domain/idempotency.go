package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// IdempotencyKey is a client's Idempotency-Key on a dual write and the
// request it came with, as the store compares them: SHA-256 hashes, which
// the store keeps only as keyed digests (phi), so that neither the key
// (free text a client chose) nor the request is kept outside the journal,
// and a guess (an MRN sent as a key, a short body) cannot be tested
// against what is kept without the store's hash key.
type IdempotencyKey struct {
	// Key is the hash of the client's key.
	Key string
	// Fingerprint is the hash of the request's method, target and body:
	// the same key with another fingerprint is another request.
	Fingerprint string
}

// NewIdempotencyKey hashes a client's key and the request it came with.
// Two requests are the same when their methods, targets (canonical path
// and query, as forwarded) and bodies are byte for byte the same.
func NewIdempotencyKey(key, method, target string, body []byte) IdempotencyKey {
	k := sha256.Sum256([]byte(key))
	h := sha256.New()
	// Neither a method nor a request target can hold a NUL byte, so the
	// fields cannot run into each other.
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write(body)
	return IdempotencyKey{Key: hex.EncodeToString(k[:]), Fingerprint: hex.EncodeToString(h.Sum(nil))}
}

// Scoped returns k in the key space of the principal the credentials
// stand for (the values of the request parts idempotency_scope names, in
// order): two principals never share a key, so one that learns or
// guesses another's cannot read its write's answer back (a retry of the
// same request goes to the primary, which replays its answer) nor block
// its retries (409, 422), as Stripe scopes keys to an account. Without a
// credential (none named, or all absent) k stays in the one space of
// clients that send none, spelled as keys were before scopes. Only the
// hash is kept, and the store keeps a keyed digest of that: never a
// credential.
func (k IdempotencyKey) Scoped(credentials []string) IdempotencyKey {
	if !slices.ContainsFunc(credentials, func(c string) bool { return c != "" }) {
		return k
	}
	h := sha256.New()
	// No header or cookie value holds a NUL byte, nor does a key's hash:
	// the fields cannot run into each other, nor into an unscoped key.
	h.Write([]byte("scoped"))
	for _, c := range credentials {
		h.Write([]byte{0})
		h.Write([]byte(c))
	}
	h.Write([]byte{0})
	h.Write([]byte(k.Key))
	k.Key = hex.EncodeToString(h.Sum(nil))
	return k
}

// KeyUse is what the store's BeginKeyedWrite made of a write sent with a key.
type KeyUse int

const (
	// KeyJournaled: the write is journaled under the key, as sent: the
	// key's first use, or a retry of a write the primary did not apply.
	KeyJournaled KeyUse = iota + 1
	// KeyResumed: the key names a write whose primary outcome was lost
	// (unknown); it is sent again under its own journal entry, which is
	// sent once more, and the primary's answer to this retry settles it.
	KeyResumed
	// KeyApplied: the primary applied the key's write; the retry goes to
	// the primary (which may replay its answer) and is journaled no
	// second time.
	KeyApplied
	// KeyInFlight: the key's write is with the primary now.
	KeyInFlight
	// KeyReused: the key names another request (method, target or body).
	KeyReused
	// KeyMoved: the primary applied the key's write, or may have, and the
	// route's primary has changed since: the new primary has the write
	// from the journal (or will) under another key, and would apply a
	// retry again.
	KeyMoved
)

func (u KeyUse) String() string {
	switch u {
	case KeyJournaled:
		return "journaled"
	case KeyResumed:
		return "resumed"
	case KeyApplied:
		return "applied"
	case KeyInFlight:
		return "in flight"
	case KeyReused:
		return "reused"
	case KeyMoved:
		return "moved"
	}
	return fmt.Sprintf("KeyUse(%d)", int(u))
}

// KeyedWrite is what the store's BeginKeyedWrite did.
type KeyedWrite struct {
	Use KeyUse
	// ID is the journal entry whose outcome the caller records: the new
	// one (KeyJournaled) or the earlier one (KeyResumed); "" otherwise.
	ID string
}
