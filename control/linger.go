package control

import (
	"net/http"

	"strangler/edge"
)

// closeRefused has every refusal of h (a status from 400 up: a missing
// token, a role, a method, a body too large, a path no endpoint serves)
// answered at once, as the public listener answers its own: without it
// net/http would first wait for the body of the request, up to the admin
// listener's read timeout, when its client declared one and never sent
// it. See edge.CloseUnread.
func closeRefused(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&refusalWriter{ResponseWriter: w, req: r}, r)
	})
}

// refusalWriter is the ResponseWriter of closeRefused.
type refusalWriter struct {
	http.ResponseWriter
	req *http.Request
}

func (w *refusalWriter) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		edge.CloseUnread(w.ResponseWriter, w.req)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
