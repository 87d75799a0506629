package control

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"strangler/domain"
)

// TestStatusPageFormsRefuseAReasonThatIsNotUTF8: a form's reason with
// bytes that are not UTF-8 is refused, as the admin API refuses such a
// body, and changes nothing: the store would keep it with U+FFFD in place
// of the bytes, so the audit log would hold a reason other than the one
// sent.
func TestStatusPageFormsRefuseAReasonThatIsNotUTF8(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	const reason = "backfill done \xff\xfe"
	for _, tc := range []struct {
		name, path string
		form       func(csrf string) url.Values
	}{
		{"a flip", "/ui/routes/get-patient", func(csrf string) url.Values { return flipForm(csrf, "0", "modern", reason) }},
		{"a ramp", "/ui/routes/list-photos/ramp", func(csrf string) url.Values {
			return url.Values{"csrf": {csrf}, "version": {"0"}, "action": {"start"}, "confirm": {"yes"},
				"steps": {"1,5"}, "every": {"30m"}, "mode": {"modern"}, "reason": {reason}}
		}},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, csrf := h.page(t)
			resp, _ := h.send(t, "POST", tc.path, tc.form(csrf), "Sec-Fetch-Site", "same-origin")
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("got %d, want 303 to the page with the outcome", resp.StatusCode)
			}
			body, _ := h.page(t)
			if msg := flashOf(body); !strings.Contains(msg, "was not changed") || !strings.Contains(msg, "not valid UTF-8") {
				t.Errorf("the page says %q, want that nothing changed as the reason is not valid UTF-8", msg)
			}
		})
	}
	for _, e := range h.auditEntries(t) {
		if e.Action != "denied" {
			t.Errorf("the audit log holds a %s by %s with the reason %q; want none", e.Action, e.Actor, e.Reason)
		}
	}
	if got := h.appliedCount(); got != 1 {
		t.Errorf("the router was given %d configurations, want 1 (the file's)", got)
	}
}

// TestAFlashMessageCutShortIsStillText: the outcome of a form is cut at
// 1,500 bytes to fit its cookie; a cut inside a character left a broken
// byte sequence, which the page showed as a replacement character. Here
// the other operator's reason, quoted by a stale flip's message, is 500
// three-byte characters.
func TestAFlashMessageCutShortIsStillText(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	_, csrf := h.page(t)
	mode, version := domain.ModeLegacy, int64(0)
	if _, err := h.flags.Apply(context.Background(), Flip{
		Route: "get-patient", Actor: "dev-bob", Reason: strings.Repeat("€", 500), Mode: &mode, IfMatch: &version,
	}); err != nil {
		t.Fatal(err)
	}
	h.send(t, "POST", "/ui/routes/get-patient", flipForm(csrf, "0", "modern", "go"), "Sec-Fetch-Site", "same-origin")
	body, _ := h.page(t)
	msg := flashOf(body)
	if !strings.Contains(msg, "someone else changed it") || !strings.HasSuffix(msg, "€…") || !utf8.ValidString(msg) {
		t.Errorf("the page says %q, want the stale flip's message cut after a whole character, then …", msg)
	}
}
