package config_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strangler/config/configfile"
)

func TestTheForceTokenKeyComesFromAFileAndIsNeverShown(t *testing.T) {
	raw := []byte("force-key-0123456789abcdef012345")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "force-key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configfile.Parse("s.yaml", []byte(routesYAML+"force_token_key: ${file:"+keyFile+"}\n"), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cfg.ForceKey(); !ok || string(k[:]) != string(raw) {
		t.Errorf("ForceKey() = %x, %v; want the file's 32 bytes", k, ok)
	}
	out, err := configfile.Print(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), hex.EncodeToString(raw)) || !strings.Contains(string(out), "force_token_key: <redacted>") {
		t.Errorf("config print shows the key or does not say it is hidden:\n%s", out)
	}

	t.Run("without one, force tokens are off", func(t *testing.T) {
		cfg, err := configfile.Parse("s.yaml", []byte(routesYAML), testEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cfg.ForceKey(); ok {
			t.Error("ForceKey() reports a key the file does not set")
		}
	})
	t.Run("a key that is not 32 bytes is refused at its line", func(t *testing.T) {
		_, err := configfile.Parse("s.yaml", []byte(routesYAML+"force_token_key: letmein\n"), testEnv(nil))
		if err == nil || !strings.Contains(err.Error(), "s.yaml:9") || !strings.Contains(err.Error(), "force_token_key") {
			t.Errorf("got %v, want an error at s.yaml:9 naming force_token_key", err)
		}
	})
	t.Run("a store encryption key cannot double as the force token key", func(t *testing.T) {
		k := hex.EncodeToString(raw)
		_, err := configfile.Parse("s.yaml", []byte(routesYAML+"store_encryption: { keys: [\""+strings.Repeat("ab", 32)+"\", \""+k+"\"] }\nforce_token_key: \""+k+"\"\n"), testEnv(nil))
		if err == nil || !strings.Contains(err.Error(), "s.yaml:10") || !strings.Contains(err.Error(), "repeats store_encryption.keys[1]") || strings.Contains(err.Error(), k) {
			t.Errorf("got %v, want an error at s.yaml:10 saying it repeats keys[1], without the key", err)
		}
	})
}
