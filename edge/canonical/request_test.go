package canonical

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAdmit(t *testing.T) {
	p := NewPolicy([]string{"PROPFIND", "GET"}, false)
	reject := NewPolicy(nil, true)
	req := func(method, target string, h ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method, r.RequestURI = method, target
		for i := 0; i+1 < len(h); i += 2 {
			r.Header.Add(h[i], h[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name   string
		policy *Policy
		r      *http.Request
		want   string // the canonical path
		star   bool
		err    error
	}{
		{name: "a standard method passes", r: req("PATCH", "/a"), want: "/a"},
		{name: "a method listed in allow_methods passes", r: req("PROPFIND", "/dav/"), want: "/dav/"},
		{name: "any other method is refused", r: req("PURGE", "/a"), err: errMethod},
		{name: "methods are case-sensitive", r: req("get", "/a"), err: errMethod},
		{name: "CONNECT is never let through", r: req("CONNECT", "legacy.internal:443"), err: errMethod},
		{name: "TRACE is never let through", r: req("TRACE", "/"), err: errMethod},
		{name: "OPTIONS * is the facade's own", r: req("OPTIONS", "*"), star: true},
		{name: "GET * is refused", r: req("GET", "*"), err: errStar},
		{name: "the query is not part of the path", r: req("GET", "/a/%2e%2e/b?x=/../&y=%zz"), want: "/b"},
		{name: "an absolute-form target is routed on its path", r: req("GET", "http://evil.example/a/../b?q"), want: "/b"},
		{name: "an absolute-form target without a path is the root", r: req("GET", "http://evil.example?q"), want: "/"},
		{name: "a bad path is refused", r: req("GET", "/a/../../etc/passwd"), err: errAboveRoot},
		{name: "a fragment is refused", r: req("PUT", "/records/4#/../5"), err: errFragment},
		{name: "a fragment in the query is refused", r: req("GET", "/a?x#y"), err: errFragment},
		{name: "a fragment in an absolute-form target is refused", r: req("GET", "http://evil.example#/a"), err: errFragment},
		{name: "an encoded # is data", r: req("GET", "/a%23b"), want: "/a%23b"},
		{name: "two Authorization headers are refused", r: req("GET", "/a", "Authorization", "Bearer a", "Authorization", "Bearer b"), err: errTwoAuth},
		{name: "a Host beside a differing authority is refused", r: req("GET", "/a", "Host", "other.example"), err: errHost},
		{name: "a Host equal to the authority passes", r: req("GET", "/a", "Host", "EXAMPLE.com"), want: "/a"},
		{name: "odd header names pass the drop policy", r: req("GET", "/a", "X_User", "1"), want: "/a"},
		{name: "odd header names are refused under reject", policy: reject, r: req("GET", "/a", "X.User", "1"), err: errOddHeaderName},
	} {
		t.Run(c.name, func(t *testing.T) {
			policy := p
			if c.policy != nil {
				policy = c.policy
			}
			got, err := policy.Admit(c.r)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Admit = %+v, %v; want the refusal %q", got, err, c.err)
				}
				return
			}
			if err != nil || got.Path.Escaped != c.want || got.OptionsStar != c.star {
				t.Fatalf("Admit = %+v, %v; want path %q, OPTIONS * %v", got, err, c.want, c.star)
			}
		})
	}
}

func TestAllowListsEveryMethodThatPasses(t *testing.T) {
	if got, want := NewPolicy([]string{"PROPFIND", "GET", "PROPFIND"}, false).Allow(), "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, PROPFIND"; got != want {
		t.Errorf("Allow() = %q, want %q", got, want)
	}
}

func TestOddHeaderName(t *testing.T) {
	for name, want := range map[string]bool{
		"X-User": false, "Content-Type": false, "X-1": false,
		"X_User": true, "X.User": true, "X~User": true, "X!User": true, "Xé": true,
		// The ends of each range pass; the characters just outside do not.
		"AZaz09": false, "X@": true, "X[": true, "X`": true, "X{": true, "X/": true, "X:": true,
	} {
		if got := OddHeaderName(name); got != want {
			t.Errorf("OddHeaderName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestIsForm(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/x-www-form-urlencoded":                   true,
		"Application/X-WWW-Form-Urlencoded; charset=utf-8":    true,
		"application/x-www-form-urlencoded, application/json": true,
		" multipart/form-data;boundary=b":                     true,
		"application/json":                                    false,
		"application/json, application/x-www-form-urlencoded": false,
		// Rack reads an untyped POST body as a form, and multipart/mixed
		// and multipart/related as multipart/form-data.
		"":                               true,
		" ":                              true,
		"Multipart/Mixed; boundary=b":    true,
		"multipart/related; boundary=b":  true,
		"; charset=utf-8":                false,
		"text/plain":                     false,
		"multipart/byteranges; boundary": false,
	} {
		if got := IsForm(ct); got != want {
			t.Errorf("IsForm(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestBodyMethodOverrides(t *testing.T) {
	mp := func(name, value string) string {
		return "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n--b--\r\n"
	}
	const form, multipart = "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"
	for _, c := range []struct {
		contentType, body, want string
	}{
		{form, "a=1&_method=put", "PUT"},
		{form + "; charset=utf-8", "_method=+delete+&a=1", "DELETE"},
		{form, "a=1&%5Fmethod=PATCH", "PATCH"},
		{form, "a=1&[method=PATCH", "PATCH"},
		{form, "a=1&method=PUT", ""},
		// Rack 2 drops brackets around a name.
		{form, "a=1&[_method]=PUT", "PUT"},
		{form, "a=1&]]_method]=PUT", "PUT"},
		{form, "a=1&_method]=PUT", "PUT"},
		{multipart, mp("[_method]", "put"), "PUT"},
		{form, "a=1&[_method][x]=PUT", ""},
		// qs (Express) makes these the array _method, and Express's
		// method-override takes its first element.
		{form, "a=1&_method[]=PUT", "PUT"},
		{form, "a=1&_method%5B0%5D=PUT", "PUT"},
		{form, "a=1&_method[20]=PUT", "PUT"},
		{form, "a=1&_method[21]=PUT", ""}, // past qs's arrayLimit: an object
		{form, "a=1&_method[01]=PUT", ""}, // not an index as qs writes one
		{form, "a=1&_method[x]=PUT", ""},
		// Tomcat decodes a form in the charset its type names.
		{form + "; charset=ibm037", "%6D%94%85%A3%88%96%84=%D7%E4%E3", "error"},
		{form + "; charset=UTF-16", "_method=PUT", "error"},
		{form + "; charset=UTF-8", "_method=PUT", "PUT"},
		{form + "; charset=iso-8859-1", "a=1", ""},
		// PHP ends a name at a NUL.
		{form, "a=1&_method%00x=PUT", "PUT"},
		{multipart, mp("_method\x00x", "put"), "error"}, // a disposition with a NUL does not parse
		{multipart, mp("_method", "put"), "PUT"},
		{multipart, mp("title", "put"), ""},
		// Laravel reads a JSON object's _method as a form's.
		{"application/json", `{"_method":"PUT"}`, "PUT"},
		{"application/vnd.api+json; charset=utf-8", `{"a":[1,{"_method":"x"}],"_method":" delete "}`, "DELETE"},
		{"Application/JSON", `{"\u005fmethod":"patch"}`, "PATCH"},
		{"application/json", `{"_method":"PUT","_method":"POST"}`, "PUT"},
		{"application/json", `{"\u005f\u006d\u0065thod":"put"}`, "PUT"},
		{"application/json", `{"method":"PUT","note":"_method"}`, ""},
		{"application/json", `{"name":"\u00c5se"}`, ""},
		{"application/json", `{"a":{"_method":"PUT"}}`, ""},
		{"application/json", `[{"_method":"PUT"}]`, ""},
		{"application/json", `{"_method":["PUT","POST"]}`, "PUT"}, // Express: the first element
		{"application/json", `{"_method":[{"a":"PUT"}]}`, ""},
		{"application/json", `{"_method":"PUT"} x`, "error"},
		{"application/json", `{"_method":"PUT"`, "error"},
		{"text/plain", `{"_method":"PUT"}`, ""},
		// Express's method-override takes the first of a list.
		{form, "_method=PUT,POST", "PUT"},
		{form, "", ""},
		// What does not parse whole may hold a _method another parser finds.
		{form, "a=1;_method=PUT", "error"},
		{form, "a=%zz&_method=PUT", "error"},
		{multipart, "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b\r\nbroken header\r\n\r\n--b--\r\n", "error"},
		{"multipart/form-data", mp("_method", "put"), "error"},
		// Rack reads an untyped body as urlencoded, other multipart
		// types as multipart/form-data, and a part's name whatever its
		// disposition type, or from its Content-ID.
		{"", "a=1&_method=PUT", "PUT"},
		{"", `{"note":"not a form"}`, ""},
		{"", "a=%zz&_method=PUT", "error"},
		{"multipart/mixed; boundary=b", mp("_method", "put"), "PUT"},
		{"multipart/related; boundary=b", mp("_method", "delete"), "DELETE"},
		{multipart, "--b\r\nContent-Disposition: attachment; name=\"_method\"\r\n\r\nPUT\r\n--b--\r\n", "PUT"},
		{multipart, "--b\r\nContent-ID: _method\r\n\r\nPUT\r\n--b--\r\n", "PUT"},
		{multipart, "--b\r\nContent-Disposition: form-data; name=\"_method\r\n\r\nPUT\r\n--b--\r\n", "error"},
		// PHP reads the type up to a ",": a form to it.
		{"application/x-www-form-urlencoded, application/json", "_method=PUT", "error"},
	} {
		got := ""
		ms, err := BodyMethodOverrides(c.contentType, []byte(c.body))
		switch {
		case err != nil:
			got = "error"
		case len(ms) > 0:
			got = ms[0]
		}
		if got != c.want {
			t.Errorf("%s %q: override %q, want %q", c.contentType, c.body, got, c.want)
		}
	}
}
