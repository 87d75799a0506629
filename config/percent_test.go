package config_test

import (
	"fmt"
	"strings"
	"testing"

	"strangler/config/configfile"
)

// The router splits a route's traffic in steps of 0.01%: a finer percent
// was accepted and shown as written while the router sent its nearest
// step (99.996 sent everything to modern, and the report said legacy
// still served part of it; 0.004 sent nothing). A gate is a rate, not a
// share of traffic, and may be finer.
func TestARoutesPercentIsAWholeNumberOfSteps(t *testing.T) {
	route := func(opt string) string {
		return hostileBackends + "routes:\n  - { name: r, match: \"GET /p\", mode: modern, " + opt + " }\n"
	}
	for _, tc := range []struct{ pct, nearest string }{
		{"99.996", "100"}, {"0.004", "0"}, {"0.001%", "0"}, {"12.345", "12.35"},
	} {
		errs := parseErrors(t, route("percent: "+tc.pct))
		if len(errs) != 1 || errs[0].Line != 5 || errs[0].Field != "routes[0].percent" ||
			!strings.Contains(errs[0].Msg, "0.01%") || !strings.Contains(errs[0].Msg, "nearest is "+tc.nearest) {
			t.Errorf("percent %s: got %v, want one error at line 5 on routes[0].percent naming the 0.01%% step and the nearest, %s", tc.pct, errs, tc.nearest)
		}
	}
	for _, ok := range []string{"percent: 0.01", "percent: 99.99", "percent: 12.30%", "percent: 0.07", "gates: { max_mismatch_rate: 0.001%, max_fallback_rate: 0.0005 }"} {
		if _, err := configfile.Parse("c.yaml", []byte(route(ok)), testEnv(nil)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// What config print shows is a file config check accepts, with the same
// values: a small rate was printed as 1e-05, which the check refuses
// (numbers are written in decimal digits), and -0 as "-0".
func TestWhatConfigPrintShowsIsReadBackTheSame(t *testing.T) {
	y := hostileBackends + "routes:\n  - { name: r, match: \"GET /p\", mode: modern, percent: -0, gates: { max_mismatch_rate: 0.00001, max_fallback_rate: \"-0%\" } }\n"
	c, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	out, err := configfile.Print(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "-0") || strings.Contains(string(out), "e-") {
		t.Errorf("config print shows a negative zero or an exponent:\n%s", out)
	}
	again, err := configfile.Parse("printed.yaml", out, testEnv(nil))
	if err != nil {
		t.Fatalf("config print's output is refused: %v\n%s", err, out)
	}
	r, r2 := c.Routes[0], again.Routes[0]
	if *r2.Percent != *r.Percent || *r2.Gates.MaxMismatchRate != *r.Gates.MaxMismatchRate || *r2.Gates.MaxFallbackRate != *r.Gates.MaxFallbackRate {
		t.Errorf("read back: got %v %v %v, want %v %v %v", *r2.Percent, *r2.Gates.MaxMismatchRate, *r2.Gates.MaxFallbackRate,
			*r.Percent, *r.Gates.MaxMismatchRate, *r.Gates.MaxFallbackRate)
	}
}

// A gate refuses a flip while a rate is above it, which no rate is above
// 100%: such a gate never refuses anything, which the guard's bound at
// 100 is refused for. It is warned of at its line (it may stand for "no
// gate" in files that work), not refused.
func TestAGateThatCanNeverRefuseIsWarnedOf(t *testing.T) {
	y := hostileBackends + "routes:\n  - name: r\n    match: \"GET /p\"\n    mode: fallback\n    gates: { max_mismatch_rate: 100%, max_fallback_rate: 100 }\n" +
		"  - { name: s, match: \"GET /s\", mode: fallback, gates: { max_mismatch_rate: 99.99, max_fallback_rate: 0 } }\n"
	c, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, fmt.Sprintf("%d %s %s", w.Line, w.Field, w.Msg))
	}
	want := []string{
		"8 routes[0].gates.max_mismatch_rate is 100%, which no rate is above: the gate never refuses a flip; leave it out for no gate",
		"8 routes[0].gates.max_fallback_rate is 100%, which no rate is above: the gate never refuses a flip; leave it out for no gate",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
