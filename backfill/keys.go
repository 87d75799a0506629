package backfill

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Keys travel as the bytes MySQL sends: the ledger and the checkpoints
// keep them as bytea, exactly, whatever the key's type. People see them
// as text: binary keys in hex (0x…), others as they are.

// showKey is a source key as reports show it.
func showKey(kind keyKind, raw []byte) string {
	if kind == binaryKey {
		return "0x" + hex.EncodeToString(raw)
	}
	return string(raw)
}

// parseKey reads a key as people write it (--keys, read repair): binary
// keys in hex, with or without 0x.
func parseKey(kind keyKind, s string) ([]byte, error) {
	if kind != binaryKey {
		return []byte(s), nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return nil, fmt.Errorf("key %q: a binary key is written in hex, like 0x00ff", s)
	}
	return b, nil
}

// parseKeys reads a list of keys for table t.
func parseKeys(t *table, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := parseKey(t.key, k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		out[i] = b
	}
	return out, nil
}
