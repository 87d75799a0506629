package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"strangler/control"
)

// defaultAdmin is where the admin commands look for a facade when neither
// --admin nor STRANGLER_ADMIN says otherwise: admin.listen's default.
const defaultAdmin = "http://127.0.0.1:9901"

// tokenHelp is the usage text's word on the admin token; the token is
// never a flag, because a flag value lands in shell history and in the
// process list.
const tokenHelp = `The admin URL comes from --admin or STRANGLER_ADMIN (default ` + defaultAdmin + `).
The admin token comes only from STRANGLER_ADMIN_TOKEN and is sent as
Authorization: Bearer; it is never accepted as a flag, so it stays out of
shell history and the process list.
`

// reasonVar adds --reason to fs, stored in p: text for the audit log,
// refused unless it is UTF-8 as given. encoding/json would send U+FFFD in
// place of each other byte (a terminal set to Latin-1 types "Müller" as
// M\xfcller), and the audit log would keep a reason other than the one
// given.
func reasonVar(fs *flag.FlagSet, p *string, usage string) {
	fs.Func("reason", usage, func(s string) error {
		if !utf8.ValidString(s) {
			return errors.New("not valid UTF-8; is the terminal set to UTF-8?")
		}
		*p = s
		return nil
	})
}

// adminFlags adds --admin to fs; the function it returns builds the
// client once the flags are parsed.
func adminFlags(fs *flag.FlagSet, getenv func(string) string) func() (*control.Client, error) {
	def := getenv("STRANGLER_ADMIN")
	if def == "" {
		def = defaultAdmin
	}
	admin := fs.String("admin", def, "admin API `URL` (env STRANGLER_ADMIN)")
	return func() (*control.Client, error) {
		// A token read from a file often ends in a newline.
		return newAdminClient(*admin, strings.TrimSpace(getenv("STRANGLER_ADMIN_TOKEN")))
	}
}

// newAdminClient returns a client of the admin API at admin (a URL, or a
// bare host:port taken as http) that presents token.
func newAdminClient(admin, token string) (*control.Client, error) {
	u, err := adminURL(admin)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("no admin token: set STRANGLER_ADMIN_TOKEN to an admin token (it is never taken as a flag, to keep it out of shell history)")
	}
	return control.NewClient(u, token), nil
}

// adminURL reads --admin (or STRANGLER_ADMIN): a URL of the admin
// listener, or a bare host:port taken as http, without a trailing slash.
// A refusal never shows a password the value held: healthcheck's lands in
// the orchestrator's record of a container's health checks.
func adminURL(admin string) (*url.URL, error) {
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	u, err := url.Parse(admin)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--admin is not a URL: want the admin listener's URL, such as %s", defaultAdmin)}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--admin %q: want the admin listener's URL, such as %s", u.Redacted(), defaultAdmin)}
	}
	if u.User != nil || u.RawQuery != "" {
		return nil, usageError{fmt.Sprintf("--admin %q: give only scheme, host, port and path; the token comes from STRANGLER_ADMIN_TOKEN", u.Redacted())}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}
