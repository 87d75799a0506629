package phi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

// TestAHashLeavesNoCopyOfItsValue: the HMAC a hash took from the pool
// goes back holding nothing of the value it hashed (a path's parameter,
// a body's value: patient data), and not the buffer of a long one (a
// body's), which would be held for good.
func TestAHashLeavesNoCopyOfItsValue(t *testing.T) {
	key := NewKey()
	m := &mac{Hash: hmac.New(sha256.New, key[:])}
	for _, value := range []string{strings.Repeat("Jane Doe ", 200), "Jane Doe", strings.Repeat("Jane Doe ", 1000)} {
		macSum(m, "value", value)
		if bytes.Contains(m.in[:cap(m.in)], []byte("Jane")) {
			t.Errorf("after hashing %.20q, the pooled HMAC's buffer still holds the value", value)
		}
		if cap(m.in) > keptInput {
			t.Errorf("after hashing %d bytes, the pooled HMAC keeps a buffer of %d, more than %d", len(value), cap(m.in), keptInput)
		}
	}
}
