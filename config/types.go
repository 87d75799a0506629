package config

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"strangler/domain"
	"strangler/internal/dsn"
)

// StoreDSN is the state store's address: "sqlite:PATH" or a postgres://
// URL. Its password never shows in config print or in an error.
type StoreDSN string

// UnmarshalText checks the scheme.
func (d *StoreDSN) UnmarshalText(b []byte) error {
	s := string(b)
	path, options, sqlite := dsn.SQLite(s)
	switch {
	case sqlite && path != "":
		if _, err := dsn.SQLiteSync(path, options); err != nil {
			return fmt.Errorf("invalid store: %w", err)
		}
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("invalid PostgreSQL URL: %v", dsn.RedactError(err, s))
		}
		if err := checkHosts(u); err != nil {
			return err
		}
	default:
		return fmt.Errorf("invalid store %q; want sqlite:PATH or postgres://user:pass@host:5432/db", dsn.Redact(s))
	}
	*d = StoreDSN(s)
	return nil
}

// MarshalText writes the address with any password redacted.
func (d StoreDSN) MarshalText() ([]byte, error) { return []byte(dsn.Redact(string(d))), nil }

// Secret is a value that config print and logs never show.
type Secret string

// MarshalText hides the value.
func (s Secret) MarshalText() ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return []byte("<redacted>"), nil
}

// Duration is a time.Duration written like "2s", "150ms" or "7d".
type Duration time.Duration

// UnmarshalText parses a duration; a bare "d" suffix counts days. Its
// numbers are written as every number of the configuration is (number).
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, "-") {
		return fmt.Errorf("duration %q is negative", s)
	}
	// Past about 292 years the nanoseconds would wrap around.
	tooLong := fmt.Errorf("duration %q is too long; at most %dd", s, math.MaxInt64/int64(24*time.Hour))
	if days, ok := strings.CutSuffix(s, "d"); ok && wholeNumber.MatchString(days) {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > math.MaxInt64/int64(24*time.Hour) {
			return tooLong
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	if !durationText.MatchString(s) {
		return fmt.Errorf("invalid duration %q; write it like 500ms, 2s, 1m30s or 7d, in decimal digits", s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return tooLong // the text is well formed: only overflow is left
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration the way it is parsed.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ByteSize is a size in bytes written like "10MiB", "512KiB" or "1048576".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// UnmarshalText parses a size with an optional binary or decimal unit.
func (s *ByteSize) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	num, mult := text, int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(text, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.size
			break
		}
	}
	n, err := ParseWhole(num)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q; write it like 10MiB, 512KiB or 1048576", text)
	}
	*s = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size in the largest binary unit that divides it.
func (s ByteSize) MarshalText() ([]byte, error) {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.size == 0 {
			return []byte(strconv.FormatInt(int64(s)/u.size, 10) + u.suffix), nil
		}
	}
	return []byte(strconv.FormatInt(int64(s), 10)), nil
}

// String writes the size as MarshalText does.
func (s ByteSize) String() string {
	b, _ := s.MarshalText()
	return string(b)
}

// Percent is a share from 0 to 100.
type Percent float64

// UnmarshalText parses a number from 0 to 100; a trailing % is allowed.
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSuffix(strings.TrimSpace(string(b)), "%")
	v, err := ParseDecimal(s)
	// Written so that NaN, which every comparison calls false, would
	// fail too.
	if err != nil || !(v >= 0 && v <= 100) {
		return fmt.Errorf("invalid percent %q; want a number from 0 to 100 in decimal digits, like 25 or 0.1%%", b)
	}
	// v >= 0 let -0 through: kept, it was shown as "-0".
	*p = Percent(math.Abs(v))
	return nil
}

// MarshalText writes the percent in decimal digits with a %, as
// UnmarshalText reads it: as a plain number a small rate was written with
// an exponent, which it refuses.
func (p Percent) MarshalText() ([]byte, error) {
	return []byte(domain.PercentString(float64(p)) + "%"), nil
}

// Sticky names the request attribute that keeps a client on one side of a
// percent split: a header or a cookie.
type Sticky struct {
	// Header is the header name, when stickiness is by header.
	Header string
	// Cookie is the cookie name, when stickiness is by cookie.
	Cookie string
}

