package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/config/configfile"
)

const hostileBackends = "backends:\n  legacy: { url: \"http://legacy:8080\" }\n  modern: { url: \"http://modern:9090\" }\n"

// parseErrors parses y as c.yaml and returns its errors, failing the test
// if it parses.
func parseErrors(t *testing.T, y string) config.Errors {
	t.Helper()
	_, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("parse: got %v, want config.Errors", err)
	}
	return errs
}

// NaN passes "v < 0 || v > 100", as every comparison with it is false.
func TestPercentNaNIsRefused(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "-NaN"} {
		errs := parseErrors(t, hostileBackends+"routes:\n  - { name: r, match: \"GET /p\", mode: modern, percent: "+v+" }\n")
		if len(errs) != 1 || errs[0].Line != 5 || errs[0].Field != "routes[0].percent" || !strings.Contains(errs[0].Msg, "from 0 to 100") {
			t.Errorf("percent: %s: got %v, want one error at line 5 on routes[0].percent", v, errs)
		}
	}
}

// YAML's merge key: of <<: [*a, *b] the first mapping wins, as yaml.v3
// itself and yq read it; a mode other tools show differently is a route
// sent where no one expects.
func TestMergeKeyFirstMappingWins(t *testing.T) {
	y := hostileBackends + "routes:\n  - { <<: [{mode: legacy}, {mode: modern}], name: a, match: \"GET /p\" }\n"
	c, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[0].Mode; got != "legacy" {
		t.Errorf("mode: got %s, want legacy (the first merged mapping)", got)
	}
}

// The same for a mapping whose keys are names (a backfill table's columns).
func TestMergeKeyFirstMappingWinsInMaps(t *testing.T) {
	y := hostileBackends + "backfill:\n  source: \"mysql://u:p@db:3306/h\"\n  target: \"postgres://u:p@db:5432/app\"\n" +
		"  tables:\n    - { name: p, from: P, key: ID, to: p, target_key: legacy_id,\n" +
		"        columns: { <<: [{n: A}, {n: B}], legacy_id: ID } }\n"
	c, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Backfill.Tables[0].Columns["n"]); !strings.Contains(got, "A") {
		t.Errorf("columns.n: got %s, want A (the first merged mapping)", got)
	}
}

func TestMergeKeyTwiceIsAnError(t *testing.T) {
	y := hostileBackends + "routes:\n  - name: a\n    match: \"GET /p\"\n    <<: {mode: legacy}\n    <<: {mode: modern}\n"
	errs := parseErrors(t, y)
	if len(errs) != 1 || errs[0].Line != 8 || errs[0].Field != "routes[0]" || !strings.Contains(errs[0].Msg, "<< appears twice (first on line 7)") {
		t.Errorf("got %v, want one error at line 8 saying << appears twice", errs)
	}
}

// A few hundred bytes of anchors, each merging the one before ten times,
// would expand to 10^8 merges (over five minutes): refused at the budget,
// with one error. (With an error in each copy the budget takes about 1 s,
// 4 s under -race; without errors 0.1 s.)
func TestAliasBombIsRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString(hostileBackends + "x0: &a0 { mode: legacy }\n")
	const levels = 8
	for i := 1; i <= levels; i++ {
		refs := strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10)
		fmt.Fprintf(&b, "x%d: &a%d { <<: [%s] }\n", i, i, strings.TrimSuffix(refs, ","))
	}
	fmt.Fprintf(&b, "routes:\n  - { <<: *a%d, name: a, match: \"GET /p\", mode: legacy }\n", levels)
	start := time.Now()
	errs := parseErrors(t, b.String())
	if took := time.Since(start); took > time.Minute {
		t.Errorf("%d bytes took %v to refuse", b.Len(), took)
	}
	if len(errs) != 1 || errs[0].File != "c.yaml" || errs[0].Line == 0 || !strings.Contains(errs[0].Msg, "more than 50000 values") {
		t.Errorf("got %d errors, first %v; want one placed error about the expansion", len(errs), errs[0])
	}
}

