package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"strangler/config"
	"strangler/config/configfile"
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

// A token or header value from a file ending in a blank line, or from an
// environment variable with a space at its end, passed every check, and
// no request could ever present it (an HTTP header carries no line break,
// and the white space at its ends is taken off): the admin API refused
// its holder for good, every backfill request failed. It is refused at
// load, without showing it.
func TestAValueNoHeaderCanCarryIsRefused(t *testing.T) {
	const secret = "SEKRETSEKRETSEKRET42"
	dir := t.TempDir()
	blank := filepath.Join(dir, "token")
	if err := os.WriteFile(blank, []byte(secret+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backfill := "backfill:\n  source: mysql://u:p@db:3306/h\n" +
		"  api:\n    url: \"http://modern:9090\"\n    headers:\n      Authorization: \"${HEADER}\"\n" +
		"  tables:\n    - name: p\n      from: P\n      key: ID\n      target_api:\n        method: PUT\n        path: \"/p/{ID}\"\n" +
		"        body:\n          legacy_id: ID\n"
	for _, tc := range []struct {
		name, yaml, value, field string
	}{
		{"a token file ending in a blank line", "admin:\n  tokens:\n    - { name: ops, role: admin, token: \"${file:" + blank + "}\" }\n", "", "admin.tokens[0].token"},
		{"a token with a space at its end", "admin:\n  tokens:\n    - { name: ops, role: admin, token: \"${TOKEN}\" }\n", secret + " ", "admin.tokens[0].token"},
		{"admin.token with a line break", "admin:\n  token: \"${TOKEN}\"\n", secret + "\n" + secret, "admin.token"},
		{"a backfill header with a line break", backfill, "Bearer " + secret + "\nX-Other: 1", "backfill.api.headers.Authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configfile.Parse("c.yaml", []byte(hostileBackends+tc.yaml), testEnv(map[string]string{"TOKEN": tc.value, "HEADER": tc.value}))
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != tc.field {
				t.Fatalf("got %v, want one error on %s", err, tc.field)
			}
			if strings.Contains(errs.Error(), "SEKRET") {
				t.Errorf("the error shows the secret: %v", errs)
			}
		})
	}
	// A header value's white space at its ends is sent trimmed, as a
	// server would read it anyway.
	if _, err := configfile.Parse("c.yaml", []byte(hostileBackends+backfill), testEnv(map[string]string{"HEADER": "Bearer " + secret + " "})); err != nil {
		t.Errorf("a backfill header with a space at its end: %v", err)
	}
}

// Two byte order marks at the start (a tool adding one to a file that had
// one): yaml.v3 parsed the file without an error and wrongly, dropping
// the first character of each line starting at column 1, so the routes'
// - vanished and the two routes became one mapping, reported as errors
// about keys the file does not hold. It is refused as what it is.
func TestASecondByteOrderMarkIsRefused(t *testing.T) {
	const bom = "\ufeff"
	routes := "routes:\n- name: a\n  match: \"GET /a\"\n  mode: legacy\n- name: b\n  match: \"GET /b\"\n  mode: legacy\n"
	if _, err := configfile.Parse("c.yaml", []byte(bom+hostileBackends+routes), testEnv(nil)); err != nil {
		t.Fatalf("one byte order mark: %v", err)
	}
	errs := parseErrors(t, bom+bom+hostileBackends+routes)
	if len(errs) != 1 || errs[0].Line != 1 || errs[0].Column != 2 || !strings.Contains(errs[0].Msg, "byte order mark") {
		t.Errorf("got %v, want one error at 1:2 naming the byte order mark", errs)
	}
}

// A file saved as UTF-16 without a byte order mark, or as UTF-32, was
// refused as "control characters are not allowed" at 1:1 or 1:2, where
// an editor shows none. It is named for what it is; UTF-16 with its byte
// order mark is read.
func TestAWideEncodingIsNamed(t *testing.T) {
	text := hostileBackends + "routes:\n  - { name: a, match: \"GET /a\", mode: legacy }\n"
	utf16 := func(bom bool, big bool) []byte {
		var b []byte
		if bom {
			b = append(b, 0xFF, 0xFE)
			if big {
				b[0], b[1] = 0xFE, 0xFF
			}
		}
		for _, r := range text {
			if big {
				b = append(b, 0, byte(r))
			} else {
				b = append(b, byte(r), 0)
			}
		}
		return b
	}
	utf32 := append([]byte{0xFF, 0xFE, 0, 0}, bytes.Join(bytes.SplitAfter([]byte(text), nil), []byte{0, 0, 0})...)
	for _, big := range []bool{false, true} {
		if _, err := configfile.Parse("c.yaml", utf16(true, big), testEnv(nil)); err != nil {
			t.Errorf("UTF-16 with its byte order mark (big endian %v): %v", big, err)
		}
	}
	for name, data := range map[string][]byte{"UTF-16LE": utf16(false, false), "UTF-16BE": utf16(false, true), "UTF-32LE": utf32} {
		_, err := configfile.Parse("c.yaml", data, testEnv(nil))
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, "save it as UTF-8") {
			t.Errorf("%s: got %v, want one error saying to save the file as UTF-8", name, err)
		}
	}
}

