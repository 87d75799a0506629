package config_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/config/configfile"
)

// keyHex is 32 bytes as a configuration writes a key.
func keyHex(b []byte) string { return hex.EncodeToString(b) }

// randomKey is a key as openssl rand -hex 32 makes one.
func randomKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return keyHex(b)
}

// counting is 32 bytes from..from+31.
func counting(from byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// notice finds the one entry of list at field.
func notice(list config.Errors, field string) (config.Error, bool) {
	for _, e := range list {
		if e.Field == field {
			return e, true
		}
	}
	return config.Error{}, false
}

// TestWhatTurnsAProtectionOffIsUnsafe: a secret that is plainly not
// random (all zeros, a block repeated, a count, a phrase where random
// bytes belong), a secret used for two purposes and a trusted proxy
// network of every address were taken without a word. Each is now in
// Unsafe (config check refuses it, the start warns) at its line and
// field, saying why, never quoting the secret; the file still loads, as
// a running facade's must after an upgrade.
func TestWhatTurnsAProtectionOffIsUnsafe(t *testing.T) {
	good := randomKey(t)
	zero := keyHex(make([]byte, 32))
	textKey := base64.StdEncoding.EncodeToString([]byte("dev-store-key-change-me-dev-only"))
	fifteen := make([]byte, 32) // 15 values, in no pattern
	for i := range fifteen {
		fifteen[i] = byte(i * 7 % 15 * 17)
	}
	fifteen[31] = 0 // not a period of 15
	for _, tc := range []struct {
		name, yaml, field, want, secret string
		at                              int // the field's line in yaml
	}{
		{"an all-zero force_token_key", "force_token_key: " + zero + "\n", "force_token_key", "is one byte repeated", zero, 1},
		{"a force_token_key of one block repeated", "force_token_key: " + strings.Repeat("c0ffee11", 8) + "\n", "force_token_key", "repeats its first 4 bytes", "c0ffee11", 1},
		{"a force_token_key that counts", "force_token_key: " + keyHex(counting(0x40)) + "\n", "force_token_key", "counts up or down, one byte to the next always the same step", keyHex(counting(0x40)), 1},
		{"a force_token_key of one half repeated", "force_token_key: " + keyHex(append(counting(0x40)[:16:16], counting(0x40)[:16]...)) + "\n", "force_token_key", "repeats its first 16 bytes", keyHex(counting(0x40)[:16]), 1},
		{"a force_token_key of few values", "force_token_key: " + keyHex(fifteen) + "\n", "force_token_key", "holds only 15 different bytes", keyHex(fifteen), 1},
		{"a phrase for the store's key", "store_encryption: { keys: [" + textKey + "] }\n", "store_encryption.keys[0]", "is text", textKey, 1},
		{"an all-zero encrypting store key", "store_encryption: { keys: [" + zero + ", " + good + "] }\n", "store_encryption.keys[0]", "store rekey", zero, 1},
		{"an admin token of one character", "admin: { token: \"0000000000000000\" }\n", "admin.token", "is one character repeated", "0000000000000000", 1},
		{"an admin token of a repeated block", "admin: { tokens: [{ name: a, token: \"abc1abc1abc1abc1ab\", role: viewer }] }\n", "admin.tokens[0].token", "repeats its first 4 characters", "abc1abc1", 1},
		{"an admin token of two characters", "admin: { tokens: [{ name: a, token: \"aaaaaaaaaaaaaaab\", role: viewer }] }\n", "admin.tokens[0].token", "holds only 2 different characters", "aaaaaaaaaaaaaaab", 1},
		{"an admin token that counts", "admin: { tokens: [{ name: a, token: \"abcdefghijklmnopqrst\", role: viewer }] }\n", "admin.tokens[0].token", "counts up or down, one character to the next always the same step", "abcdefghijklmnopqrst", 1},
		{"an admin token that is the store's key", "store_encryption: { keys: [" + good + "] }\nadmin: { token: \"" + good + "\" }\n", "admin.token", "is store_encryption.keys[0]", good, 2},
		{"an admin token that is the force token key", "force_token_key: " + good + "\nadmin: { tokens: [{ name: a, token: \"" + good + "\", role: operator }] }\n", "admin.tokens[0].token", "is force_token_key", good, 2},
		{"every IPv4 address as trusted proxies", "trusted_proxies: [10.0.0.0/8, 0.0.0.0/0]\n", "trusted_proxies[1]", "0.0.0.0/0 is every address: any client could set the X-Forwarded-For", "", 1},
		{"every IPv6 address as the admin listener's proxies", "admin: { trusted_proxies: [\"::/0\"] }\n", "admin.trusted_proxies[0]", "::/0 is every address: any client could set the address the admin lockout", "", 1},
		{"every IPv4 address in IPv6's mapped form", "trusted_proxies: [\"::ffff:0:0/96\"]\n", "trusted_proxies[0]", "0.0.0.0/0 is every address", "", 1},
		{"half of the IPv4 addresses", "trusted_proxies: [10.0.0.0/8, 128.0.0.0/1]\n", "trusted_proxies[1]", "128.0.0.0/1 is wider than a /8 and holds public addresses", "", 1},
		{"a private network mistyped one bit wide", "admin: { trusted_proxies: [10.0.0.0/7] }\n", "admin.trusted_proxies[0]", "10.0.0.0/7 is wider than a /8 and holds public addresses", "", 1},
		{"every global IPv6 address", "trusted_proxies: [\"2000::/3\"]\n", "trusted_proxies[0]", "2000::/3 is wider than a /16 and holds public addresses", "", 1},
		{"a mapped IPv4 network wider than a /8", "trusted_proxies: [\"::ffff:64.0.0.0/98\"]\n", "trusted_proxies[0]", "64.0.0.0/2 is wider than a /8", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := routesYAML + tc.yaml
			cfg, err := configfile.Parse("s.yaml", []byte(yaml), testEnv(nil))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			line := strings.Count(routesYAML, "\n") + tc.at
			u, ok := notice(cfg.Unsafe, tc.field)
			if !ok || u.Line != line || !strings.Contains(u.Msg, tc.want) {
				t.Fatalf("got unsafe %v, want one at s.yaml:%d on %s saying %q", cfg.Unsafe, line, tc.field, tc.want)
			}
			if tc.secret != "" && strings.Contains(u.Error(), tc.secret) {
				t.Errorf("the message quotes the secret: %s", u)
			}
			if len(cfg.Unsafe) != 1 {
				t.Errorf("got %d unsafe entries, want 1: %v", len(cfg.Unsafe), cfg.Unsafe)
			}
		})
	}
}