// An alias as a key stands for the anchored value (here p), not for the
// anchor's name: read as the name, the route would be set to modern by a
// file in which every other YAML reader finds no mode.
func TestAliasAsKeyIsAnError(t *testing.T) {
	errs := parseErrors(t, hostileBackends+"routes:\n  - { name: &mode p, match: \"GET /p\", *mode : modern }\n")
	found := false
	for _, e := range errs {
		found = found || e.Line == 5 && e.Field == "routes[0]" && strings.Contains(e.Msg, "want field names as keys, got an alias (*mode)")
	}
	if !found {
		t.Errorf("got %v, want an error at line 5 on routes[0] about the alias key", errs)
	}
}

// yaml.v3 says no line for an error on the first line: the error still
// names it, as every other one does.
func TestAnErrorOnTheFirstLineIsPlaced(t *testing.T) {
	for _, y := range []string{
		"routes: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n" + hostileBackends,
		"listen: [\"a\" b]\n" + hostileBackends,
	} {
		errs := parseErrors(t, y)
		if len(errs) != 1 || errs[0].Line != 1 || strings.HasPrefix(errs[0].Msg, "yaml:") {
			t.Errorf("%.20s: got %v, want one error at line 1", y, errs)
		}
	}
}

// Every number is written one way, decimal digits as people write them:
// a hex float, an exponent, a YAML 1.1 octal or a _ separator reads as
// another number to another tool, or to the reader of the file.
func TestNumbersAreWrittenOneWay(t *testing.T) {
	route := func(opt string) string {
		return hostileBackends + "routes:\n  - { name: r, match: \"GET /p\", mode: modern, " + opt + " }\n"
	}
	for _, tc := range []struct{ y, field, want string }{
		{route("percent: 0x1p4"), "routes[0].percent", "invalid percent"},
		{route("percent: 1e1"), "routes[0].percent", "invalid percent"},
		{route("percent: .5"), "routes[0].percent", "invalid percent"},
		{route("percent: 5."), "routes[0].percent", "invalid percent"},
		{route("percent: +5"), "routes[0].percent", "invalid percent"},
		{route("percent: 1_0"), "routes[0].percent", "invalid percent"},
		{route("percent: .inf"), "routes[0].percent", "invalid percent"},
		{route("percent: .nan"), "routes[0].percent", "invalid percent"},
		{route("percent: 010"), "routes[0].percent", "invalid percent"},
		{route("retire_min_requests: 010"), "routes[0].retire_min_requests", "not a whole number"},
		{route("retire_min_requests: 0o10"), "routes[0].retire_min_requests", "not a whole number"},
		{route("retire_min_requests: 0b10"), "routes[0].retire_min_requests", "not a whole number"},
		{route("retire_min_requests: 1_000"), "routes[0].retire_min_requests", "not a whole number"},
		{route("retire_min_requests: +10"), "routes[0].retire_min_requests", "not a whole number"},
		{route("retire_min_requests: 1e3"), "routes[0].retire_min_requests", "not a whole number"},
		{route("retire_min_requests: 99999999999999999999"), "routes[0].retire_min_requests", "too large"},
		{route("compare: { sample: 0x1p-1 }"), "routes[0].compare.sample", "not a number"},
		{route("compare: { sample: 5e-1 }"), "routes[0].compare.sample", "not a number"},
		{route("max_body: 0x10"), "routes[0].max_body", "invalid size"},
		{route("max_body: 010KiB"), "routes[0].max_body", "invalid size"},
		{route("max_body: +1MiB"), "routes[0].max_body", "invalid size"},
		{route("retire_after: 1e3s"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: +5s"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: .5s"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: 5.s"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: 1_0s"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: +7d"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: 007d"), "routes[0].retire_after", "invalid duration"},
		{route("retire_after: -5s"), "routes[0].retire_after", "is negative"},
		{route("retire_after: 9999999999h"), "routes[0].retire_after", "is too long"},
		{route("retire_after: 999999999999d"), "routes[0].retire_after", "is too long"},
	} {
		errs := parseErrors(t, tc.y)
		line := strings.Count(tc.y, "\n")
		if len(errs) != 1 || errs[0].Line != line || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.want) {
			t.Errorf("%s: got %v, want one error at line %d on %s saying %q", tc.y[strings.LastIndex(tc.y[:len(tc.y)-1], "\n")+1:], errs, line, tc.field, tc.want)
		}
	}
	if errs := parseErrors(t, "listen: \":+80\"\n"+hostileBackends); len(errs) != 1 || errs[0].Line != 1 || errs[0].Field != "listen" || !strings.Contains(errs[0].Msg, "invalid port") {
		t.Errorf("listen :+80: got %v, want one error at line 1 on listen", errs)
	}
	c, err := configfile.Parse("c.yaml", []byte(route("percent: 0.5%, retire_min_requests: 0, retire_after: 1h30m, compare: { sample: 0.25 }, max_body: 10MiB")), testEnv(nil))
	if err != nil {
		t.Fatalf("numbers as people write them: %v", err)
	}
	if r := c.Routes[0]; *r.Percent != 0.5 || time.Duration(r.RetireAfter) != 90*time.Minute || *r.Compare.Sample != 0.25 || *r.MaxBody != 10<<20 {
		t.Errorf("got %+v", r)
	}
}

