package canonical

import (
	"net/http"
	"testing"
)

func TestAPostStandsForTheMethodItsOverridesName(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	js := http.Header{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		name, method, target, body string
		h                          http.Header
		want                       bool
	}{
		{"a plain POST", "POST", "/items", `{"name":"x"}`, js, true},
		{"a PUT", "PUT", "/items/7", `{}`, js, false},
		{"a POST with X-HTTP-Method-Override: DELETE", "POST", "/items/7", ``, http.Header{"X-Http-Method-Override": {"DELETE"}}, false},
		{"a POST with X-HTTP-Method-Override spelled with _", "POST", "/items/7", ``, http.Header{"X_http_method_override": {"put"}}, false},
		{"a POST with _method in the query", "POST", "/items/7?_method=PUT", ``, nil, false},
		{"a POST with _method in a form", "POST", "/items/7", `a=1&_method=delete`, form, false},
		{"a POST with %5Fmethod in a form", "POST", "/items/7", `a=1&%5Fmethod=PATCH`, form, false},
		{"a POST with _method in a JSON object", "POST", "/items/7", `{"_method":"PUT"}`, js, false},
		{"a POST whose override says POST", "POST", "/items", `_method=POST`, form, true},
		{"a POST whose body does not parse", "POST", "/items", `{"method":`, js, true},
		{"a POST whose overrides disagree", "POST", "/items/7?_method=PUT", ``, http.Header{"X-Http-Method-Override": {"DELETE"}}, false},
	} {
		if got := StandsFor(c.method, c.h, c.target, []byte(c.body)) == http.MethodPost; got != c.want {
			t.Errorf("%s: a create = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestStandsFor(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, c := range []struct {
		name, method, target, body string
		h                          http.Header
		want                       string
	}{
		{"a DELETE", "DELETE", "/items/7", ``, nil, "DELETE"},
		{"a PUT is not overridden", "PUT", "/items/7?_method=DELETE", ``, nil, "PUT"},
		{"a POST standing for a DELETE", "POST", "/items/7", `_method=delete`, form, "DELETE"},
		{"a POST whose overrides agree", "POST", "/items/7?_method=DELETE", ``, http.Header{"X-Http-Method-Override": {"delete"}}, "DELETE"},
		{"a POST whose overrides disagree", "POST", "/items/7?_method=PUT", ``, http.Header{"X-Http-Method-Override": {"DELETE"}}, ""},
	} {
		if got := StandsFor(c.method, c.h, c.target, []byte(c.body)); got != c.want {
			t.Errorf("%s: StandsFor = %q, want %q", c.name, got, c.want)
		}
	}
}