// TestWhatIsUnwiseButNeverRefusedIsAWarning: a weak store key listed
// after the first only decrypts what it once encrypted (a key in use
// must keep opening old data), a trusted proxy network of public
// addresses may be a CDN's, an empty idempotency_scope and a zero
// replay_budget may be meant: each is a warning at its line and field,
// which config check --strict fails on.
func TestWhatIsUnwiseButNeverRefusedIsAWarning(t *testing.T) {
	good, zero := randomKey(t), keyHex(make([]byte, 32))
	for _, tc := range []struct {
		name, yaml, field, want string
	}{
		{"a weak key that only decrypts", "store_encryption: { keys: [" + good + ", " + zero + "] }\n", "store_encryption.keys[1]", "it only decrypts what it once encrypted"},
		{"a public network as trusted proxies", "trusted_proxies: [8.8.8.0/24]\n", "trusted_proxies[0]", "8.8.8.0/24 holds public addresses"},
		{"a public network as the admin listener's proxies", "admin: { trusted_proxies: [\"100.0.0.0/8\"] }\n", "admin.trusted_proxies[0]", "100.0.0.0/8 holds public addresses"},
		{"a CDN's IPv6 network", "trusted_proxies: [\"2606:4700::/29\"]\n", "trusted_proxies[0]", "2606:4700::/29 holds public addresses"},
		{"an empty idempotency_scope", "idempotency_scope: []\n", "idempotency_scope", "one space"},
		{"a zero replay_budget", "replay_budget: 0\n", "replay_budget", "the default, 16 times max_replay_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := configfile.Parse("s.yaml", []byte(routesYAML+tc.yaml), testEnv(nil))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			line := strings.Count(routesYAML, "\n") + 1
			if w, ok := notice(cfg.Warnings, tc.field); !ok || w.Line != line || !strings.Contains(w.Msg, tc.want) || len(cfg.Unsafe) > 0 {
				t.Errorf("got warnings %v and unsafe %v, want a warning at s.yaml:%d on %s saying %q, nothing unsafe", cfg.Warnings, cfg.Unsafe, line, tc.field, tc.want)
			}
		})
	}
}

