package config_test

import (
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/config/configfile"
)

// approvalsConfig is a configuration with tokens and two routes, the
// second with its own approvals (empty: none).
func approvalsConfig(top, tokens, route string) string {
	return "admin:\n  tokens:\n" + tokens + `backends:
  legacy: { url: "http://legacy" }
  modern: { url: "http://modern" }
` + top + `
routes:
  - { name: get-patient, match: "GET /patients/{id}", mode: fallback }
  - name: list-photos
    match: "GET /photos"
    mode: legacy
` + route
}

const twoOperators = `    - { name: alice, token: "alice-token-0123456789", role: operator }
    - { name: bob, token: "bob-token-0123456789ab", role: admin }
    - { name: vera, token: "vera-token-0123456789a", role: viewer }
`

func TestApprovalsAreTopLevelOrPerRoute(t *testing.T) {
	for _, tc := range []struct {
		name, top, route string
		// want is what get-patient and list-photos need.
		want [2]int
	}{
		{"without approvals nothing needs one", "", "", [2]int{1, 1}},
		{"top-level approvals cover every route", "approvals: 2", "", [2]int{2, 2}},
		{"a route may need none under a top-level 2", "approvals: 2", "    approvals: 1\n", [2]int{2, 1}},
		{"a route may need approval alone", "", "    approvals: 2\n", [2]int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configfile.Parse("a.yaml", []byte(approvalsConfig(tc.top, twoOperators, tc.route)), configfile.Env{Getenv: func(string) string { return "" }})
			if err != nil {
				t.Fatal(err)
			}
			if got := [2]int{c.ApprovalsFor(&c.Routes[0]), c.ApprovalsFor(&c.Routes[1])}; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApprovalsThatCannotBeGivenAreRefused(t *testing.T) {
	const oneOperator = `    - { name: alice, token: "alice-token-0123456789", role: operator }
    - { name: vera, token: "vera-token-0123456789a", role: viewer }
`
	for _, tc := range []struct {
		name, top, tokens, route, want string
	}{
		{"more than five", "approvals: 6", twoOperators, "",
			"a.yaml:9:12: approvals: must be from 1 (no approval) to 5 token names agreeing, the requester included"},
		{"a negative number", "approvals: -1", twoOperators, "",
			"a.yaml:9:12: approvals: must be from 1 (no approval) to 5"},
		{"a route's 0", "", twoOperators, "    approvals: 0\n",
			"a.yaml:15:16: routes[1].approvals: must be from 1 (no approval) to 5"},
		{"two with a single operator: a viewer cannot approve", "approvals: 2", oneOperator, "",
			"a.yaml:8:12: approvals: 2 needs 2 admin tokens with the operator or admin role (one requests, the others approve); the configuration has 1"},
		{"a route's three with two operators", "", twoOperators, "    approvals: 3\n",
			"a.yaml:15:16: routes[1].approvals: 3 needs 3 admin tokens with the operator or admin role (one requests, the others approve); the configuration has 2"},
		{"not a number", "approvals: two", twoOperators, "", "a.yaml:9:12: approvals: want a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configfile.Parse("a.yaml", []byte(approvalsConfig(tc.top, tc.tokens, tc.route)), configfile.Env{Getenv: func(string) string { return "" }})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestNoTokenMayBeNamedRamp(t *testing.T) {
	tokens := `    - { name: ramp, token: "ramp-token-0123456789a", role: operator }
`
	_, err := configfile.Parse("a.yaml", []byte(approvalsConfig("", tokens, "")), configfile.Env{Getenv: func(string) string { return "" }})
	if want := `a.yaml:3:15: admin.tokens[0].name: "ramp" is reserved: the steps of scheduled ramps carry that name`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestNoTokenMayBeNamedConfig(t *testing.T) {
	tokens := `    - { name: config, token: "config-token-0123456789", role: operator }
`
	_, err := configfile.Parse("a.yaml", []byte(approvalsConfig("", tokens, "")), configfile.Env{Getenv: func(string) string { return "" }})
	if want := `a.yaml:3:15: admin.tokens[0].name: "config" is reserved`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestADurationOfTooManyDaysIsRefusedNotWrapped(t *testing.T) {
	for _, s := range []string{"106751d", "106752d", "213503982334601d", "9223372036854775807d"} {
		var d config.Duration
		err := d.UnmarshalText([]byte(s))
		if s == "106751d" {
			if err != nil || d <= 0 {
				t.Errorf("%s: got %v, %v; want about 292 years", s, time.Duration(d), err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: got %v, want it refused: it would wrap around", s, time.Duration(d))
		}
	}
}