// A double-quoted string writes any character as an escape, and a
// placeholder brings what the environment or a file holds: a NUL, an
// ESC that reprograms the terminal showing the message, a character that
// shows the text around it reversed, or a byte order mark in the middle
// is refused at its line and field, and the message never shows the
// value (it may be a secret).
func TestValuesAndKeysHoldNoControlCharacters(t *testing.T) {
	const secret = "s3cr3t-t0ken-0f-many-chars"
	env := map[string]string{"ESC": secret + "\x1b[2J", "BAD_UTF8": secret + "\xff"}
	for _, tc := range []struct{ y, field, want string }{
		{"admin:\n  token: \"" + secret + "\\0x\"\n", "admin.token", "the control character U+0000 (at character 27)"},
		{"admin:\n  token: \"" + secret + "\\e[31m\"\n", "admin.token", "the control character U+001B"},
		{"admin:\n  token: \"" + secret + "\\u202Ex\"\n", "admin.token", "the control character U+202E"},
		{"admin:\n  token: \"" + secret + "\\uFEFF\"\n", "admin.token", "a byte order mark, U+FEFF"},
		{"admin:\n  token: \"" + secret + "\\N\"\n", "admin.token", "the control character U+0085"},
		{"admin:\n  token: \"" + secret + "\\r\"\n", "admin.token", "the control character U+000D"},
		{"admin:\n  token: ${ESC}\n", "admin.token", "the control character U+001B"},
		{"admin:\n  token: ${BAD_UTF8}\n", "admin.token", "bytes that are not UTF-8"},
		{"admin:\n  \"tok\\e[2Jen\": x\n", "admin", "a key holds the control character U+001B"},
	} {
		_, err := configfile.Parse("c.yaml", []byte(hostileBackends+tc.y), testEnv(env))
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("%q: got %v, want config.Errors", tc.y, err)
		}
		if len(errs) != 1 || errs[0].Line != 5 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.want) {
			t.Errorf("%q: got %v, want one error at line 5 on %s saying %q", tc.y, errs, tc.field, tc.want)
		}
		if shown := errs.Error(); strings.Contains(shown, "s3cr3t") || strings.ContainsAny(shown, "\x00\x1b\u202e\ufeff") {
			t.Errorf("%q: the message shows the value or the character: %q", tc.y, shown)
		}
	}
	// Newlines and tabs are what a multi-line value (a backfill query)
	// holds.
	y := hostileBackends + "backfill:\n  source: mysql://u:p@db:3306/h\n  target: postgres://u:p@db:5432/m\n" +
		"  tables:\n    - { name: p, key: ID, to: p, target_key: id, columns: { id: ID }, query: \"SELECT *\\tFROM P\\nWHERE 1\" }\n"
	if _, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil)); err != nil {
		t.Errorf("a tab and a newline in a value: %v", err)
	}
}

