package config_test

import (
	"strings"
	"testing"
)

// A value of a MiB or more on one line, where a short one belongs, was quoted
// whole by its error: a 1 MiB message on the terminal and in one line of
// the reload log. Its start and end are quoted, with its length.
func TestALongValueIsShortenedInItsError(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name, yaml, field string
		line              int
	}{
		{"a mode", "routes:\n  - { name: a, match: \"GET /a\", mode: \"" + long + "\" }\n", "routes[0].mode", 5},
		{"a name", "routes:\n  - { name: \"A" + long + "\", match: \"GET /a\", mode: legacy }\n", "routes[0].name", 5},
		{"a duration", "body_timeout: \"1" + long + "s\"\n", "body_timeout", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, hostileBackends+tc.yaml)
			msg := errs.Error()
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Line != tc.line {
				t.Fatalf("got %.300s, want one error at line %d on %s", msg, tc.line, tc.field)
			}
			if len(msg) > 400 || !strings.Contains(msg, "(1.0 MiB quoted, shortened)") {
				t.Errorf("got a message of %d bytes: %.300s…, want one of at most 400 saying the value was 1.0 MiB", len(msg), msg)
			}
		})
	}
}
