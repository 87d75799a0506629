package canonical

import (
	"strings"
	"testing"
)

// TestSameJSONEverywhere: a body a backend may read as JSON passes only
// as I-JSON; each refusal names its fault and where, never the body.
func TestSameJSONEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		typed      bool
		want       string // "" passes
	}{
		{"a plain object", `{"name":"Ada","tags":[{"a":1},{"a":2}]}`, true, ""},
		{"an escaped pair", `{"name":"A\ud83d\ude00"}`, true, ""},
		{"a number past float64", `{"n":1e400}`, true, ""},
		{"no body", ``, true, ""},
		{"a form", `name=Ada&name=Eve`, false, ""},
		{"text that is not JSON", `{hello`, false, ""},
		{"a name twice", `{"name":"Ada","name":"Eve"}`, true, "a member twice in one object (at byte 14)"},
		{"a name twice, one escaped", `{"name":"Ada","\u006eame":"Eve"}`, true, "a member twice"},
		{"a name twice, nested", `{"p":{"id":1,"id":2}}`, true, "a member twice in one object (at byte 13)"},
		{"a name twice, typed as text", `{"name":"Ada","name":"Eve"}`, false, "a member twice"},
		{"a lone surrogate", `{"name":"A\ud800"}`, true, "not Unicode (at byte 10"},
		{"a low surrogate first", `{"name":"\udc00\ud800"}`, true, "not Unicode"},
		{"bytes not UTF-8", "{\"name\":\"A\xff\"}", true, "not Unicode (at byte 10"},
		{"bytes not UTF-8, typed as text", "{\"name\":\"A\xc0\xaf\"}", false, "not Unicode"},
		{"a byte order mark", "\ufeff{}", true, "nested at most 10,000 deep (at byte 0)"},
		{"two values", `{"a":1} {"a":2}`, true, "nested at most 10,000 deep (at byte 7)"},
		{"cut short", `{"a":1`, true, "does not parse"},
		{"nested past 10,000", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), true, "nested at most 10,000 deep (at byte 10000)"},
		{"nested 10,000 deep", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), true, ""},
		{"a name twice, then a lone surrogate", `{"a":1,"a":"\ud800"}`, true, "not Unicode (at byte 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SameJSONEverywhere([]byte(tc.body), tc.typed)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.want)
			case strings.Contains(err.Error(), "Ada") || strings.Contains(err.Error(), "name"+`"`):
				t.Errorf("the refusal quotes the body: %v", err)
			}
		})
	}
}