// Placeholders may add at most 4 MiB to the values in all: a value
// naming a 3 MiB file through ${file:…}, aliased, would otherwise build
// gigabytes. The refusal is one error, where the bound was passed.
func TestPlaceholdersAddABoundedAmount(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, y string }{
		{"one value", "admin:\n  token: \"${file:" + big + "}${file:" + big + "}\"\n"},
		{"an alias", "admin:\n  token: &big \"${file:" + big + "}\"\n  tokens: [{ name: a, role: viewer, token: *big }, { name: b, role: viewer, token: *big }]\n"},
	} {
		start := time.Now()
		errs := parseErrors(t, hostileBackends+tc.y)
		found := 0
		for _, e := range errs {
			if strings.Contains(e.Msg, "more than 4.0 MiB in all") {
				found++
			}
		}
		if found != 1 || errs[0].Line != 5 || !strings.HasPrefix(errs[0].Field, "admin.token") {
			t.Errorf("%s: got %d errors, %.300v; want one about the bound at line 5", tc.name, len(errs), errs)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("%s: took %v", tc.name, took)
		}
	}
}

// Header names are one name in any case: of Authorization and
// authorization, which value a backfill request carried was left to map
// order. (Names of columns, fields and routes are ASCII only, so no two
// differ only in Unicode form.)
func TestHeaderNamesDifferingInCaseAreRefused(t *testing.T) {
	api := hostileBackends + "backfill:\n  source: mysql://u:p@db:3306/h\n" +
		"  api:\n    url: \"http://modern:9090\"\n    headers:\n      Authorization: \"Bearer a\"\n      authorization: \"Bearer b\"\n" +
		"  tables:\n    - name: p\n      from: P\n      key: ID\n      target_api:\n        method: PUT\n        path: \"/p/{ID}\"\n" +
		"        body:\n          legacy_id: ID\n"
	errs := parseErrors(t, api)
	if len(errs) != 1 || errs[0].Line != 10 || errs[0].Field != "backfill.api.headers.authorization" || !strings.Contains(errs[0].Msg, "repeats the header Authorization (line 9)") {
		t.Errorf("got %v, want one error at line 10 on backfill.api.headers.authorization", errs)
	}
}

// A file of a few MiB can hold hundreds of thousands of errors (the same
// key on every line): the message lists the first hundred and says how
// many more, so that a terminal, or the reload log line, is not flooded.
func TestAFloodOfErrorsIsCut(t *testing.T) {
	errs := parseErrors(t, hostileBackends+strings.Repeat("listen: \":1\"\n", 1000))
	if len(errs) != 999 {
		t.Fatalf("got %d errors, want 999", len(errs))
	}
	lines := strings.Split(errs.Error(), "\n")
	if len(lines) != 101 || lines[99] != errs[99].Error() || lines[100] != "c.yaml: and 899 more errors" {
		t.Errorf("got %d lines, ending %q, want the first 100 errors and a line counting 899 more", len(lines), lines[len(lines)-1])
	}
}

// A byte order mark is allowed at the start of the file only: in the
// middle (a file pasted together from two), it would be part of the key
// after it, unseen in an editor.
func TestAByteOrderMarkInTheMiddleIsRefused(t *testing.T) {
	errs := parseErrors(t, hostileBackends+"routes:\n  - { name: a, match: \"GET /a\", mode: legacy }\n\ufeffdefault: modern\n")
	if len(errs) != 1 || errs[0].Line != 6 || errs[0].Column != 1 || !strings.Contains(errs[0].Msg, "byte order mark") {
		t.Errorf("got %v, want one error at line 6, column 1", errs)
	}
	if _, err := configfile.Parse("c.yaml", []byte("\ufeff"+hostileBackends), testEnv(nil)); err != nil {
		t.Errorf("a byte order mark at the start: %v", err)
	}
}

