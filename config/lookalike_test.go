package config_test

import (
	"strings"
	"testing"
)

// A name with a look-alike letter (Cyrillic а, U+0430, in "pаtient")
// shows as a name of lower-case letters: the refusal said only "use
// lower-case letters", which it seems to be. It names the character.
func TestALookAlikeInANameIsNamed(t *testing.T) {
	for _, tc := range []struct{ y, field, want string }{
		{hostileBackends + "routes:\n  - { name: \"get-p\u0430tient\", match: \"GET /p\", mode: legacy }\n", "routes[0].name", "character 6 is U+0430"},
		{"admin:\n  tokens:\n    - { name: \"\u0430lice\", token: \"0123456789abcdef0123\", role: viewer }\n" + hostileBackends, "admin.tokens[0].name", "character 1 is U+0430"},
		{hostileBackends + "routes:\n  - { name: \"get-patient\u200b\", match: \"GET /p\", mode: legacy }\n", "routes[0].name", "character 12 is U+200B"},
	} {
		errs := parseErrors(t, tc.y)
		if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.want) {
			t.Errorf("got %v, want one error on %s saying %q", errs, tc.field, tc.want)
		}
	}
}
