package config

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"strangler/domain"
)

// StoreEncryption encrypts what the state store keeps of requests: the
// journaled target, headers and body of each dual write, the primary's
// Location and new id, shadow samples, queued read-repair keys and the
// store's hash key.
type StoreEncryption struct {
	// Keys are AES-256 keys. The first encrypts; every key decrypts, so a
	// new key goes first and the old one stays listed until `strangler
	// store rekey` has re-encrypted everything under the new one.
	Keys []EncryptionKey `yaml:"keys"`
}

// EncryptionKey is 32 random bytes, written as 64 hex digits or in base64
// (openssl rand -hex 32, openssl rand -base64 32). It is never printed.
type EncryptionKey [32]byte

// UnmarshalText parses a key. The error never repeats the text: it may be
// a real key with a typo.
func (k *EncryptionKey) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	var raw []byte
	if len(s) == 2*len(k) {
		raw, _ = hex.DecodeString(s)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw != nil {
			break
		}
		if v, err := enc.DecodeString(s); err == nil && len(v) == len(k) {
			raw = v
		}
	}
	if len(raw) != len(k) {
		return fmt.Errorf("not a key: want 32 random bytes written as 64 hex digits or in base64 (openssl rand -hex 32), got %d characters", len(s))
	}
	copy(k[:], raw)
	return nil
}

// MarshalText hides the key.
func (k EncryptionKey) MarshalText() ([]byte, error) { return []byte("<redacted>"), nil }

// EncryptionKeys returns the state store's encryption keys, the encrypting
// one first; none when the file has no store_encryption section.
func (c *Config) EncryptionKeys() [][32]byte {
	if c.StoreEncryption == nil {
		return nil
	}
	keys := make([][32]byte, len(c.StoreEncryption.Keys))
	for i, k := range c.StoreEncryption.Keys {
		keys[i] = k
	}
	return keys
}

// validateEncryption checks store_encryption and warns about what the
// store would keep in clear without it.
func (d *checker) validateEncryption(c *Config) {
	if e := c.StoreEncryption; e != nil {
		if len(e.Keys) == 0 {
			d.errorAt("store_encryption.keys", "lists no key; leave store_encryption out to store in clear")
		}
		for i := range e.Keys {
			for j := range i {
				if subtle.ConstantTimeCompare(e.Keys[i][:], e.Keys[j][:]) == 1 {
					d.errorAt(fmt.Sprintf("store_encryption.keys[%d]", i), "repeats keys[%d]", j)
				}
			}
		}
		return
	}
	for i, r := range c.Routes {
		if r.Mode == domain.ModeDualWrite {
			d.warnAt(fmt.Sprintf("routes[%d].mode", i),
				"dual-write journals each write's path, headers and body until the secondary applied it, and without store_encryption they are stored in clear; add store_encryption: {keys: [...]}")
		}
		if r.ReadRepair {
			d.warnAt(fmt.Sprintf("routes[%d].read_repair", i),
				"read repair keeps the key of each record modern lacked (a record number, say) until the backfill copies it, and without store_encryption in clear; add store_encryption: {keys: [...]}")
		}
	}
	if c.Backfill == nil {
		return
	}
	for i, t := range c.Backfill.Tables {
		if t.TargetAPI != nil {
			d.warnAt(fmt.Sprintf("backfill.tables[%d].target_api", i),
				"the state store keeps each row the API refused (its body and the API's message) until it migrates, and without store_encryption in clear; add store_encryption: {keys: [...]}")
		}
	}
}
