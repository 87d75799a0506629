package canonical

import (
	"net/http"
	"testing"
)

func TestAPostStandingForAnotherMethodIsNoCreate(t *testing.T) {
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
	} {
		if got := Creates(c.method, c.h, c.target, []byte(c.body)); got != c.want {
			t.Errorf("%s: Creates = %v, want %v", c.name, got, c.want)
		}
	}
}