// UnmarshalText parses "header:NAME" or "cookie:NAME".
func (s *Sticky) UnmarshalText(b []byte) error {
	kind, name, ok := strings.Cut(string(b), ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || !isToken(name) {
		return fmt.Errorf("invalid sticky %q; write header:NAME or cookie:NAME", b)
	}
	switch kind {
	case "header":
		*s = Sticky{Header: name}
	case "cookie":
		*s = Sticky{Cookie: name}
	default:
		return fmt.Errorf("invalid sticky %q; write header:NAME or cookie:NAME", b)
	}
	return nil
}

// MarshalText writes the sticky key the way it is parsed.
func (s Sticky) MarshalText() ([]byte, error) {
	switch {
	case s.Header != "":
		return []byte("header:" + s.Header), nil
	case s.Cookie != "":
		return []byte("cookie:" + s.Cookie), nil
	}
	return nil, nil
}

// IsZero reports whether no stickiness is configured.
func (s Sticky) IsZero() bool { return s == Sticky{} }

// Credential names a request header or cookie that identifies the
// client, written as a sticky key is: header:NAME or cookie:NAME.
type Credential struct{ Sticky }

// UnmarshalText parses "header:NAME" or "cookie:NAME".
func (c *Credential) UnmarshalText(b []byte) error {
	if err := c.Sticky.UnmarshalText(b); err != nil {
		return fmt.Errorf("invalid credential %q; write header:NAME or cookie:NAME", b)
	}
	return nil
}

// Trigger is one reason for a fallback route to serve legacy.
type Trigger string

// The fallback triggers.
const (
	TriggerNotFound    Trigger = "404"
	TriggerServerError Trigger = "5xx"
	TriggerTimeout     Trigger = "timeout"
	TriggerError       Trigger = "error"
)

// AllTriggers is the default fallback_on.
var AllTriggers = []Trigger{TriggerNotFound, TriggerServerError, TriggerTimeout, TriggerError}

// UnmarshalText parses a trigger name.
func (t *Trigger) UnmarshalText(b []byte) error {
	for _, v := range AllTriggers {
		if string(b) == string(v) {
			*t = v
			return nil
		}
	}
	return fmt.Errorf("unknown fallback trigger %q; want 404, 5xx, timeout or error", b)
}

// HeaderRule is what becomes of a request header whose name holds
// anything but letters, digits and "-" (an underscore, a dot, …).
type HeaderRule string

// The header rules.
const (
	// HeadersDrop drops such headers, as nginx does.
	HeadersDrop HeaderRule = "drop"
	// HeadersReject refuses the request with 400.
	HeadersReject HeaderRule = "reject"
	// HeadersAllow passes them on.
	HeadersAllow HeaderRule = "allow"
)

// UnmarshalText parses a header rule.
func (h *HeaderRule) UnmarshalText(b []byte) error {
	switch r := HeaderRule(b); r {
	case HeadersDrop, HeadersReject, HeadersAllow:
		*h = r
		return nil
	}
	return fmt.Errorf("unknown rule %q; want drop, reject or allow", b)
}

// Method is an HTTP request method.
type Method string

// UnmarshalText parses a method; methods are case-sensitive tokens and
// strangler insists on the conventional upper case to catch typos.
func (m *Method) UnmarshalText(b []byte) error {
	s := string(b)
	if !isToken(s) || strings.ToUpper(s) != s {
		return fmt.Errorf("invalid method %q; want an upper-case HTTP method such as POST", s)
	}
	*m = Method(s)
	return nil
}

// Prefix is a network in CIDR notation; a bare address is a single host.
type Prefix struct{ netip.Prefix }

// UnmarshalText parses "10.0.0.0/8", "fd00::/8" or "192.0.2.7". An
// IPv4 network written in IPv6's mapped form ("::ffff:10.0.0.0/104") is
// kept as the IPv4 network it stands for: a client's address is compared
// unmapped, so the mapped form would never match it (and "::ffff:0:0/96",
// every IPv4 address, would pass for a narrow IPv6 network).
func (p *Prefix) UnmarshalText(b []byte) error {
	s := string(b)
	pr, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return fmt.Errorf("invalid network %q; want CIDR like 10.0.0.0/8 or an address", s)
		}
		pr = netip.PrefixFrom(a, a.BitLen())
	}
	if pr.Addr().Is4In6() && pr.Bits() >= 96 {
		pr = netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-96)
	}
	p.Prefix = pr.Masked()
	return nil
}

// URL is an absolute http or https URL.
type URL struct{ *url.URL }

// UnmarshalText parses an absolute http(s) URL without query or fragment.
func (u *URL) UnmarshalText(b []byte) error {
	v, err := url.Parse(string(b))
	shown := shownURL(string(b))
	switch {
	case err != nil:
		return fmt.Errorf("invalid URL %q", shown)
	case v.Scheme != "http" && v.Scheme != "https":
		return fmt.Errorf("invalid URL %q; want http:// or https://", shown)
	case v.Host == "":
		return fmt.Errorf("invalid URL %q: no host", shown)
	case v.RawQuery != "" || v.Fragment != "" || v.User != nil:
		return fmt.Errorf("invalid URL %q: a backend URL takes no user, query or fragment", shown)
	}
	u.URL = v
	return nil
}

// shownURL is a URL as an error about it shows it: without its password,
// query or fragment, which is where API keys and tokens go.
func shownURL(s string) string {
	s = dsn.Redact(s)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i+1] + "…"
	}
	return s
}

// MarshalText writes the URL with any password redacted.
func (u URL) MarshalText() ([]byte, error) {
	if u.URL == nil {
		return nil, nil
	}
	return []byte(u.Redacted()), nil
}

// isToken reports whether s is an RFC 9110 token (header and method names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