// Values are read as text, so an explicit tag would be read differently
// here and by other YAML tools: !!binary decoded, !!int 0x10 as 16, a
// custom !vault handed to a plugin. Only !!str, which says text, is read.
func TestTagsAreRefused(t *testing.T) {
	for _, v := range []string{"!!binary c2VjcmV0LXRva2VuLTAwMDAwMA==", "!vault xyz-abcdefghijklmnop", "!!int 0x10"} {
		errs := parseErrors(t, hostileBackends+"admin:\n  token: "+v+"\n")
		if len(errs) != 1 || errs[0].Line != 5 || errs[0].Field != "admin.token" || !strings.Contains(errs[0].Msg, "is not read here") {
			t.Errorf("%s: got %v, want one error at line 5 on admin.token", v, errs)
		}
	}
	if _, err := configfile.Parse("c.yaml", []byte(hostileBackends+"admin:\n  token: !!str abcdefghijklmnopqr\n"), testEnv(nil)); err != nil {
		t.Errorf("!!str: %v", err)
	}
}

// Certificates and keys are read with the same bound as the file: a
// device is refused by name, at the field naming it, not read until
// memory runs out.
func TestCertificateFilesAreBounded(t *testing.T) {
	errs := parseErrors(t, hostileBackends+"tls: { cert: /dev/zero, key: /dev/zero }\n")
	if len(errs) != 1 || errs[0].Line != 4 || errs[0].Field != "tls" || !strings.Contains(errs[0].Msg, "/dev/zero is a device: want a regular file") {
		t.Errorf("got %v, want one error at line 4 on tls naming /dev/zero", errs)
	}
}

// A UTF-16 surrogate written as an escape (JSON writes a character beyond
// U+FFFF as a pair of them) is a YAML syntax error, which named the line
// alone: the field whose value holds it is named too, at its column.
func TestASurrogateEscapeNamesItsField(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{hostileBackends + "routes:\n  - name: \"r\\ud83d\\ude00\"\n    match: \"GET /p\"\n",
			"c.yaml:5:13: routes[0].name: found invalid Unicode character escape code"},
		{"backends:\n  legacy: { url: \"http://legacy\", timeout: 2s }\n  modern: { url: \"http://m\\uDC00\" }\n",
			"c.yaml:3:27: backends.modern.url: found invalid Unicode character escape code"},
		{hostileBackends + "routes:\n  - { name: a, match: \"GET /a\" }\n  - { name: b, match: \"GET /b\\U0000D800\" }\n",
			"c.yaml:6:30: routes[1].match: found invalid Unicode character escape code"},
	} {
		errs := parseErrors(t, tc.yaml)
		if len(errs) != 1 || errs[0].Error() != tc.want {
			t.Errorf("got %v, want %s", errs, tc.want)
		}
	}
}

// A value written where a mapping or a list belongs is often a secret
// written one level too high (store_encryption: KEY for {keys: [KEY]}):
// the message says what was found and where, never the value itself.
func TestAValueWhereAMappingOrListBelongsIsNotShown(t *testing.T) {
	const key = "5f2b8c0e9d7a4e61b3c2d1f0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0"
	for _, tc := range []struct{ y, field, want string }{
		{"store_encryption: " + key + "\n", "store_encryption", "want a mapping of keys to values, got a single value"},
		{"store_encryption: { keys: " + key + " }\n", "store_encryption.keys", "want a list, got a single value"},
		{"admin: { tokens: " + key + " }\n", "admin.tokens", "want a list, got a single value"},
		{"admin: { tokens: [" + key + "] }\n", "admin.tokens[0]", "want a mapping of keys to values, got a single value"},
		{"admin: { token: [" + key + "] }\n", "admin.token", "want a string, got a list"},
	} {
		errs := parseErrors(t, hostileBackends+tc.y)
		if len(errs) != 1 || errs[0].Line != 4 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.want) {
			t.Errorf("%s: got %v, want one error at line 4 on %s saying %q", tc.y, errs, tc.field, tc.want)
		}
		if strings.Contains(errs.Error(), key[:16]) {
			t.Errorf("%s: the message shows the value: %s", tc.y, errs)
		}
	}
	// A secret's own file passed as the configuration (--config
	// /run/secrets/admin-token) is one value.
	errs := parseErrors(t, key+"\n")
	if len(errs) == 0 || strings.Contains(errs.Error(), key[:16]) || !strings.Contains(errs.Error(), "c.yaml:1:1: want a mapping of keys to values, got a single value") {
		t.Errorf("a file of one value: got %s", errs)
	}
}