// A message quoting what the file wrote, such as the path of a ${file:…}
// written with escapes ("\e[2J", "\n"), printed the ESC and the line
// break as they were: the terminal running config check acted on the
// one, and the other broke the error in two lines.
func TestAnErrorIsOneLineThatDoesNothing(t *testing.T) {
	y := hostileBackends + "admin:\n  token: \"${file:/nonexistent/\\e[2J\\nc.yaml:1:1: fine}\"\n"
	errs := parseErrors(t, y)
	shown := errs.Error()
	if len(errs) != 1 || errs[0].Field != "admin.token" || strings.ContainsAny(shown, "\x1b\n") {
		t.Errorf("got %q, want one line on admin.token without ESC", shown)
	}
}

// An alias to an anchor that is not written before it (a typo, or the
// anchor below its use) was placed at 1:1: yaml.v3 says no line for it.
// It is placed at the alias.
func TestAnAliasToNoAnchorIsPlaced(t *testing.T) {
	errs := parseErrors(t, hostileBackends+"routes:\n  - &r { name: a, match: \"GET /a\", mode: legacy }\n  - *rr\n  - *r\n")
	if len(errs) != 1 || errs[0].Line != 6 || errs[0].Column != 5 || !strings.Contains(errs[0].Msg, "unknown anchor 'rr'") {
		t.Errorf("got %v, want one error at 6:5 on the alias *rr", errs)
	}
}

// An alias inside the value of its own anchor (a mapping merging itself)
// was decoded over and over until the bound on values, then blamed on
// "aliases and merge keys" at large. It is refused at the alias as what
// it is.
func TestAnAliasInsideItsOwnAnchorIsNamed(t *testing.T) {
	for _, y := range []string{
		"routes:\n  - &r { name: a, match: \"GET /a\", mode: legacy, <<: *r }\n",
		"routes: &r\n  - *r\n",
	} {
		errs := parseErrors(t, hostileBackends+y)
		if len(errs) != 1 || errs[0].Line != 5 || !strings.Contains(errs[0].Msg, "the alias *r stands inside the value of its own anchor &r") {
			t.Errorf("%q: got %v, want one error at line 5 naming the alias *r", y, errs)
		}
	}
}

// Placeholders do not nest: ${A:-${B}} ended at the first }, so with A
// unset an admin token was the literal text "${B}", which anyone reading
// the file knows, and config check said ok. It is refused whatever the
// environment holds.
func TestANestedPlaceholderIsRefused(t *testing.T) {
	y := hostileBackends + "admin:\n  tokens:\n    - { name: ops, role: admin, token: \"${OPS_TOKEN:-${ADMIN_FALLBACK_TOKEN}}\" }\n"
	for _, env := range []map[string]string{
		{"ADMIN_FALLBACK_TOKEN": "abcdefabcdefabcdefabcdef"},
		{"OPS_TOKEN": "abcdefabcdefabcdefabcdef"},
	} {
		_, err := configfile.Parse("c.yaml", []byte(y), testEnv(env))
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != "admin.tokens[0].token" || !strings.Contains(errs[0].Msg, "do not nest") {
			t.Errorf("with %v: got %v, want one error on admin.tokens[0].token saying placeholders do not nest", env, err)
		}
	}
}

// A value written $VAR, as a shell or Compose would expand it, was the
// text "$VAR": an admin token known to anyone reading the file, accepted
// by config check. It is refused; $$VAR is the text.
func TestABareVariableIsRefused(t *testing.T) {
	const head = hostileBackends + "admin:\n  tokens:\n    - { name: ops, role: admin, token: "
	env := testEnv(map[string]string{"ADMIN_API_TOKEN_PROD": "abcdefabcdefabcdefabcdef"})
	_, err := configfile.Parse("c.yaml", []byte(head+"$ADMIN_API_TOKEN_PROD }\n"), env)
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != "admin.tokens[0].token" || !strings.Contains(errs[0].Msg, "write ${ADMIN_API_TOKEN_PROD}") {
		t.Errorf("got %v, want one error on admin.tokens[0].token saying to write ${ADMIN_API_TOKEN_PROD}", err)
	}
	cfg, err := configfile.Parse("c.yaml", []byte(head+"$$ADMIN_API_TOKEN_PROD }\n"), env)
	if err != nil || cfg.Admin.Tokens[0].Token != "$ADMIN_API_TOKEN_PROD" {
		t.Errorf("$$ADMIN_API_TOKEN_PROD: got %v, want the text $ADMIN_API_TOKEN_PROD", err)
	}
}

// A 4 MiB file of tiny values ("a," two million times, "- - - …",
// "[[[…]]]") had yaml.v3 build a node for each before decoding counted
// them: 400 to 500 MB and seconds, in a running facade on a reload. The
// places a value may start are counted first.
func TestAFileOfTooManyItemsIsRefusedBeforeYAMLReadsIt(t *testing.T) {
	dashes := strings.Repeat("- ", 9000) + "a\n"
	brackets := strings.Repeat("[", 9000) + strings.Repeat("]", 9000)
	for name, y := range map[string]string{
		"commas":   "routes: [" + strings.Repeat("a,", 2<<20-8) + "a]\n",
		"dashes":   "routes:\n" + strings.Repeat(dashes, (4<<20)/len(dashes)-1),
		"brackets": "routes: [" + strings.Repeat(brackets+",", (4<<20)/len(brackets)-1) + "a]\n",
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		errs := parseErrors(t, y)
		runtime.ReadMemStats(&after)
		if len(errs) != 1 || !strings.Contains(errs[0].Msg, "places where a value starts") {
			t.Errorf("%s: got %.300v, want one error counting where values start", name, errs)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Errorf("%s: parsing allocated %d MiB, want at most 64", name, alloc>>20)
		}
	}
}
