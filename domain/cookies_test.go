package domain

import "testing"

func TestNamesAdminCookie(t *testing.T) {
	for v, want := range map[string]bool{
		"strangler_session=A; Path=/":                true,
		"strangler_flash=":                           true,
		" \tstrangler_csrf=x":                        true,
		"=strangler_session=A":                       true, // nameless: sent as strangler_session=A
		" = strangler_session=A":                     true,
		"strangler_session":                          true, // nameless: sent as strangler_session
		"__Host-strangler_session=A; Secure; Path=/": true, // what the admin listener sets over TLS
		"=__Host-strangler_flash=A":                  true,
		"__Host-theme=dark":                          false,
		"__Secure-strangler_session=A":               false, // a name the admin listener never reads
		"session=strangler_x":                        false,
		"Strangler_session=A":                        false, // another name: cookie names are case-sensitive
		"theme=dark":                                 false,
		"":                                           false,
	} {
		if got := NamesAdminCookie(v); got != want {
			t.Errorf("NamesAdminCookie(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestAdminCookieName(t *testing.T) {
	if got := AdminCookieName("session", true); got != "__Host-strangler_session" {
		t.Errorf("over TLS: %q, want __Host-strangler_session", got)
	}
	if got := AdminCookieName("flash", false); got != "strangler_flash" {
		t.Errorf("over plain HTTP: %q, want strangler_flash", got)
	}
	for _, secure := range []bool{true, false} {
		if name := AdminCookieName("session", secure); !NamesAdminCookie(name + "=A") {
			t.Errorf("the forwarder would let a backend set %s", name)
		}
	}
}
