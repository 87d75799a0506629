package domain

import "testing"

// TestScopedKeysAreOneSpacePerPrincipal: a key scoped by credentials is
// the same for the same credentials and differs for any other; without a
// credential it is the key as it was spelled before scopes, so keys kept
// before are still found; the request's fingerprint is left as it was.
func TestScopedKeysAreOneSpacePerPrincipal(t *testing.T) {
	k := NewIdempotencyKey("k1", "POST", "/records", []byte(`{}`))
	alice := k.Scoped([]string{"Bearer alice", ""})
	for _, c := range []struct {
		name  string
		other IdempotencyKey
		same  bool
	}{
		{"no credential named", k.Scoped(nil), false},
		{"no credential sent", k.Scoped([]string{"", ""}), false},
		{"the same credentials", k.Scoped([]string{"Bearer alice", ""}), true},
		{"another credential", k.Scoped([]string{"Bearer mallory", ""}), false},
		{"the credential in another part", k.Scoped([]string{"", "Bearer alice"}), false},
	} {
		if got := c.other.Key == alice.Key; got != c.same {
			t.Errorf("%s: same key as alice's: %v, want %v", c.name, got, c.same)
		}
	}
	if k.Scoped([]string{"", ""}) != k {
		t.Error("a key scoped by no credential changed: keys kept before scopes would be lost")
	}
	if alice.Fingerprint != k.Fingerprint {
		t.Error("scoping changed the request's fingerprint")
	}
}
