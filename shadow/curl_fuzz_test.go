package shadow

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// sh runs script in a real POSIX shell and returns what it printed.
func sh(t *testing.T, script string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	return out
}

// FuzzShellQuoting checks the two ways a curl command carries arbitrary
// text against a real shell: shellQuote(s) is one word that the shell
// gives back as s, and printfFormat(b) is a printf format that prints
// exactly b, whatever bytes they hold.
func FuzzShellQuoting(f *testing.F) {
	testkit.Tool(f, "sh", "a POSIX shell")
	for _, seed := range []string{
		"", "plain", "a b", "it's", "'", "''", `"$HOME"`, "`id`", "$(id)", `\`, `\\n`, "%s%%", "-n", "-e",
		"a\nb", "tab\there", "\x1b[2J", "é ü 😀", "\xff\xfe", "\u202e\u009b", "-\u202e'$(id)'", "*", "~", "#comment", "a;b|c&d", "!", "{a,b}", "[x]",
	} {
		f.Add(seed, []byte(seed))
	}
	f.Add("nul", []byte("\x00-\x00"))
	f.Fuzz(func(t *testing.T, s string, b []byte) {
		if !strings.Contains(s, "\x00") { // no shell word can hold a NUL
			words := bytes.Split(sh(t, `printf '%s\0' `+shellQuote(s)), []byte{0})
			if len(words) != 2 || string(words[0]) != s {
				t.Fatalf("shellQuote(%q) = %s, which the shell reads as %q", s, shellQuote(s), words[:len(words)-1])
			}
			// shellArg's printf form is for one line: the shell drops
			// the trailing newlines of a command's output.
			if !strings.HasSuffix(s, "\n") {
				words := bytes.Split(sh(t, `printf '%s\0' `+shellArg(s)), []byte{0})
				if len(words) != 2 || string(words[0]) != s {
					t.Fatalf("shellArg(%q) = %s, which the shell reads as %q", s, shellArg(s), words[:len(words)-1])
				}
			}
		}
		if got := sh(t, "printf "+printfFormat(b)); !bytes.Equal(got, b) {
			t.Fatalf("printf %s printed %q, want %q", printfFormat(b), got, b)
		}
		if quotable(b) && bytes.ContainsAny(b, "\x00\r\t\x1b\x7f\u009b\u202e") {
			t.Fatalf("quotable(%q): a body with control characters would act on the terminal it is pasted into", b)
		}
	})
}
