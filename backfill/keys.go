package backfill

import (
	"encoding/hex"
	"fmt"
	"strconv"
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

// reportKey is a source key of a table copied into a target table as its
// reports show it: a number as the target key stores it, where the
// driver's text differs (it writes DOUBLE 1234567 as 1.234567e+06, which
// a double precision, numeric or text target key holds as 1234567), so
// that the key a report names is the one to look for in modern.
func (t *table) reportKey(raw []byte) string {
	k := &t.cols[0]
	if !k.floatFromNumber() {
		return string(plainNumber(k.srcType, []byte(showKey(t.key, raw))))
	}
	bits, digits := 64, 15 // PostgreSQL's DBL_DIG and FLT_DIG
	if k.typ.base == "real" {
		bits, digits = 32, 6
	}
	f, err := strconv.ParseFloat(string(raw), bits)
	if err != nil {
		return showKey(t.key, raw)
	}
	// float8out and float4out write the shortest exact digits, with an
	// exponent below 1e-4 and from 1e15 (real: 1e6) on.
	e := strconv.FormatFloat(f, 'e', -1, bits)
	if exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:]); exp < -4 || exp >= digits {
		return e
	}
	return strconv.FormatFloat(f, 'f', -1, bits)
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
