package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrKeyLost means a value was encrypted with a key that is not among the
// configured store_encryption keys: it cannot be read until that key is
// configured again. Only the encrypted values are lost; the rest of the
// row (a write's route, state, times) is intact.
var ErrKeyLost = errors.New("encrypted with a key that is not in store_encryption.keys")

// keyring encrypts values at rest with AES-256-GCM: the first key seals,
// every key opens, so keys rotate without downtime. A nil keyring stores
// values in clear.
//
// A sealed value is self-describing: a version byte, the 8-byte id of the
// key that sealed it, a random 12-byte nonce, then the ciphertext and its
// tag. The additional data names the column and the row (the "aad"), so a
// sealed value moved to another row or column fails to open instead of
// passing for that row's.
type keyring struct {
	keys []sealKey
}

type sealKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

const (
	sealVersion = 1
	keyIDSize   = 8
	nonceSize   = 12
	sealHeader  = 1 + keyIDSize + nonceSize
)

// newKeyring returns the keyring for keys, the first sealing; nil for no
// keys.
func newKeyring(keys [][32]byte) (*keyring, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	k := &keyring{}
	for _, raw := range keys {
		block, err := aes.NewCipher(raw[:])
		if err != nil {
			return nil, fmt.Errorf("store: encryption key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("store: encryption key: %w", err)
		}
		k.keys = append(k.keys, sealKey{id: keyID(raw), aead: aead})
	}
	return k, nil
}

// keyID names a key without revealing it: a hash of it under a fixed
// label, cut to 8 bytes.
func keyID(key [32]byte) [keyIDSize]byte {
	sum := sha256.Sum256(append([]byte("strangler store encryption key id\x00"), key[:]...))
	var id [keyIDSize]byte
	copy(id[:], sum[:])
	return id
}

// seal encrypts plain under the first key; aad names where it is stored.
func (k *keyring) seal(aad string, plain []byte) []byte {
	key := k.keys[0]
	out := make([]byte, sealHeader, sealHeader+len(plain)+key.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], key.id[:])
	rand.Read(out[1+keyIDSize : sealHeader])
	return key.aead.Seal(out, out[1+keyIDSize:sealHeader], plain, []byte(aad))
}

// open decrypts a sealed value with whichever key sealed it.
func (k *keyring) open(aad string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealHeader || sealed[0] != sealVersion {
		return nil, errors.New("not an encrypted value of this release")
	}
	id := sealed[1 : 1+keyIDSize]
	if k != nil {
		for _, key := range k.keys {
			if string(key.id[:]) != string(id) {
				continue
			}
			plain, err := key.aead.Open(nil, sealed[1+keyIDSize:sealHeader], sealed[sealHeader:], []byte(aad))
			if err != nil {
				return nil, errors.New("it does not decrypt: it was altered, or moved from another row")
			}
			return plain, nil
		}
	}
	return nil, fmt.Errorf("key %s: %w", hex.EncodeToString(id), ErrKeyLost)
}

// current reports whether a sealed value is sealed with the first key:
// rekey leaves those alone.
func (k *keyring) current(sealed []byte) bool {
	return len(sealed) >= sealHeader && string(sealed[1:1+keyIDSize]) == string(k.keys[0].id[:])
}

// sealText is seal for a text column: the sealed bytes in base64.
func (k *keyring) sealText(aad, plain string) string {
	if plain == "" {
		return ""
	}
	return base64.RawStdEncoding.EncodeToString(k.seal(aad, []byte(plain)))
}

// openText is the inverse of sealText.
func (k *keyring) openText(aad, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", errors.New("not an encrypted value of this release")
	}
	plain, err := k.open(aad, b)
	return string(plain), err
}

// sealBytes is seal for a blob column; an empty value stays empty, so
// "nothing" needs no key to read.
func (k *keyring) sealBytes(aad string, plain []byte) []byte {
	if len(plain) == 0 {
		return []byte{}
	}
	return k.seal(aad, plain)
}

// openBytes is the inverse of sealBytes.
func (k *keyring) openBytes(aad string, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	return k.open(aad, sealed)
}

// currentText reports whether a text column's sealed value is sealed with
// the first key (an empty one needs nothing).
func (k *keyring) currentText(sealed string) bool {
	if sealed == "" {
		return true
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	return err == nil && k.current(b)
}

// currentBytes is currentText for a blob column.
func (k *keyring) currentBytes(sealed []byte) bool { return len(sealed) == 0 || k.current(sealed) }
