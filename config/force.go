package config

import "crypto/subtle"

// validateForceKey keeps the force token key apart from the store's
// encryption keys: one secret, one purpose, so that whoever may issue
// force tokens learns nothing that opens the store, and rotating one
// never breaks the other.
func (d *checker) validateForceKey(c *Config) {
	if c.ForceTokenKey == nil || c.StoreEncryption == nil {
		return
	}
	for i, k := range c.StoreEncryption.Keys {
		if subtle.ConstantTimeCompare(c.ForceTokenKey[:], k[:]) == 1 {
			d.errorAt("force_token_key", "repeats store_encryption.keys[%d]; give force tokens a key of their own (openssl rand -hex 32)", i)
			return
		}
	}
}

// ForceKey is the force token key's 32 bytes and whether one is set.
func (c *Config) ForceKey() ([32]byte, bool) {
	if c.ForceTokenKey == nil {
		return [32]byte{}, false
	}
	return *c.ForceTokenKey, true
}