// A file with more values than a configuration holds, and no alias, is
// refused with one error that says so: not one blaming aliases it does
// not have, nor one error per value.
func TestAFileOfTooManyValuesIsRefusedForWhatItIs(t *testing.T) {
	var b strings.Builder
	b.WriteString(hostileBackends + "routes:\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "  - { name: r%d, match: \"GET /r%d\", mode: legacy }\n", i, i)
	}
	errs := parseErrors(t, b.String())
	if len(errs) != 1 || errs[0].Line == 0 || !strings.Contains(errs[0].Msg, "the file holds more than 50000 values") || strings.Contains(errs[0].Msg, "alias") {
		t.Errorf("got %d errors, first %v; want one placed error saying the file holds too many values", len(errs), errs[0])
	}
}

// A tab in the indentation is named as a tab, at its column: YAML's own
// words ("found character that cannot start any token") send the reader
// looking for a character no editor shows.
func TestATabInTheIndentationIsNamed(t *testing.T) {
	for _, tc := range []struct {
		y            string
		line, column int
	}{
		{"backends:\n\tlegacy: { url: \"http://l\" }\n", 2, 1},
		{hostileBackends + " \tlisten: \":1\"\n", 4, 2},
		{hostileBackends + "routes:\n  -\t{ name: a, match: \"GET /a\", mode: legacy }\n", 5, 4},
	} {
		errs := parseErrors(t, tc.y)
		if len(errs) != 1 || errs[0].Line != tc.line || errs[0].Column != tc.column || !strings.Contains(errs[0].Msg, "a tab, where YAML takes spaces only") {
			t.Errorf("%q: got %v, want one error at %d:%d naming the tab", tc.y, errs, tc.line, tc.column)
		}
	}
	// Another character that cannot start a token, on a line with a tab
	// further on, keeps YAML's words.
	errs := parseErrors(t, "listen: @x  # a\tb\n"+hostileBackends)
	if len(errs) != 1 || strings.Contains(errs[0].Msg, "tab") {
		t.Errorf("got %v, want YAML's own error", errs)
	}
}

// An invalid URL is shown without its password, query or fragment: a
// token or API key goes there as often as not.
func TestAnInvalidURLIsShownWithoutItsSecrets(t *testing.T) {
	for _, tc := range []struct{ y, field, want string }{
		{"backends:\n  legacy: { url: \"http://legacy:8080/?api_key=s3cr3t-key\" }\n  modern: { url: \"http://modern:9090\" }\n",
			"backends.legacy.url", `invalid URL "http://legacy:8080/?…": a backend URL takes no user, query or fragment`},
		{"backends:\n  legacy: { url: \"http://legacy:8080#s3cr3t-key\" }\n  modern: { url: \"http://modern:9090\" }\n",
			"backends.legacy.url", `invalid URL "http://legacy:8080#…"`},
		{hostileBackends + "backfill:\n  source: mysql://u:p@db:3306/h\n  api:\n    url: \"htps://u:s3cr3t-pw@modern:9090/?token=s3cr3t-key\"\n" +
			"  tables:\n    - { name: p, from: P, key: ID, target_api: { method: PUT, path: \"/p/{ID}\", body: { legacy_id: ID } } }\n",
			"backfill.api.url", `want an http:// or https:// URL, got "htps:xxxxx@modern:9090/?…"`},
	} {
		errs := parseErrors(t, tc.y)
		found := false
		for _, e := range errs {
			found = found || e.Field == tc.field && strings.Contains(e.Msg, tc.want)
		}
		if !found {
			t.Errorf("got %v, want an error on %s saying %s", errs, tc.field, tc.want)
		}
		if strings.Contains(errs.Error(), "s3cr3t") {
			t.Errorf("the message shows a secret: %s", errs)
		}
	}
}

