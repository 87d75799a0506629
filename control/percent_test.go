package control

import (
	"math"
	"strings"
	"testing"
)

// The router splits traffic in 0.01% steps: a finer share was taken and
// shown as written while the router sent its nearest step (99.996% sent
// every request to modern, and the report said legacy still served part
// of the traffic). A flip and a ramp step are refused as the file is.
func TestAShareFinerThanTheRoutersStepsIsRefused(t *testing.T) {
	p := newPlane(t)
	for _, tc := range []struct{ name, body, want string }{
		{"a flip", `{"mode": "modern", "percent": 99.996, "reason": "x"}`, "percent 99.996 is finer than the 0.01% steps traffic is split in; the nearest is 100"},
		{"a flip to a tiny share", `{"mode": "modern", "percent": 1e-300, "reason": "x"}`, "the nearest is 0"},
		{"a ramp", `{"ramp": {"steps": [0.005, 50], "every": "30m"}, "reason": "x"}`, "step 1, 0.005%, is finer than the 0.01% steps"},
	} {
		resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", bobToken, tc.body, "If-Match", `"0"`)
		if msg, _ := body["error"].(string); resp.StatusCode != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: got %d %q, want 400 saying %q", tc.name, resp.StatusCode, msg, tc.want)
		}
	}
}

// JSON's -0 is 0: it was kept as written, and routes list showed the
// route "at -0%".
func TestANegativeZeroShareIsZero(t *testing.T) {
	p := newPlane(t)
	resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", bobToken, `{"mode": "modern", "percent": -0, "reason": "x"}`, "If-Match", `"0"`)
	if resp.StatusCode != 200 {
		t.Fatalf("got %d %v", resp.StatusCode, body)
	}
	rf, _ := p.flags.Get("get-patient")
	if rf.Percent == nil || *rf.Percent != 0 || math.Signbit(*rf.Percent) {
		t.Errorf("percent: got %v, want 0", rf.Percent)
	}
	if got := ModeText(rf.Mode, rf.Percent); got != "modern at 0%" {
		t.Errorf("shown as %q, want modern at 0%%", got)
	}
}

// Steps are read as every other percent is, in decimal digits: an
// exponent or a hexadecimal float was taken.
func TestRampStepsAreWrittenAsPercentsAre(t *testing.T) {
	for _, s := range []string{"1e1,50", "0x1p4", "5,Inf", "1_0"} {
		if steps, err := ParseSteps(s); err == nil {
			t.Errorf("%q: got %v, want an error", s, steps)
		}
	}
	steps, err := ParseSteps(" 1, 5%,25 ,100% ")
	if err != nil || len(steps) != 4 || steps[0] != 1 || steps[1] != 5 || steps[2] != 25 || steps[3] != 100 {
		t.Errorf("got %v %v, want 1 5 25 100", steps, err)
	}
}
