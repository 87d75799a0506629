// Package dsn reads database addresses: it splits an embedded store's
// (sqlite:PATH?OPTIONS), and hides the passwords in every form strangler
// accepts or passes on: URLs (postgres://user:pass@host/db, a password=…
// in the query string, hosts written in ways net/url refuses), PostgreSQL
// key=value strings (host=db password='a b'), and the MySQL driver's
// user:pass@tcp(host:3306)/db. It imports only the standard library, so
// every package that opens a database can use it.
package dsn

import (
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Mask replaces a password: what net/url's Redacted and pgx write.
const Mask = "xxxxx"

// Redact returns s with every password in it replaced by Mask. An
// address without one comes back unchanged.
func Redact(s string) string {
	spans := secretSpans(s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		b.WriteString(Mask)
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// RedactError returns err with the passwords of dsn, the address it is
// about, taken out of its message, in whatever form a driver echoes them:
// the address itself; the password as written, decoded or re-encoded;
// what is left of it beside a driver's own mask; a piece of it that a
// parse error quotes. errors.Is and errors.As still see err's chain.
func RedactError(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if redacted := Redact(dsn); redacted != dsn {
		msg = strings.ReplaceAll(msg, dsn, redacted)
	}
	secrets := secrets(dsn)
	for _, secret := range secrets {
		msg = strings.ReplaceAll(msg, secret, Mask)
	}
	// A driver that masks only part of a malformed password leaves the
	// rest next to its mask (pgx: password=xxxxx&rest).
	for _, secret := range secrets {
		for k := 1; k < len(secret); k++ {
			msg = strings.ReplaceAll(msg, Mask+secret[k:], Mask)
			msg = strings.ReplaceAll(msg, secret[:k]+Mask, Mask)
		}
	}
	msg = redactQuoted(msg, secrets)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactQuoted replaces each "quoted" or `quoted` piece of msg that is
// part of a secret with "…": net/url and pgx quote the bytes they could
// not parse, which may be a piece of a password.
func redactQuoted(msg string, secrets []string) string {
	var b strings.Builder
	for {
		i := strings.IndexAny(msg, "\"`")
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		quote := msg[i]
		j := i + 1
		for j < len(msg) && msg[j] != quote {
			if msg[j] == '\\' && quote == '"' {
				j++
			}
			j++
		}
		if j >= len(msg) {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		quoted := msg[i : j+1]
		content := quoted[1 : len(quoted)-1]
		if v, err := strconv.Unquote(quoted); err == nil {
			content = v
		}
		// The delimiters around a piece (":pass" for a port) are not its.
		content = strings.Trim(content, ":/@?#&=")
		if content != "" && slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(s, content) }) {
			quoted = string(quote) + "…" + string(quote)
		}
		b.WriteString(quoted)
		msg = msg[j+1:]
	}
}

// span is a password's bytes in an address: s[start:end].
type span struct{ start, end int }

// secretSpans finds the passwords in s, in order.
func secretSpans(s string) []span {
	if _, _, ok := SQLite(s); ok {
		// A file path, which holds no password; an @ in it is not userinfo.
		return nil
	}
	var spans []span
	switch {
	case isURL(s):
		spans = urlSpans(s)
	case isKeyValue(s):
		spans = keyValueSpans(s)
	case strings.Contains(s, "://"):
		// A MySQL DSN whose password starts with // reads as a URL of an
		// unknown scheme: take both readings.
		spans = append(urlSpans(s), mysqlSpans(s)...)
	default:
		spans = mysqlSpans(s)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	// Readings of a malformed address may overlap: join them.
	var merged []span
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// isURL says whether s is a URL of a scheme strangler takes.
func isURL(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql", "mysql", "mariadb", "http", "https":
		return ok
	}
	return false
}

// secrets returns the passwords in s as written, decoded, and encoded the
// ways net/url writes them, longest first so that no replacement leaves a
// piece of a longer one.
func secrets(s string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != "" && v != Mask && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, sp := range secretSpans(s) {
		raw := s[sp.start:sp.end]
		add(raw)
		if v, err := url.PathUnescape(raw); err == nil {
			add(v)
		}
		if v, err := url.QueryUnescape(raw); err == nil {
			add(v)
		}
		if v := unquoteKeyValue(raw); v != raw {
			add(v)
		}
	}
	for _, v := range append([]string(nil), out...) {
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
		add(strings.TrimPrefix(url.UserPassword("", v).String(), ":"))
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// isSecretKey says whether a parameter carries a password.
func isSecretKey(key string) bool {
	switch strings.ToLower(key) {
	case "password", "sslpassword":
		return true
	}
	return false
}

// urlSpans finds the password in a URL's userinfo and the values of its
// password parameters. Parsers disagree on where a userinfo with an
// unescaped @, #, ? or / ends (net/url takes the last @ before any of
// /?#, pgx the first @ before a /), and a base64 password holds a / as
// often as not; so the userinfo here ends at the last @ of all, and the
// query is read both from after it and from the first ?. An @ in a query
// value after a port then hides a little too much: hiding too much beats
// showing a password.
func urlSpans(s string) []span {
	begin := strings.Index(s, "://") + len("://")
	rest := s[begin:]
	at := strings.LastIndexByte(rest, '@')
	var spans []span
	if at >= 0 {
		if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
			spans = append(spans, span{begin + colon + 1, begin + at})
		}
		if q := strings.IndexByte(rest[at:], '?'); q >= 0 {
			spans = append(spans, paramSpans(s, begin+at+q+1)...)
		}
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		spans = append(spans, paramSpans(s, begin+q+1)...)
	}
	return spans
}

// paramSpans finds the values of password parameters in the query string
// s[from:].
func paramSpans(s string, from int) []span {
	end := len(s)
	// next is where the pair at start ends.
	next := func(start int) int {
		if stop := strings.IndexByte(s[start:end], '&'); stop >= 0 {
			return start + stop
		}
		return end
	}
	var spans []span
	for start := from; start < end; {
		stop := next(start)
		key, _, ok := strings.Cut(s[start:stop], "=")
		if k, err := url.QueryUnescape(key); ok && (err == nil && isSecretKey(k) || isSecretKey(key)) {
			// An & left unescaped in the password splits it; what follows,
			// up to the next key=value, is taken as the rest of it.
			for stop < end && !strings.Contains(s[stop+1:next(stop+1)], "=") {
				stop = next(stop + 1)
			}
			spans = append(spans, span{start + len(key) + 1, stop})
		}
		start = stop + 1
	}
	return spans
}

// isKeyValue says whether s is a PostgreSQL key=value string: its first
// word is a name followed by =.
func isKeyValue(s string) bool {
	s = strings.TrimLeft(s, " \t\n\r")
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return false
	}
	key := strings.TrimRight(s[:eq], " \t\n\r")
	for i, c := range key {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return key != ""
}

// keyValueSpans finds the password values of a key=value string, read as
// libpq reads it: spaces around =, values bare up to a space or quoted
// with '…', and \ escaping the next character in both.
func keyValueSpans(s string) []span {
	var spans []span
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	i := 0
	for i < len(s) {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		keyStart := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[keyStart:i]
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			// Not key=value: libpq refuses the string. Everything after a
			// password key may be its value, so hide it all.
			if isSecretKey(key) {
				spans = append(spans, span{i, len(s)})
			}
			return spans
		}
		i++ // =
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		valueStart := i
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i+1, len(s))
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i = min(i, len(s))
		}
		if isSecretKey(key) {
			spans = append(spans, span{valueStart, i})
		}
	}
	return spans
}

// unquoteKeyValue undoes key=value quoting: 'a b' → a b, \' → '.
func unquoteKeyValue(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = v[1 : len(v)-1]
	}
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// mysqlSpans finds the password of a MySQL driver DSN,
// [user[:password]@][net[(addr)]]/dbname[?params], split as
// go-sql-driver/mysql splits it: the userinfo ends at the last @ before
// the last /, and the password starts after its first colon. Password
// parameters in the query are hidden too.
func mysqlSpans(s string) []span {
	slash := strings.LastIndexByte(s, '/')
	if slash < 0 {
		return nil
	}
	var spans []span
	if at := strings.LastIndexByte(s[:slash], '@'); at >= 0 {
		if colon := strings.IndexByte(s[:at], ':'); colon >= 0 {
			spans = append(spans, span{colon + 1, at})
		}
	}
	if q := strings.IndexByte(s[slash:], '?'); q >= 0 {
		spans = append(spans, paramSpans(s, slash+q+1)...)
	}
	return spans
}
