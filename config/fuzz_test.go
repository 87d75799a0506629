package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strangler/config/configfile"
)

// FuzzParse feeds arbitrary files to the parser. Whatever the input, it
// must not panic, and a file it accepts must print as a file it accepts
// again, unchanged: `config print` output is a valid configuration.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("backends: {legacy: {url: 'http://a'}, modern: {url: 'http://b'}}\nroutes: [{name: x, match: 'GET /{a:[0-9]{2}}/*', mode: modern, percent: 0}]"))
	f.Add([]byte("- &a [*a]"))
	env := testEnv(map[string]string{"LEGACY_URL": "http://legacy.internal:8080"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := configfile.Parse("fuzz.yaml", data, env)
		if err != nil {
			return
		}
		printed, err := configfile.Print(cfg)
		if err != nil {
			t.Fatalf("print: %v", err)
		}
		if strings.Contains(string(printed), "$") {
			return // printed values are expanded; a $ in one would expand again
		}
		again, err := configfile.Parse("printed.yaml", printed, env)
		if err != nil {
			t.Fatalf("printed config does not load: %v\n%s", err, printed)
		}
		reprinted, _ := configfile.Print(again)
		if string(reprinted) != string(printed) {
			t.Fatalf("print is not stable:\n%s\nthen:\n%s", printed, reprinted)
		}
	})
}
