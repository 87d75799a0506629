package backfill_test

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"strangler/backfill"
)

// terminalText is a key or a database's message holding what a terminal
// acts on: ESC ] 0 ; … BEL retitles it, ESC [ 2 J clears it, U+009B is
// ESC [, U+202E shows what follows reversed.
const terminalText = "Ann\x1b]0;pwned\x07\x1b[2J\u202eeman\u009b"

// TestTextReportsActOnNoTerminal: the backfill's and verify's reports on
// the terminal show keys (legacy data, which end users may choose),
// failure reasons and errors (the databases' messages, which quote
// values) with each character a terminal would act on as a \u escape;
// they went out as they were.
func TestTextReportsActOnNoTerminal(t *testing.T) {
	var copyOut, verifyOut strings.Builder
	(&backfill.Report{Mode: "copy", Started: time.Now(), Finished: time.Now(), Tables: []backfill.TableReport{{
		Table: "patients", Read: 2, Failed: 2, Error: terminalText,
		Failures: []backfill.FailureGroup{{Reason: "value too long: " + terminalText, Count: 2, SampleKeys: []string{terminalText}}},
	}}, Error: terminalText}).WriteText(&copyOut)
	(&backfill.VerifyReport{Started: time.Now(), Finished: time.Now(), Tables: []backfill.TableDiff{{
		Table: "patients", Missing: 1, MissingKeys: []string{terminalText}, Extra: 1, ExtraKeys: []string{terminalText},
	}}}).WriteText(&verifyOut)
	for name, out := range map[string]string{"backfill": copyOut.String(), "verify": verifyOut.String()} {
		for _, r := range out {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
				t.Errorf("%s writes the control character %U:\n%q", name, r, out)
				break
			}
		}
		if want := `Ann\u001b]0;pwned\u0007\u001b[2J\u202eeman\u009b`; !strings.Contains(out, want) {
			t.Errorf("%s does not show %s:\n%q", name, want, out)
		}
	}
}
