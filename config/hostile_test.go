package config_test

import (
	"errors"
	"fmt"
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
