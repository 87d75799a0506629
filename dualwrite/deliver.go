package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"strangler/domain"
	"strangler/store"
	"strangler/upstream"

	"golang.org/x/net/http/httpguts"
)

// deliveryTimeout bounds one delivery: twice the backend's timeout (which
// already bounds connecting and waiting for headers), so a slow body is
// not cut off too eagerly.
func deliveryTimeout(up *upstream.Upstream) time.Duration {
	return 2*up.Timeout() + 5*time.Second
}

// other is the backend that is not primary.
func other(primary domain.Backend) domain.Backend {
	if primary == domain.Modern {
		return domain.Legacy
	}
	return domain.Modern
}

// deliver sends a claimed write to the secondary, gives back its slot
// and settles it. It reports whether the secondary applied it. ctx is the
// worker's: the delivery itself runs to its own deadline whatever ctx
// does.
func (w *Worker) deliver(ctx context.Context, r domain.Repair) (applied bool) {
	up := w.routes.Backend(other(r.Primary))
	if r.PayloadErr != nil {
		<-w.slots
		// Without its request there is nothing to send; an operator can
		// configure the key again and retry it, or discard it.
		w.fail(ctx, r, r.PayloadErr.Error()+"; configure that key again and retry the write, or discard it", true, 0)
		return false
	}
	if field := unsendable(r.Outcome); field != "" {
		<-w.slots
		// No attempt could ever carry it: the write waits for an operator
		// instead of being retried for hours with its resource held back.
		w.fail(ctx, r, "the primary's answer gave "+field+" a character no HTTP header may carry (such as a control character); "+
			"apply the write to the secondary by hand and discard it", true, 0)
		return false
	}
	if until, ok := w.holds.Held(up.Name, w.now()); ok {
		<-w.slots
		// Sending it would only add to the load the secondary asked to
		// be spared; it goes once the wait is over.
		w.fail(ctx, r, fmt.Sprintf("not sent: the secondary (%s) asked for no requests before %s (Retry-After)", up.Name, until.UTC().Format(time.RFC3339)),
			false, until.Sub(w.now()))
		return false
	}
	sendCtx, cancel := context.WithTimeout(context.Background(), deliveryTimeout(up))
	defer cancel()
	status, wait, err := w.send(sendCtx, up, r)
	// The slots bound the deliveries running at once (repairs.workers),
	// not the recording of their results, which waits for the store.
	<-w.slots
	switch {
	case err == nil && (status >= 200 && status <= 299 || alreadyGone(r.StandsFor, status)):
		w.settle(ctx, r, "applied", func(ctx context.Context) error { return w.queue.CompleteRepair(ctx, r.ID, w.owner) })
		return true
	case err == nil && permanent(status):
		reason := fmt.Sprintf("the secondary (%s) answered %d %s", up.Name, status, http.StatusText(status))
		w.fail(ctx, r, reason, true, 0)
	case err != nil:
		w.fail(ctx, r, fmt.Sprintf("the secondary (%s) did not answer: %v", up.Name, upstream.Describe(err)), false, 0)
	default:
		if wait > 0 {
			w.pause(up.Name, status, wait)
		}
		w.fail(ctx, r, fmt.Sprintf("the secondary (%s) answered %d %s", up.Name, status, http.StatusText(status)), false, wait)
	}
	return false
}

// unsendable names the X-Strangler-Primary header that the primary's
// answer o gave a value net/http refuses to send (the id_field value comes
// from JSON, where "\n" is easily written), or "" when all can be sent.
func unsendable(o domain.Outcome) string {
	switch {
	case !httpguts.ValidHeaderFieldValue(o.PrimaryID):
		return "X-Strangler-Primary-Id"
	case !httpguts.ValidHeaderFieldValue(o.Location):
		return "X-Strangler-Primary-Location"
	}
	return ""
}

// alreadyGone reports whether the secondary answered a DELETE (method is
// the one the write stands for, a POST with _method=DELETE included)
// saying there is nothing to delete: writes to one resource arrive in order, so the
// resource is gone as the primary wants it, and the delete is applied.
func alreadyGone(method string, status int) bool {
	return method == http.MethodDelete && (status == http.StatusNotFound || status == http.StatusGone)
}

// later reports whether an answer asks for the request again later
// (a 5xx, 408, 425 or 429) rather than answers it.
func later(status int) bool {
	return status >= 500 || status >= 400 && !permanent(status)
}

// permanent reports whether a secondary's answer means retrying cannot
// help: a 4xx says the request itself is wrong, except those that say
// "later" (408 Request Timeout, 425 Too Early, 429 Too Many Requests).
func permanent(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return status >= 400 && status <= 499
}

