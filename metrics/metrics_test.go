package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var validName = regexp.MustCompile(`^strangler_[a-z0-9_]+$`)

// TestDefinitions checks what a scrape and the README rely on: each
// metric has one valid name, help text, and a line in the README's
// metrics section.
func TestDefinitions(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range All {
		switch {
		case !validName.MatchString(d.Name):
			t.Errorf("%q: not a strangler_ metric name in snake case", d.Name)
		case seen[d.Name]:
			t.Errorf("%q: defined twice", d.Name)
		case strings.TrimSpace(d.Help) == "":
			t.Errorf("%q: no help text", d.Name)
		case !strings.Contains(string(readme), "`"+d.Name+"`"):
			t.Errorf("%q: the README does not list it", d.Name)
		}
		seen[d.Name] = true
		for _, l := range d.Labels {
			if l == "path" || l == "id" || l == "key" {
				t.Errorf("%q: label %q would carry identifiers", d.Name, l)
			}
		}
	}
}

// TestConstructorsKeepTheDefinition checks that a collector built from a
// definition describes itself with the definition's name and labels.
func TestConstructorsKeepTheDefinition(t *testing.T) {
	desc := RouteMode.GaugeVec().WithLabelValues("r", "legacy").Desc().String()
	for _, want := range []string{`fqName: "strangler_route_mode"`, `variableLabels: {route,mode}`} {
		if !strings.Contains(desc, want) {
			t.Errorf("desc %s lacks %s", desc, want)
		}
	}
}
