package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strangler/config/configfile"
	"strangler/internal/filecap"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func testEnv(vars map[string]string) configfile.Env {
	return configfile.Env{
		Getenv:   func(k string) string { return vars[k] },
		ReadFile: filecap.Read,
	}
}

// TestGolden loads every testdata/*.yaml and compares what a user would
// see, the effective configuration or every error with its line, with the
// .golden file next to it. Run with -update after an intended change.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	env := testEnv(map[string]string{"LEGACY_URL": "http://legacy.internal:8080"})
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var got string
			cfg, err := configfile.Load(file, env)
			if err != nil {
				got = "error:\n" + err.Error() + "\n"
			} else {
				out, err := configfile.Print(cfg)
				if err != nil {
					t.Fatal(err)
				}
				got = "ok:\n" + string(out)
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestShippedConfigsLoad keeps the example configurations in deploy/
// valid as the configuration language changes.
func TestShippedConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../deploy/strangler*.yaml")
	if len(files) == 0 {
		t.Fatal("no configurations in deploy/")
	}
	for _, file := range files {
		if _, err := configfile.Load(file, testEnv(nil)); err != nil {
			t.Errorf("%v", err)
		}
	}
}