// TestWhatIsFineIsNotFlagged: random keys and tokens, private and
// single-host proxies and the tokens the tests and examples use pass
// without a word.
func TestWhatIsFineIsNotFlagged(t *testing.T) {
	var b strings.Builder
	b.WriteString(routesYAML + "trusted_proxies: [10.0.0.0/8, \"fd00::/8\", 192.0.2.7, 8.8.8.8, 100.64.0.0/10]\n")
	b.WriteString("admin:\n  trusted_proxies: [127.0.0.1, \"::1\", 172.16.0.0/12]\n  token: a-token-of-sixteen-or-more\n  tokens:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "    - { name: t%d, token: %q, role: viewer }\n", i, randomKey(t))
	}
	b.WriteString("    - { name: ops, token: ops-token-0123456789abc, role: operator }\n")
	b.WriteString("    - { name: bot, token: bot-token-0123456789, role: operator }\n")
	b.WriteString("force_token_key: " + randomKey(t) + "\nstore_encryption:\n  keys:\n")
	for range 1000 {
		b.WriteString("    - " + randomKey(t) + "\n")
	}
	cfg, err := configfile.Parse("s.yaml", []byte(b.String()), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Unsafe)+len(cfg.Warnings) > 0 {
		t.Errorf("got unsafe %v and warnings %v, want none", cfg.Unsafe, cfg.Warnings)
	}
}

// TestAnExpiredTokenIsAWarning: config check said ok of a token whose
// expires had passed, which the running facade refuses; the file is now
// checked against the clock Env.Now gives, and the token's expires is
// warned of at its line from the day after, as the facade refuses it.
func TestAnExpiredTokenIsAWarning(t *testing.T) {
	yaml := routesYAML + "admin:\n  tokens:\n    - { name: bot, token: bot-token-0123456789, role: operator, expires: 2026-03-31 }\n"
	for _, tc := range []struct {
		now     time.Time
		expired bool
	}{
		{time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		env := testEnv(nil)
		env.Now = func() time.Time { return tc.now }
		cfg, err := configfile.Parse("s.yaml", []byte(yaml), env)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := notice(cfg.Warnings, "admin.tokens[0].expires")
		if tc.expired && (!ok || w.Line != 11 || !strings.Contains(w.Msg, "2026-03-31 has passed")) || !tc.expired && ok {
			t.Errorf("at %s: got warnings %v, want one on admin.tokens[0].expires at s.yaml:11: %v", tc.now, cfg.Warnings, tc.expired)
		}
	}
}

// TestALongTokenIsCheckedInLinearTime: a token read from a file of MiB
// (3 MiB of one character and another at the end, the worst case of
// looking for a repeated block by comparing each shift) is checked at
// once, not in hours, and refused for what it is.
func TestALongTokenIsCheckedInLinearTime(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(strings.Repeat("a", 3<<20)+"b"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configfile.Parse("s.yaml", []byte(routesYAML+"admin: { token: \"${file:"+file+"}\" }\n"), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := notice(cfg.Unsafe, "admin.token"); !ok || !strings.Contains(u.Msg, "holds only 2 different characters") {
		t.Errorf("got unsafe %v, want admin.token refused for its 2 characters", cfg.Unsafe)
	}
}
