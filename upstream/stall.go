package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errSendStalled is the cause a stalled send (stallWatch) ends its
// request with: a timeout, as the backend not answering in time is.
var errSendStalled = fmt.Errorf("the backend stopped reading the request: %w", context.DeadlineExceeded)

// watchSend bounds how long sending req's body may stall, for a backend
// whose timeout is timeout. Go's transport, and the direct path, start
// the backend's timeout for an answer only once the request is written:
// a backend that accepts the connection and then reads nothing (hung,
// or its queue full) would hold the request, its buffered body and its
// client for as long as the client waits. A stall is the time the sender
// spends between two reads of the body, that is writing what it read,
// and once the body is read, writing the rest and waiting for the
// answer: past timeout the request ends as timed out. Time spent waiting
// for the body itself (a client still uploading) is the client's, which
// body_timeout bounds, and connecting has its own bound. finish stops the
// watch once the answer's head is there, and gives the error of the send:
// errSendStalled when the watch ended it, whatever error the cancelled
// send reported (context.Canceled, on the direct path), so that a stall
// is a timeout however it surfaces.
func watchSend(req *http.Request, timeout time.Duration) (_ *http.Request, finish func(error) error) {
	if timeout <= 0 || req.Body == nil || req.Body == http.NoBody {
		return req, func(err error) error { return err }
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &stallWatch{ReadCloser: req.Body, timeout: timeout, cancel: cancel}
	req = req.WithContext(ctx)
	req.Body = w
	return req, func(err error) error {
		w.stop()
		if err != nil && errors.Is(context.Cause(ctx), errSendStalled) {
			return errSendStalled
		}
		return err
	}
}

// stallWatch is a request body that ends its request (cancel) when no
// read of it begins within timeout of the last one's end.
type stallWatch struct {
	io.ReadCloser
	timeout time.Duration
	cancel  context.CancelCauseFunc

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func (w *stallWatch) Read(p []byte) (int, error) {
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	n, err := w.ReadCloser.Read(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.stopped:
	case w.timer == nil:
		w.timer = time.AfterFunc(w.timeout, func() { w.cancel(errSendStalled) })
	default:
		w.timer.Reset(w.timeout)
	}
	return n, err
}

// stop ends the watch; the request goes on.
func (w *stallWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// errBodyStalled is the error a read of a stalled answer body (watchBody)
// ends with.
var errBodyStalled = fmt.Errorf("the backend stopped sending the answer's body: %w", context.DeadlineExceeded)

// watchBody is an answer body of known length whose reads may each wait
// for the backend at most timeout, as nginx's proxy_read_timeout bounds
// the wait between two reads of a backend's answer: a backend that sent
// its head and then stalled its body held the client for as long as it
// waited. A body of unknown length (chunked: server-sent events, long
// polls) is not watched, and the time the client takes to read what was
// read is not counted. A stall closes the body, which closes its
// connection and ends the pending read with errBodyStalled.
type watchBody struct {
	io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func (w *watchBody) Read(p []byte) (int, error) {
	if w.stalled.Load() {
		return 0, errBodyStalled
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.timeout, w.stall)
	} else {
		w.timer.Reset(w.timeout)
	}
	n, err := w.ReadCloser.Read(p)
	w.timer.Stop()
	if err != nil && w.stalled.Load() {
		err = errBodyStalled
	}
	return n, err
}

func (w *watchBody) stall() {
	w.stalled.Store(true)
	w.ReadCloser.Close()
}

func (w *watchBody) Close() error {
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.ReadCloser.Close()
}
