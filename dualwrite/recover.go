package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"strangler/domain"
	"strangler/shadow"
	"strangler/store"
	"strangler/upstream"
)

// recoveryBatch bounds the abandoned writes handled per recovery pass.
const recoveryBatch = 100

// recover settles writes whose facade died (or lost the state store)
// between sending them to the primary and recording its answer. A write
// whose primary honoured Idempotency-Key when it was journaled gets it
// again, keyed as before, which tells its outcome without applying it
// twice, once the write has its resource's turn (Store.TakeResendTurn;
// until then it waits for a later pass); any other write is marked
// unknown for an operator: resending it blindly could apply it twice.
//
// A resend the primary does not answer, or answers "later", is tried
// again after the repairs backoff (and not before the primary's
// Retry-After), the write keeping its resource's turn meanwhile; only
// once repairs.max_attempts resends went unanswered, or an operator
// stopped them (store.StopResend), is it unknown.
// Why: when the host reboots, facade and primary go down together, and
// the primary answers a minute after the facade's first pass: marked
// unknown at once, every write in flight would wait for an operator.
func (w *Worker) recover(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	expired, err := w.queue.ExpiredWrites(sctx, recoveryBatch)
	if err != nil {
		w.log.Warn("looking for abandoned dual writes failed", "error", err)
		return
	}
	for _, in := range expired {
		// Whether the primary honours keys is what the route said when
		// the write was journaled: a reload since neither makes a
		// primary that applied it without a key take a resend, nor
		// leaves one that honours keys unasked (primaryIdempotent).
		if w.primaryIdempotent(in) && in.PayloadErr == nil {
			// Resent in its resource's turn, as the facade sends a write
			// (a create's resource is what it makes: it takes none).
			if in.StandsFor != http.MethodPost {
				taken, err := w.queue.TakeResendTurn(ctx, in.ID, storeTimeout)
				if errors.Is(err, store.ErrInvalidState) {
					continue // settled meanwhile (another replica's recovery)
				}
				if err != nil {
					w.log.Warn("taking an abandoned dual write's turn failed", "id", in.ID, "error", err)
					continue
				}
				if !taken {
					continue // an earlier write to its resource is with the primary: next pass
				}
			}
			idField, _, _ := w.routes.DualWrite(in.Route)
			settled, again, why, wait := w.resend(ctx, in, idField)
			if settled {
				continue
			}
			if again {
				s := w.settings.Load()
				lose := in.Attempts+1 >= s.MaxAttempts
				// A delay, not a time: the store reckons it on the lease
				// clock ExpiredWrites reads.
				retryAfter := max(backoff(in.Attempts, time.Duration(s.Backoff), time.Duration(s.MaxBackoff)), afterWait(wait, time.Duration(s.MaxBackoff)))
				counted, err := w.queue.ResendUnanswered(sctx, in.ID, in.Attempts, why, retryAfter, lose)
				if err != nil {
					w.log.Warn("counting an unanswered resend of an abandoned dual write failed", "id", in.ID, "error", err)
					continue
				}
				if lose && counted { // not counted: another replica's recovery did, or it was settled (an operator stopped it)
					w.lost(in, in.Attempts+1)
				}
				continue
			}
		}
		if err := w.queue.MarkUnknown(sctx, in.ID); err != nil {
			w.log.Warn("marking an abandoned dual write unknown failed", "id", in.ID, "error", err)
			continue
		}
		w.lost(in, in.Attempts)
	}
}

// lost counts and logs an abandoned write marked unknown after attempts
// unanswered resends.
func (w *Worker) lost(in domain.Repair, attempts int) {
	w.count(in.Route, "unknown")
	w.log.Warn("dual write outcome unknown; an operator must retry (if the primary applied it) or discard it",
		"route", in.Route, "id", in.ID, "method", in.Method, "attempts", attempts)
}

// resend sends an abandoned write to its idempotent primary again and
// records the answer, reporting whether it did, or found the write
// settled meanwhile (settled), or else whether the primary gave none
// (again: no answer, or one that says "later"), why, for the operator,
// and the wait its answer asked for (upstream.RetryAfter).
func (w *Worker) resend(ctx context.Context, in domain.Repair, idField domain.FieldPath) (settled, again bool, why string, wait time.Duration) {
	up := w.routes.Backend(in.Primary)
	target, err := url.ParseRequestURI(in.Target)
	if err != nil {
		return false, false, "", 0
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout(up))
	defer cancel()
	h := in.Header.Clone()
	// The key the primary saw the first time: the client's, or the one the
	// facade gave the write.
	if h.Get("Idempotency-Key") == "" {
		h.Set("Idempotency-Key", in.ID)
	}
	dctx, end := w.span(dctx, in.Route, in.Method, "recovery", up, target.RawQuery != "", h)
	resp, err := up.RoundTrip(upstream.NewRequest(dctx, in.Method, up.Target(target), h, in.Body))
	if err != nil {
		end(0, err)
		w.log.Warn("resending an abandoned dual write to its primary failed", "route", in.Route, "id", in.ID, "attempts", in.Attempts+1, "error", upstream.Describe(err))
		return false, true, fmt.Sprintf("resent to the primary (%s), which did not answer: %v", up.Name, upstream.Describe(err)), 0
	}
	end(resp.StatusCode, nil)
	if later(resp.StatusCode) {
		// A primary restarting with the facade, or a gateway in front
		// of it, says nothing of whether it applied the write before
		// the crash: settled skipped, a write it applied would never
		// reach the secondary.
		io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
		w.log.Warn("resending an abandoned dual write to its primary got no answer on the write", "route", in.Route, "id", in.ID, "attempts", in.Attempts+1, "status", resp.StatusCode)
		return false, true, fmt.Sprintf("resent to the primary (%s), which answered %d %s", up.Name, resp.StatusCode, http.StatusText(resp.StatusCode)),
			upstream.RetryAfter(resp.StatusCode, resp.Header.Get("Retry-After"), w.now())
	}
	capture := shadow.NewCapture(1 << 20)
	io.Copy(capture, resp.Body)
	resp.Body.Close()
	o := domain.Outcome{Status: resp.StatusCode, Location: resp.Header.Get("Location")}
	if idField != nil && !capture.Truncated() {
		// As the facade reads it from the answer it passes on.
		if doc, err := shadow.DecodeBody(resp.Header, capture.Bytes(), 1<<20); err == nil {
			o.PrimaryID, _ = idField.Find(doc)
		}
	}
	w.routes.Created(in.Route, in, &o)
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	err = w.queue.RecordOutcome(sctx, in.ID, o)
	if errors.Is(err, store.ErrInvalidState) {
		// An operator stopped its resends as this one was under way (or
		// another replica's recovery settled it): the write stays as
		// they left it, and its resource's later writes may have gone
		// first. The answer tells the operator whether to retry it.
		w.log.Warn("the primary answered a resent dual write that was settled meanwhile; left as it is", "route", in.Route, "id", in.ID, "status", o.Status)
		return true, false, "", 0
	}
	if err != nil {
		w.log.Warn("recording a resent dual write's outcome failed", "id", in.ID, "error", err)
		return false, false, "", 0
	}
	if o.Status >= 200 && o.Status <= 299 {
		w.count(in.Route, "queued")
		w.Kick(in.ID)
	} else {
		w.count(in.Route, "skipped")
	}
	return true, false, "", 0
}