// A listen address's host is an IP address, a host name or nothing: a
// space before the address passed config check and failed the start with
// "lookup  127.0.0.1: no such host".
func TestAListenHostIsChecked(t *testing.T) {
	for _, addr := range []string{" 127.0.0.1:8080", "local host:8080", "a..b:8080", "-a:8080", "127.0.0.1 :8080"} {
		errs := parseErrors(t, "listen: \""+addr+"\"\n"+hostileBackends)
		if len(errs) != 1 || errs[0].Line != 1 || errs[0].Field != "listen" || !strings.Contains(errs[0].Msg, "invalid host") {
			t.Errorf("%q: got %v, want one error at line 1 on listen about the host", addr, errs)
		}
	}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "[fe80::1%eth0]:8080", "localhost:8080", "facade-0.facade.svc.cluster.local:8080"} {
		if _, err := configfile.Parse("c.yaml", []byte("listen: \""+addr+"\"\n"+hostileBackends), testEnv(nil)); err != nil {
			t.Errorf("%q: %v", addr, err)
		}
	}
}

// A 0 written for a timeout or a size that 0 leaves at its default is
// warned of at its line: Envoy reads timeout: 0s as no timeout, and
// here it is 15 s. Left out, or 0 where 0 is what it says
// (shutdown.delay), nothing is said.
func TestAZeroThatMeansTheDefaultIsWarnedOf(t *testing.T) {
	y := "backends:\n  legacy: { url: \"http://legacy:8080\", timeout: 0s }\n  modern: { url: \"http://modern:9090\" }\n" +
		"shutdown: { delay: 0s, grace: 0s }\nmax_replay_body: 0\n"
	c, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, fmt.Sprintf("%d %s %s", w.Line, w.Field, w.Msg[:strings.Index(w.Msg, ":")]))
	}
	want := []string{
		"2 backends.legacy.timeout is 0, which here means the default, 15s, not none or no limit",
		"4 shutdown.grace is 0, which here means the default, 30s, not none or no limit",
		"5 max_replay_body is 0, which here means the default, 10MiB, not none or no limit",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if time.Duration(c.Backends.Legacy.Timeout) != config.DefaultTimeout {
		t.Errorf("timeout %v, want the default", time.Duration(c.Backends.Legacy.Timeout))
	}
	if c, err := configfile.Parse("c.yaml", []byte(hostileBackends), testEnv(nil)); err != nil || len(c.Warnings) != 0 {
		t.Errorf("nothing written: %v, %v", err, c.Warnings)
	}
}

// stop_after_unanswered counts rows: 0 is the default (10), and a
// negative count, which would never stop the run, is refused by line and
// field.
func TestStopAfterUnansweredIsARowCount(t *testing.T) {
	api := hostileBackends + "backfill:\n  source: mysql://u:p@db:3306/h\n  api: { url: \"http://modern:9090\" }\n" +
		"  tables:\n    - name: p\n      from: P\n      key: ID\n      target_api:\n        method: PUT\n        path: \"/p/{ID}\"\n" +
		"        body: { legacy_id: ID }\n        stop_after_unanswered: %s\n"
	errs := parseErrors(t, fmt.Sprintf(api, "-1"))
	if len(errs) != 1 || errs[0].Line != 15 || errs[0].Field != "backfill.tables[0].target_api.stop_after_unanswered" || !strings.Contains(errs[0].Msg, "want a number of rows from 1") {
		t.Errorf("got %v, want one error at line 15 on backfill.tables[0].target_api.stop_after_unanswered", errs)
	}
	for v, want := range map[string]int{"0": config.DefaultStopAfterUnanswered, "3": 3} {
		cfg, err := configfile.Parse("c.yaml", []byte(fmt.Sprintf(api, v)), testEnv(nil))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := cfg.Backfill.Tables[0].TargetAPI.StopAfterUnanswered; got != want {
			t.Errorf("stop_after_unanswered: %s reads as %d, want %d", v, got, want)
		}
	}
}

