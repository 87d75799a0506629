package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestAReasonThatIsNotUTF8IsRefusedBeforeCalling: a --reason typed in a
// terminal that is not set to UTF-8 ("Müller" in Latin-1 is M\xfcller)
// is refused, naming the flag, before the admin API is called:
// encoding/json sent U+FFFD in place of each such byte, and the audit log
// kept a reason other than the one given ("M\ufffdller"), which the API
// refuses when it gets the bytes themselves.
func TestAReasonThatIsNotUTF8IsRefusedBeforeCalling(t *testing.T) {
	f := startRoutesFacade(t)
	strangler := cli(f.admin)
	const latin1 = "as Herr M\xfcller asked"
	for _, args := range [][]string{
		{"routes", "set", "get-patient", "--mode", "modern", "--reason", latin1},
		{"routes", "set", "get-patient", "--clear", "--reason", latin1},
		{"routes", "ramp", "get-patient", "--steps", "1,5", "--every", "30m", "--reason", latin1},
		{"routes", "ramp", "get-patient", "--pause", "--reason", latin1},
		{"routes", "approve", "1", "--reason", latin1},
		{"routes", "reject", "1", "--reason", latin1},
		{"routes", "force-token", "get-patient", "--backend", "modern", "--reason", latin1},
		{"repairs", "retry", "w-1", "--reason", latin1},
		{"repairs", "discard", "w-1", "--reason", latin1},
	} {
		t.Run(strings.Join(args[:2], " ")+" refuses it", func(t *testing.T) {
			r := strangler(t, args...)
			var u usageError
			if r.err == nil || !errors.As(r.err, &u) || !strings.Contains(r.err.Error(), "-reason: not valid UTF-8") {
				t.Errorf("got %v (stdout %q), want a usage error saying -reason is not valid UTF-8", r.err, r.stdout)
			}
		})
	}
	c, err := newAdminClient(f.admin, aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	var audit struct {
		Entries []struct{ Action, Reason string }
	}
	if _, err := c.Get(context.Background(), "/admin/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	for _, e := range audit.Entries {
		t.Errorf("the audit log holds a %s with the reason %q; want nothing", e.Action, e.Reason)
	}
}
