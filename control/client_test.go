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
