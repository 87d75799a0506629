package edge

import (
	"log/slog"
	"net/http"
	"time"

	"strangler/internal/golog"
)

// Limits of the public listener. Read and write timeouts stay off: uploads
// and downloads through the facade may legitimately take hours.
const (
	// readHeaderTimeout stops clients that open connections and trickle
	// headers (slowloris) from holding them.
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// maxHeaderBytes is the 64 KiB header limit; net/http allows 4 KiB of
	// slack on top of the value it is given.
	maxHeaderBytes = 64<<10 - 4<<10
)

// NewServer returns the public listener's server: h behind the smuggling
// check, with timeouts, a header size limit and, over TLS, HTTP/2 with a
// stream limit and a reset budget. Serve it on a listener wrapped by
// TrackFraming, or with ServeTLS and a TLSConfig from [TLSConfig].
func NewServer(h http.Handler, log *slog.Logger) (*http.Server, error) {
	srv := &http.Server{
		Handler:           SmugglingCheck(h),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       ConnContext,
		ErrorLog:          golog.Logger(log, slog.LevelDebug),
		// "OPTIONS *" goes to h, which answers it with the methods the
		// facade lets through, rather than net/http's empty 200.
		DisableGeneralOptionsHandler: true,
	}
	if err := ConfigureHTTP2(srv); err != nil {
		return nil, err
	}
	return srv, nil
}
