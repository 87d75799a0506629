package control

import "net/http"

// pageRoutes registers the status page.
func (a *admin) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the status page is not built yet", http.StatusNotImplemented)
	})
}
