package edge

import (
	"net/http"
	"time"
)

// RefusalLinger is how long a refused request's unread body is still read
// after the answer, as nginx's lingering_timeout: a client that sends its
// whole body before it reads finds its answer, not a reset connection.
const RefusalLinger = 5 * time.Second

// CloseUnread readies the answer to req, a request refused without its
// body read, on both listeners. net/http reads up to 256 KiB of an unread
// body before it writes the answer, and again when it closes the body, so
// that the connection can carry the next request, and it reads without a
// deadline (the admin listener's is its 30 s read timeout): a client that
// declared a body and sends none would wait that long for its answer and
// hold the connection. With Connection: close, net/http writes the answer
// at once and reads on until RefusalLinger has passed. HTTP/2 ends the
// stream alone, and Connection: close would end the connection's other
// streams, so an HTTP/2 request, like one without a body, is left as is.
func CloseUnread(w http.ResponseWriter, req *http.Request) {
	if req.ProtoMajor != 1 || req.Body == nil || req.Body == http.NoBody {
		return
	}
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(RefusalLinger))
}