// send replays the write to up with the headers that let the secondary
// apply it once (the same Idempotency-Key on every attempt) and keep the
// primary's identity of what it created. It returns the status and the
// wait the answer asks for (upstream.RetryAfter).
func (w *Worker) send(ctx context.Context, up *upstream.Upstream, r domain.Repair) (int, time.Duration, error) {
	target, err := url.ParseRequestURI(r.Target)
	if err != nil {
		return 0, 0, fmt.Errorf("journaled target %q: %w", r.Target, err)
	}
	h := r.Header.Clone()
	h.Set("Idempotency-Key", w.key(r))
	h.Set("X-Strangler-Primary-Status", strconv.Itoa(r.Outcome.Status))
	if r.Outcome.Location != "" {
		h.Set("X-Strangler-Primary-Location", r.Outcome.Location)
	}
	if r.Outcome.PrimaryID != "" {
		h.Set("X-Strangler-Primary-Id", r.Outcome.PrimaryID)
	}
	purpose := "dual-write"
	if r.Attempts > 0 {
		purpose = "repair"
	}
	ctx, end := w.span(ctx, r.Route, r.Method, purpose, up, target.RawQuery != "", h)
	resp, err := up.RoundTrip(upstream.NewRequest(ctx, r.Method, up.Target(target), h, r.Body))
	if err != nil {
		end(0, err)
		return 0, 0, err
	}
	end(resp.StatusCode, nil)
	// Read a little of the body so the connection can be reused; what it
	// says is not kept: it may describe patient data.
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	return resp.StatusCode, upstream.RetryAfter(resp.StatusCode, resp.Header.Get("Retry-After"), w.now()), nil
}

// key is the Idempotency-Key the secondary gets for r: its intent id,
// unique per journaled write, so the secondary applies each write the
// primary applied once. Where the primary honours keys and the client sent
// one, it is the client's: the facade journals a client's retries once
// while it remembers the key (a day), but a retry after that is journaled
// again although the primary applied it once, and so must the secondary.
// Which of the two is decided when the write is journaled
// (primaryIdempotent): every attempt carries the same key.
func (w *Worker) key(r domain.Repair) string {
	if w.primaryIdempotent(r) && r.Header.Get("Idempotency-Key") != "" {
		return r.Header.Get("Idempotency-Key")
	}
	return r.ID
}

// primaryIdempotent reports whether r's primary honours Idempotency-Key:
// as the route said when r was journaled, not as a reload since says (an
// attempt the secondary applied but whose answer was lost, then a reload,
// and the next attempt went under another key: applied twice). A write
// journaled by a release that did not record it follows the route as it
// is now, as that release did.
func (w *Worker) primaryIdempotent(r domain.Repair) bool {
	if r.PrimaryIdempotent.Known {
		return r.PrimaryIdempotent.Value
	}
	_, idempotent, _ := w.routes.DualWrite(r.Route)
	return idempotent
}

// fail records a failed delivery: dead when the secondary refused it for
// good or the attempts are used up, otherwise due again after a backoff,
// and not before wait (what the secondary asked for) has passed.
func (w *Worker) fail(ctx context.Context, r domain.Repair, reason string, permanent bool, wait time.Duration) {
	s := w.settings.Load()
	dead := permanent || r.Attempts+1 >= s.MaxAttempts
	// A delay, not a time: the store reckons it on its own clock, the
	// one every replica's claim reads (see store.Store.FailRepair).
	retryAfter := max(backoff(r.Attempts, time.Duration(s.Backoff), time.Duration(s.MaxBackoff)), afterWait(wait, time.Duration(s.MaxBackoff)))
	result := "failed"
	if dead {
		result = "dead"
		w.log.Warn("dual write dead-lettered; an operator must retry or discard it",
			"route", r.Route, "id", r.ID, "attempts", r.Attempts+1, "reason", reason)
	}
	w.settle(ctx, r, result, func(ctx context.Context) error {
		return w.queue.FailRepair(ctx, r.ID, w.owner, reason, retryAfter, dead)
	})
}

// settle records a delivery's end in the queue and counts it. While the
// store refuses (a failover, a full disk) it tries again until the lease
// is about to pass or the worker stops: afterwards the write goes out
// again, which its Idempotency-Key makes harmless, but only once the
// lease has passed.
func (w *Worker) settle(ctx context.Context, r domain.Repair, result string, record func(context.Context) error) {
	for backoff := retryMin; ; backoff = min(2*backoff, retryMax) {
		// Also at shutdown: the worker's end does not cut the attempt.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		err := record(rctx)
		cancel()
		if err == nil {
			w.count(r.Route, result)
			return
		}
		if errors.Is(err, store.ErrLeaseLost) || final(err) || !w.now().Add(backoff).Before(r.LeaseUntil) || !sleep(ctx, backoff) {
			w.log.Warn("recording a delivery failed; it is retried when its lease passes", "id", r.ID, "result", result, "error", err)
			return
		}
	}
}

// afterWait is when, after a wait the secondary asked for (up to
// maxDelay), a write goes again: up to a quarter later, so that the writes
// held back together do not all arrive the moment the wait ends.
func afterWait(wait, maxDelay time.Duration) time.Duration {
	if wait <= 0 {
		return 0
	}
	wait = min(wait, maxDelay)
	return wait + rand.N(wait/4+1)
}

// sleep waits for d, or reports false at once when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is the delay before retry number attempts+1: initial doubled per
// attempt up to max, with ±50% jitter so that writes failing together do
// not retry together.
func backoff(attempts int, initial, maxDelay time.Duration) time.Duration {
	d := initial
	for range attempts {
		if d >= maxDelay/2 {
			d = maxDelay
			break
		}
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + rand.N(d)
}
