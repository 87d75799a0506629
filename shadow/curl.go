package shadow

import (
	"fmt"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// hopByHop are the headers of one connection (RFC 9110 section 7.6.1),
// meaningless in a replay. Host and Content-Length curl sets itself.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
}

// curlCommand writes req as a curl command against the backend at base,
// ready to paste into a POSIX shell: every argument single-quoted where
// needed, redacted values replaced by their hash, and a body that cannot
// be written safely inside quotes (control bytes, invalid UTF-8) piped
// in through printf. The request carries X-Strangler-Shadow: 1 like the
// shadow copy did, and curl's own default headers are suppressed where
// the original request had none, so the backend sees what it saw.
func curlCommand(base string, req RequestCopy, r *Redactor) string {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	body, note := r.requestBody(req.Body)
	args := []string{"curl", "-sS"}
	switch {
	case method == "HEAD":
		args = append(args, "-I")
	case method == "GET" && body == nil:
		args = append(args, "-i")
	default:
		args = append(args, "-i", "-X", shellQuote(method))
	}

	target := r.redactQuery(req.Target)
	if target == "*" { // OPTIONS *
		args = append(args, "--request-target", "'*'")
		target = "/"
	} else if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	path, _, _ := strings.Cut(target, "?")
	if hasDotSegment(path) {
		args = append(args, "--path-as-is") // curl would resolve them
	}
	u := strings.TrimSuffix(base, "/") + target
	if strings.ContainsAny(u, "[]{}") {
		args = append(args, "-g") // no URL globbing
	}
	args = append(args, shellQuote(u))

	h := map[string][]string{}
	for name, values := range req.Header {
		h[textproto.CanonicalMIMEHeaderKey(name)] = append(h[textproto.CanonicalMIMEHeaderKey(name)], values...)
	}
	skip := map[string]bool{}
	for _, name := range hopByHop {
		skip[name] = true
	}
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			skip[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	names := make([]string, 0, len(h))
	for name := range h {
		if !skip[name] && !strings.HasPrefix(name, "X-Strangler-") && name != "Accept-Encoding" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	header := func(line string) { args = append(args, "-H", shellQuote(line)) }
	for _, name := range names {
		for _, v := range h[name] {
			if r.header(name) {
				v = r.Hash(v)
			}
			header(name + ": " + v)
		}
	}
	header("X-Strangler-Shadow: 1")
	// "-H 'Name:'" removes a header curl would add on its own.
	for _, name := range []string{"Accept", "User-Agent"} {
		if h[name] == nil {
			header(name + ":")
		}
	}
	if h["Accept-Encoding"] != nil {
		args = append(args, "--compressed") // and show the body decoded
	}

	prefix := ""
	if body != nil {
		if h["Content-Type"] == nil {
			header("Content-Type:")
		}
		if h["Expect"] == nil && len(body) > 1024 {
			header("Expect:") // curl would send Expect: 100-continue
		}
		if quotable(body) {
			args = append(args, "--data-binary", shellQuote(string(body)))
		} else {
			prefix = "printf " + printfFormat(body) + " | "
			args = append(args, "--data-binary", "@-")
		}
	}
	cmd := prefix + strings.Join(args, " ")
	if note != "" {
		cmd += " # " + note
	}
	return cmd
}

// requestBody is the body to replay: as sent, with redacted JSON fields
// hashed, or nil and a note when redaction is asked and the body is not
// JSON, so it cannot be redacted field by field.
func (r *Redactor) requestBody(body []byte) ([]byte, string) {
	if len(body) == 0 {
		return nil, ""
	}
	if !r.any {
		return body, ""
	}
	var t tree
	if t.parse(body) != nil {
		return nil, "request body left out: " + strconv.Itoa(len(body)) + " bytes, not JSON, and compare.redact is set"
	}
	return appendJSON(nil, &t, 0, r.paths, r, 0), ""
}

// redactQuery hashes the values of redacted query parameters in target.
func (r *Redactor) redactQuery(target string) string {
	path, query, ok := strings.Cut(target, "?")
	if !ok || len(r.params) == 0 {
		return target
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !r.params[queryUnescape(k)] {
			continue
		}
		// The hash is letters, digits and a colon: nothing to escape.
		parts[i] = k + "=" + r.Hash(queryUnescape(v))
	}
	return path + "?" + strings.Join(parts, "&")
}

// queryUnescape decodes a query component, or returns it as it is when it
// is not valid escaping.
func queryUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '+':
			b.WriteByte(' ')
		case s[i] == '%' && i+2 < len(s) && hexVal(s[i+1]) >= 0 && hexVal(s[i+2]) >= 0:
			b.WriteByte(byte(hexVal(s[i+1])<<4 | hexVal(s[i+2])))
			i += 2
		case s[i] == '%':
			return s
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func hasDotSegment(path string) bool {
	for _, s := range strings.Split(path, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}

// shellQuote quotes s for a POSIX shell. Inside single quotes nothing is
// special but the single quote itself, so each one in s ends the quoting,
// is written escaped, and the quoting resumes.
func shellQuote(s string) string {
	safe := s != ""
	for i := 0; i < len(s) && safe; i++ {
		c := s[i]
		safe = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("@%+=:,./_-", c) >= 0
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quotable reports whether a body can go inside single quotes and survive
// being pasted into a terminal: valid UTF-8 without control characters
// other than newlines (a tab would trigger completion, a carriage return
// or an escape sequence would act on the terminal).
func quotable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}

// printfFormat writes b as a quoted printf format that prints exactly b:
// printable ASCII as it is, % and \ doubled, anything else as an octal
// escape (POSIX printf understands \ddd in the format).
func printfFormat(b []byte) string {
	var s strings.Builder
	s.WriteByte('\'')
	for i, c := range b {
		switch {
		case c == '%':
			s.WriteString("%%")
		case c == '\\':
			s.WriteString(`\\`)
		case c == '\'':
			s.WriteString(`'\''`)
		case c == '\n':
			s.WriteString(`\n`)
		case c >= 0x20 && c < 0x7f && !(i == 0 && c == '-'): // a leading - could pass for an option
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, `\%03o`, c)
		}
	}
	s.WriteByte('\'')
	return s.String()
}
