package shadow

import (
	"bytes"
	"fmt"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"strangler/internal/human"
	"strangler/phi"
)

// hopByHop are the headers of one connection (RFC 9110 section 7.6.1),
// meaningless in a replay. Host and Content-Length curl sets itself.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
}

// curlCommand writes req as a curl command against the backend at base,
// ready to paste into a POSIX shell once its placeholders are filled in.
// target is req's target with path parameters and query values replaced
// by placeholders ({id:h:…}); a JSON body keeps its shape with every value
// not kept (compare.keep_values) a placeholder, and each key that is data
// too (one that does not read like a field name, or is one of params, the
// request's path parameters and query values), and a body of any other
// kind is left out. Only Content-Type, Accept and compare.headers are
// kept (never a credential, the client's address or software), the
// values of compare.headers as placeholders unless keep_values names
// them, and the command says what to fill in. Every argument is single-quoted where
// needed, or written by printf where it holds a character a terminal
// would act on. The request carries X-Strangler-Shadow: 1 like the shadow copy
// did, and curl's own default headers are suppressed where the original
// request had none.
func curlCommand(base string, req RequestCopy, target string, params []phi.Param, r *Redactor) string {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	body, left := r.requestBody(req.Body)
	if body != nil && len(params) > 0 {
		body = []byte(r.hideAskedKeys(string(body), params))
	}
	args := []string{"curl", "-sS"}
	switch {
	case method == "HEAD":
		args = append(args, "-I")
	case method == "GET" && body == nil && left == 0:
		args = append(args, "-i")
	default:
		args = append(args, "-i", "-X", shellArg(method))
	}

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
	args = append(args, shellArg(u))

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
		if r.sent[name] && !skip[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	placeholders := strings.Contains(target, "{h:") || strings.Contains(target, ":h:") || bytes.Contains(body, []byte("{h:"))
	header := func(line string) { args = append(args, "-H", shellArg(line)) }
	for _, name := range names {
		for _, v := range h[name] {
			if !r.clearHeader(name) {
				v = r.h.Placeholder("", v)
				placeholders = true
			}
			header(name + ": " + v)
		}
	}
	header("X-Strangler-Shadow: 1")
	// "-H 'Name:'" removes a header curl would add on its own.
	if !slices.Contains(names, "Accept") {
		header("Accept:")
	}
	header("User-Agent:")
	if h["Accept-Encoding"] != nil {
		args = append(args, "--compressed") // and show the body decoded
	}

	prefix := ""
	if body != nil {
		if h["Content-Type"] == nil {
			header("Content-Type:")
		}
		if len(body) > 1024 {
			header("Expect:") // curl would send Expect: 100-continue
		}
		if quotable(body) {
			args = append(args, "--data-binary", shellQuote(string(body)))
		} else {
			prefix = "printf " + printfFormat(body) + " | "
			args = append(args, "--data-binary", "@-")
		}
	}
	var notes []string
	if placeholders {
		notes = append(notes, "replace each {…h:…} placeholder with the value it stands for")
	}
	if left > 0 {
		notes = append(notes, "the request body ("+strconv.Itoa(left)+" bytes, not JSON) is not kept: add it with --data-binary")
	}
	cmd := prefix + strings.Join(args, " ")
	if len(notes) > 0 {
		cmd += " # " + strings.Join(notes, "; ")
	}
	return cmd
}

// requestBody is the body to replay: a JSON body with every value not
// kept replaced by its placeholder, or nil and the length of a body that
// is not JSON, which is left out.
func (r *Redactor) requestBody(body []byte) ([]byte, int) {
	if len(body) == 0 {
		return nil, 0
	}
	var t tree
	if t.parse(body) != nil {
		return nil, len(body)
	}
	return appendJSON(nil, &t, 0, r.paths, r, 0), 0
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

// shellArg is s as one shell word that shows as it reads: single-quoted
// when quotable, else the output of printf in double quotes, so that a
// kept header value or query key holding a tab, a C1 control or U+202E
// (which a browser and encoding/json pass as they are) neither acts on
// the terminal the command is pasted into nor shows the command other
// than it runs. For one line: the shell drops trailing newlines.
func shellArg(s string) string {
	if quotable([]byte(s)) {
		return shellQuote(s)
	}
	return `"$(printf ` + printfFormat([]byte(s)) + `)"`
}

// quotable reports whether text can go inside single quotes and survive
// being pasted into a terminal: valid UTF-8 without a character a
// terminal acts on (human.ActsOnTerminal) other than newlines: a tab
// would trigger completion, a carriage return, an escape sequence or a
// C1 control would act on the terminal, a bidirectional override would
// show the command's words in another order than the shell reads them.
func quotable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r != '\n' && human.ActsOnTerminal(r) {
			return false
		}
	}
	return true
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