// admin.hosts names host names: an IP address (always answered to), a
// port, a scheme, a trailing dot or an empty name is a mistake the file
// names by line and field, never silently a name no request matches.
func TestAdminHostsAreHostNames(t *testing.T) {
	for _, h := range []string{`"127.0.0.1"`, `"::1"`, `"admin.example:9901"`, `"https://admin.example"`, `"admin.example."`, `""`, `"*.example"`, `"adm in"`} {
		errs := parseErrors(t, hostileBackends+"admin:\n  listen: \"127.0.0.1:9901\"\n  hosts: [ok.example, "+h+"]\n")
		if len(errs) != 1 || errs[0].Line != 6 || errs[0].Field != "admin.hosts[1]" {
			t.Errorf("admin.hosts %s: got %v, want one error at line 6 on admin.hosts[1]", h, errs)
		}
	}
	c, err := configfile.Parse("c.yaml", []byte(hostileBackends+"admin:\n  listen: \"admin.example.internal:9901\"\n  token: \"a-token-0123456789abcdef\"\n  hosts: [Grafana.Example]\n"), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Admin.AdminHosts(), " "); got != "admin.example.internal Grafana.Example" {
		t.Errorf("AdminHosts: %q, want admin.listen's name and the listed one", got)
	}
}

// max_connection_age bounds how long a backend connection is used, so a
// move by DNS is followed: left out it is a minute, written it is taken,
// 0 is warned of as the default, and a negative age is refused by line
// and field.
func TestMaxConnectionAgeIsADuration(t *testing.T) {
	c, err := configfile.Parse("c.yaml", []byte(hostileBackends), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Backends.Legacy.MaxConnectionAge); got != config.DefaultMaxConnectionAge {
		t.Errorf("left out: %v, want %v", got, config.DefaultMaxConnectionAge)
	}
	y := "backends:\n  legacy: { url: \"http://legacy:8080\", max_connection_age: 10s }\n  modern: { url: \"http://modern:9090\", max_connection_age: 0s }\n"
	c, err = configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Backends.Legacy.MaxConnectionAge); got != 10*time.Second {
		t.Errorf("written: %v, want 10s", got)
	}
	if len(c.Warnings) != 1 || c.Warnings[0].Line != 3 || c.Warnings[0].Field != "backends.modern.max_connection_age" {
		t.Errorf("0: warnings %v, want one at line 3 on backends.modern.max_connection_age", c.Warnings)
	}
	y = "backends:\n  legacy: { url: \"http://legacy:8080\" }\n  modern: { url: \"http://modern:9090\", max_connection_age: -1s }\n"
	if errs := parseErrors(t, y); len(errs) != 1 || errs[0].Line != 3 || errs[0].Field != "backends.modern.max_connection_age" || !strings.Contains(errs[0].Msg, "is negative") {
		t.Errorf("-1s: got %v, want one error at line 3 on backends.modern.max_connection_age", errs)
	}
}

// A syntax error of YAML's parser is placed on its line: yaml.v3 counts
// those lines from 0 and its scanner's from 1, and the parser's came one
// line early, on a line that was fine.
func TestAParserErrorIsPlacedOnItsLine(t *testing.T) {
	for _, tc := range []struct {
		y    string
		line int
	}{
		// A placeholder unquoted in braces ends the mapping.
		{"listen: \":1\"\nbackends:\n  legacy: { url: \"http://l\" }\n  modern: { url: ${MODERN_URL} }\n", 4},
		{hostileBackends + "routes: [\n  { name: a, match: \"GET /a\", mode: legacy }\n  { name: b }\n]\n", 4},
		// yaml.v3 says where the list the error is in starts, not the
		// error's own line (7).
		{hostileBackends + "routes:\n  - name: a\n    match: \"GET /a\"\n   - mode: legacy\n", 5},
		{hostileBackends + "listen: \":1\"\n- x\n", 5},
		// The scanner's lines were right already.
		{hostileBackends + "routes:\n  - name: a\n  x\n", 6},
		{hostileBackends + "listen: !x!y 1\n", 4},
	} {
		errs := parseErrors(t, tc.y)
		if len(errs) != 1 || errs[0].Line != tc.line {
			t.Errorf("%q: got %v, want one error at line %d", tc.y, errs, tc.line)
		}
	}
}
