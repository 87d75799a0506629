package domain

import "testing"

func TestNamesAdminCookie(t *testing.T) {
	for v, want := range map[string]bool{
		"strangler_session=A; Path=/": true,
		"strangler_flash=":            true,
		" \tstrangler_csrf=x":         true,
		"=strangler_session=A":        true, // nameless: sent as strangler_session=A
		" = strangler_session=A":      true,
		"strangler_session":           true, // nameless: sent as strangler_session
		"session=strangler_x":         false,
		"Strangler_session=A":         false, // another name: cookie names are case-sensitive
		"theme=dark":                  false,
		"":                            false,
	} {
		if got := NamesAdminCookie(v); got != want {
			t.Errorf("NamesAdminCookie(%q) = %v, want %v", v, got, want)
		}
	}
}
