package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestClientSendsAnEscapedPathOnce: a name the caller escaped reaches the
// admin API as that name, not escaped a second time.
func TestClientSendsAnEscapedPathOnce(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.EscapedPath()
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/base")
	c := NewClient(base, "t")
	if _, err := c.Call(context.Background(), http.MethodGet, "/admin/routes/"+url.PathEscape("a b/c"), nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "/base/admin/routes/a%20b%2Fc" {
		t.Errorf("the API got %s, want /base/admin/routes/a%%20b%%2Fc", p)
	}
}

// TestClientErrorsActOnNoTerminal: the CLI prints an answer's error
// message; whatever answers at --admin (a garbled proxy, another
// program) must not reach the operator's terminal with an escape
// sequence, a C1 control or a bidirectional override through it.
func TestClientErrorsActOnNoTerminal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error": "no\u001b]0;pwned\u0007 such\u009b2J repair\u202e"}`))
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	_, err := NewClient(base, "t").Call(context.Background(), http.MethodGet, "/admin/repairs/1", nil, nil, "")
	if err == nil {
		t.Fatal("a 409 is no error")
	}
	if got, want := err.Error(), `no\u001b]0;pwned\u0007 such\u009b2J repair\u202e`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}
