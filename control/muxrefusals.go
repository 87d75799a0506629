package control

import "net/http"

// muxRefusals has the mux's own refusals, a path no endpoint serves (404)
// and a method the path's endpoints do not take (405, with Allow),
// answered in JSON like every other refusal of the admin API: net/http
// answers them in plain text, which a client of the API (the CLI
// included) cannot read as an error. Neither answer echoes the path or
// the method: a method is any token a client likes.
func (a *admin) muxRefusals(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No pattern: the mux refuses r, or redirects it to its clean
		// path, which muxRefusalWriter passes on.
		if _, pattern := a.mux.Handler(r); pattern == "" {
			w = &muxRefusalWriter{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	})
}

// muxRefusalWriter replaces the mux's plain-text 404 and 405 with JSON.
type muxRefusalWriter struct {
	http.ResponseWriter
	// replaced is set once the JSON answer is written: the mux's text is
	// then dropped.
	replaced bool
}

func (w *muxRefusalWriter) WriteHeader(code int) {
	var msg string
	switch code {
	case http.StatusNotFound:
		msg = "no endpoint of the admin listener serves this path"
	case http.StatusMethodNotAllowed:
		msg = "the method is not allowed on this path; it takes " + w.Header().Get("Allow")
	default:
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.replaced = true
	writeJSON(w.ResponseWriter, code, map[string]string{"error": msg})
}

func (w *muxRefusalWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *muxRefusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
