package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are the modules the request path must not link: the state store's
// database drivers, the legacy database's and the configuration file's
// YAML parser.
var heavy = []string{"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "yaml"}

// TestHotPathLinksNoDriverOrYAML keeps the packages on the request path
// (and this vocabulary, which they share) free of database drivers and
// YAML: speaking of modes, paths and counts must not pull in a store.
func TestHotPathLinksNoDriverOrYAML(t *testing.T) {
	for _, pkg := range []string{"strangler/domain", "strangler/stats", "strangler/shadow", "strangler/router"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			for _, h := range heavy {
				if strings.Contains(dep, h) {
					t.Errorf("%s links %s", pkg, dep)
				}
			}
		}
	}
}

// TestDomainImportsOnlyTheStandardLibrary keeps the vocabulary a leaf:
// every package may import it.
func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "strangler/domain").Output()
	if err != nil {
		t.Fatal(err)
	}
	for imp := range strings.FieldsSeq(string(out)) {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") || first == "strangler" {
			t.Errorf("domain imports %s", imp)
		}
	}
}
