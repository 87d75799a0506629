package config

import (
	"crypto/subtle"
	"fmt"
)

// A secret that should be random and plainly is not (all zeros, one
// block repeated, a count, a phrase where 32 random bytes belong) is
// unsafe: whoever tries the obvious values opens the store, forges force
// tokens or takes an admin role. `config check` refuses it; the facade's
// start only warns (Config.Unsafe), so that a facade that ran with one
// keeps running after an upgrade, and a store key in use keeps opening
// what it encrypted. As age and Vault refuse weak keys where they make
// them, the check is where a new configuration is made.
//
// The bounds below are far from what random values do: 32 random bytes
// take about 30 different values, and as many different steps (fewer
// than 16 once in 10^15 keys), a random token of 16 or more characters
// from an alphabet of 10 or more takes 4 or more of each (fewer once in
// 2 million tokens of 16 decimal digits, once in 10^9 of hex digits,
// less often the longer), and neither repeats a block of half its length
// or less (once in 10^8 at worst).
const (
	// minKeyVariety is the fewest different byte values, and different
	// steps between neighbouring bytes, a 32-byte key may have.
	minKeyVariety = 16
	// minTokenVariety is the fewest different characters, and different
	// steps between neighbouring characters, an admin token may have.
	minTokenVariety = 4
)

// notRandom says why b, a secret that should be random, is plainly not,
// or is "". unit names b's elements in the sentence (byte, character).
// It never quotes b, and takes time linear in its length: a token may
// come from a file of MiB.
func notRandom(b []byte, minVariety int, unit string) string {
	if p := period(b); p == 1 {
		return fmt.Sprintf("is one %s repeated", unit)
	} else if p > 0 {
		return fmt.Sprintf("repeats its first %d %ss", p, unit)
	}
	var isValue, isStep [256]bool
	values, steps := 0, 0
	for i, c := range b {
		if !isValue[c] {
			isValue[c] = true
			values++
		}
		if step := c - b[max(i-1, 0)]; i > 0 && !isStep[step] {
			isStep[step] = true
			steps++
		}
	}
	switch {
	case values < minVariety:
		return fmt.Sprintf("holds only %d different %ss", values, unit)
	case steps == 1:
		return fmt.Sprintf("counts up or down, one %s to the next always the same step", unit)
	case steps < minVariety:
		return fmt.Sprintf("counts up or down, one %s to the next in only %d different steps", unit, steps)
	}
	return ""
}

// period is the length of the shortest block b repeats (its last copy
// may be cut short), if that is at most half of b; else 0. It is b's
// length less its longest border (a start that is also its end), found
// by Knuth, Morris and Pratt's failure function.
func period(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	border := make([]int32, len(b))
	for i := 1; i < len(b); i++ {
		k := border[i-1]
		for k > 0 && b[i] != b[k] {
			k = border[k-1]
		}
		if b[i] == b[k] {
			k++
		}
		border[i] = k
	}
	if p := len(b) - int(border[len(b)-1]); p <= len(b)/2 {
		return p
	}
	return 0
}

// keyNotRandom says why k is plainly not 32 random bytes, or is "".
func keyNotRandom(k *EncryptionKey) string {
	if why := notRandom(k[:], minKeyVariety, "byte"); why != "" {
		return why
	}
	// 32 random bytes are all printable ASCII less than once in 10^13:
	// these are a password or a phrase (base64 or hex of "change-me-…")
	// where random bytes belong.
	for _, c := range k {
		if c < ' ' || c > '~' {
			return ""
		}
	}
	return "is text (every byte a printable character), a password or phrase where 32 random bytes belong"
}

// newKeyHint is how to make a key, for the messages refusing one.
const newKeyHint = "generate one (openssl rand -hex 32)"

// validateSecrets finds the secrets that are plainly not random, and a
// secret used for two purposes.
func (d *checker) validateSecrets(c *Config) {
	if c.Admin.Token != "" && tokenUnsafe(c.Admin.Token) == "" && len(c.Admin.Token) >= minTokenLength {
		d.checkToken("admin.token", c.Admin.Token, c)
	}
	for i, t := range c.Admin.Tokens {
		if tokenUnsafe(t.Token) == "" && len(t.Token) >= minTokenLength {
			d.checkToken(fmt.Sprintf("admin.tokens[%d].token", i), t.Token, c)
		}
	}
	if k := c.ForceTokenKey; k != nil {
		if why := keyNotRandom(k); why != "" {
			d.unsafeAt("force_token_key", "%s: anyone who tries it can forge force tokens and send requests to the backend they choose; %s", why, newKeyHint)
		}
	}
	if c.StoreEncryption == nil {
		return
	}
	for i := range c.StoreEncryption.Keys {
		at := fmt.Sprintf("store_encryption.keys[%d]", i)
		why := keyNotRandom(&c.StoreEncryption.Keys[i])
		switch {
		case why == "":
		case i == 0:
			d.unsafeAt(at, "%s, and it encrypts what the store keeps of patients' requests: %s, list it first, and keep this one after it until `strangler store rekey` has re-encrypted what it holds", why, newKeyHint)
		default:
			d.warnAt(at, "%s: it only decrypts what it once encrypted; once `strangler store rekey` has run under keys[0], remove it", why)
		}
	}
}

// checkToken refuses an admin token that is plainly not random, or that
// is written as a key the file uses for something else: one secret, one
// purpose, so that whoever holds a token (a viewer's, say) learns nothing
// that opens the store or signs force tokens.
func (d *checker) checkToken(at string, tok Secret, c *Config) {
	if why := notRandom([]byte(tok), minTokenVariety, "character"); why != "" {
		d.unsafeAt(at, "%s: too easy to guess; generate one (openssl rand -hex 32)", why)
	}
	var k EncryptionKey
	if k.UnmarshalText([]byte(tok)) != nil {
		return
	}
	if f := c.ForceTokenKey; f != nil && subtle.ConstantTimeCompare(k[:], f[:]) == 1 {
		d.unsafeAt(at, "is force_token_key: whoever holds the token could forge force tokens; give each its own secret")
	}
	if c.StoreEncryption == nil {
		return
	}
	for i, s := range c.StoreEncryption.Keys {
		if subtle.ConstantTimeCompare(k[:], s[:]) == 1 {
			d.unsafeAt(at, "is store_encryption.keys[%d]: whoever holds the token could read the store's patient data; give each its own secret", i)
		}
	}
}
