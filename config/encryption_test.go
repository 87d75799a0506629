package config_test

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"strangler/config"
	"strangler/config/configfile"
)

const routesYAML = `backends:
  legacy: { url: "http://legacy:8080" }
  modern: { url: "http://modern:9090" }
routes:
  - { name: read, match: "GET /p/{id}", mode: fallback }
  - name: write
    match: "POST /p"
    mode: dual-write
`

func TestADualWriteRouteWithoutStoreEncryptionIsWarnedAbout(t *testing.T) {
	cfg, err := configfile.Parse("s.yaml", []byte(routesYAML), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("got warnings %v, want one", cfg.Warnings)
	}
	w := cfg.Warnings[0]
	if w.Line != 8 || w.Field != "routes[1].mode" || !strings.Contains(w.Msg, "store_encryption") {
		t.Errorf("got warning %q, want one at line 8 on routes[1].mode naming store_encryption", w)
	}

	key := make([]byte, 32)
	key[0] = 7
	with := routesYAML + "store_encryption: { keys: [" + hex.EncodeToString(key) + "] }\n"
	cfg, err = configfile.Parse("s.yaml", []byte(with), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("got warnings %v with store_encryption, want none", cfg.Warnings)
	}
	if keys := cfg.EncryptionKeys(); len(keys) != 1 || keys[0][0] != 7 {
		t.Errorf("got keys %v, want the one in the file", keys)
	}
}

func TestEncryptionKeysAreReadInHexOrBase64AndNeverShown(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	for _, text := range []string{
		hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
		base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
		base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		var k config.EncryptionKey
		if err := k.UnmarshalText([]byte(text)); err != nil || string(k[:]) != string(raw) {
			t.Errorf("UnmarshalText(%q) = %x, %v, want the 32 bytes", text, k, err)
		}
	}
	for _, text := range []string{"", "short", hex.EncodeToString(raw[:31]), base64.StdEncoding.EncodeToString(append(raw, 1)), "my-passphrase-is-long-enough-surely-yes"} {
		var k config.EncryptionKey
		err := k.UnmarshalText([]byte(text))
		if err == nil {
			t.Errorf("UnmarshalText(%q) accepted it", text)
		} else if text != "" && strings.Contains(err.Error(), text) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
	cfg, err := configfile.Parse("s.yaml", []byte(routesYAML+"store_encryption: { keys: ["+hex.EncodeToString(raw)+"] }\n"), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	out, err := configfile.Print(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), hex.EncodeToString(raw)) || !strings.Contains(string(out), "<redacted>") {
		t.Errorf("config print shows the key or does not say it is hidden:\n%s", out)
	}
}

func TestAnAPIBackfillWithoutStoreEncryptionIsWarnedAbout(t *testing.T) {
	raw, err := os.ReadFile("testdata/backfill_api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configfile.Parse("backfill_api.yaml", raw, testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("got warnings %v, want one", cfg.Warnings)
	}
	if w := cfg.Warnings[0]; w.Line != 14 || w.Field != "backfill.tables[0].target_api" || !strings.Contains(w.Msg, "store_encryption") {
		t.Errorf("got warning %q, want one at line 14 (the value of target_api) on backfill.tables[0].target_api naming store_encryption", w)
	}
}

// A read-repair route keeps the ids modern lacked, which are patients'
// record numbers: without store_encryption they are stored in clear, and
// the check says so at the route's read_repair.
func TestAReadRepairRouteWithoutStoreEncryptionIsWarnedAbout(t *testing.T) {
	const yaml = `backends:
  legacy: { url: "http://legacy:8080" }
  modern: { url: "http://modern:9090" }
routes:
  - { name: read, match: "GET /p/{id}", mode: fallback, entity: patients, read_repair: true }
`
	cfg, err := configfile.Parse("s.yaml", []byte(yaml), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("got warnings %v, want one", cfg.Warnings)
	}
	if w := cfg.Warnings[0]; w.Line != 5 || w.Field != "routes[0].read_repair" || !strings.Contains(w.Msg, "store_encryption") {
		t.Errorf("got warning %q, want one at line 5 on routes[0].read_repair naming store_encryption", w)
	}
}
