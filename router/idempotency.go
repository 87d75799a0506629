package router

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"strangler/domain"
	"strangler/edge/canonical"
)

// A client's Idempotency-Key on a dual-write route names the write, with
// Stripe's semantics: the same key again while the first request is with
// the primary answers 409; once the primary applied it, a retry goes to
// the primary (which may replay its answer) and is journaled no second
// time, so the secondary gets the write once; the same key with another
// method, path or body answers 422 and reaches no backend. The store
// keeps the keys (every replica shares them) and decides, in the
// journal's own transaction, what a retry is (domain.KeyUse).

// maxKeyLength bounds a client's Idempotency-Key, as Stripe does.
const maxKeyLength = 255

var (
	// errKeyInFlight answers a retry while the key's first request is
	// with the primary.
	errKeyInFlight = errors.New("a request with this Idempotency-Key is in progress")
	// errKeyMoved answers a retry of a write the route's previous primary
	// applied, or may have: the new primary would apply it again.
	errKeyMoved = errors.New("the request with this Idempotency-Key went to the route's previous primary, which has changed since; it cannot be retried safely")
	// errKeyReused answers a key sent before with another request.
	errKeyReused = errors.New("this Idempotency-Key was sent with another request (method, path or body); a new request needs a new key")
)

// keyError is an Idempotency-Key that cannot name a write (400).
type keyError string

func (e keyError) Error() string { return string(e) }

// idempotencyKey returns the client's Idempotency-Key, "" if it sent
// none, or a keyError. underscores says header names with _ reach the
// backends (headers_with_underscores: allow).
func idempotencyKey(h http.Header, underscores bool) (string, error) {
	keys := h["Idempotency-Key"]
	if underscores && spelledWithUnderscore(h, "Idempotency-Key") {
		// CGI and PHP read Idempotency_Key as Idempotency-Key: a primary
		// behind them applied a retry once, while the facade, blind to
		// that spelling, journaled it again for the secondary (found by
		// the red team).
		return "", keyError("spell the Idempotency-Key header with -, not _")
	}
	if len(keys) == 0 {
		return "", nil
	}
	k := keys[0]
	switch {
	case len(keys) > 1:
		return "", keyError("send one Idempotency-Key, not several")
	case k == "":
		return "", keyError("the Idempotency-Key is empty")
	case len(k) > maxKeyLength:
		return "", keyError("the Idempotency-Key is longer than 255 characters")
	case !isPrintableASCII(k):
		return "", keyError("the Idempotency-Key may hold only printable ASCII characters")
	}
	return k, nil
}

// spelledWithUnderscore reports whether h has a field that CGI and PHP
// read as name, canonical, but spelled with _ for - (canonical.CGIName).
func spelledWithUnderscore(h http.Header, name string) bool {
	for k := range h {
		if k != name && canonical.CGIName(k) == name {
			return true
		}
	}
	return false
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// credentials are the values of the request parts idempotency_scope
// names, which scope the client's Idempotency-Key (domain.Scoped).
func (t *Table) credentials(req *http.Request) []string {
	out := make([]string, len(t.idempotencyScope))
	for i, p := range t.idempotencyScope {
		out[i] = partOf(req, p.Sticky)
	}
	return out
}

// journalStep is what serveDualWrite does after journaling.
type journalStep int

const (
	// sendJournaled sends the write to the primary as a journaled write.
	sendJournaled journalStep = iota
	// sendResumed sends a retry of a write whose outcome was lost to the
	// primary as that journaled write.
	sendResumed
	// sendUnjournaled sends a retry of a write the primary applied to the
	// primary alone.
	sendUnjournaled
	// answered means the client has its answer (a refusal) already.
	answered
	// decideAgain means the journal refused the write as decided under
	// route flags older than the store's (decideAgain): nothing of it was
	// journaled or sent.
	decideAgain
)

// beginWrite writes the intent down before the primary sees it, under the
// client's key if it sent one, and says what to do next. A resumed write
// keeps the id it was journaled with, which the returned intent carries.
// askTurn, for a write without a key whose resource's turn this process
// holds, asks for the store's turn in the same statement: turn says the
// journaled write has it.
func (t *Table) beginWrite(ctx context.Context, x *exchange, req *http.Request, in domain.Intent, key string, lease time.Duration, askTurn bool) (_ domain.Intent, _ journalStep, turn bool) {
	var err error
	use := domain.KeyJournaled
	switch {
	case key == "" && askTurn:
		turn, err = t.journal.BeginWriteTurn(ctx, in, lease)
	case key == "":
		err = t.journal.BeginWrite(ctx, in, lease)
	default:
		var kw domain.KeyedWrite
		k := domain.NewIdempotencyKey(key, t.keyedMethod(req), in.Target, in.Body).Scoped(t.credentials(req))
		kw, err = t.journal.BeginKeyedWrite(ctx, in, k, lease)
		use, in.ID = kw.Use, kw.ID
	}
	switch {
	case errors.Is(err, domain.ErrStaleFlags):
		return in, decideAgain, false
	case err != nil && domain.TooLargeForRoom(err) != nil:
		// This write's refusal alone: the store takes writes of
		// ordinary size, and the dual writes' metrics leave it out.
		room := domain.TooLargeForRoom(err)
		t.log.Warn("dual write refused: its body is too large for the state store's room", "route", x.route.name, "method", req.Method,
			"body_bytes", len(in.Body), "need_kib", room.Need>>10, "free_kib", room.Free>>10, "request_id", x.id)
		t.writeError(&x.w, req, x, err)
		return in, answered, false
	case err != nil:
		t.log.Error("dual write refused: journal unavailable", "route", x.route.name, "method", req.Method, "error", err, "request_id", x.id)
		t.metrics.DualWrite(x.route.name, "refused")
		t.writeError(&x.w, req, x, errJournal)
		return in, answered, false
	case use == domain.KeyInFlight:
		t.writeError(&x.w, req, x, errKeyInFlight)
		return in, answered, false
	case use == domain.KeyReused:
		t.writeError(&x.w, req, x, errKeyReused)
		return in, answered, false
	case use == domain.KeyMoved:
		t.writeError(&x.w, req, x, errKeyMoved)
		return in, answered, false
	case use == domain.KeyApplied:
		return in, sendUnjournaled, false
	case use == domain.KeyResumed:
		return in, sendResumed, false
	}
	return in, sendJournaled, turn
}

// keyedMethod is the method a client's Idempotency-Key is bound to: the
// request's, and the methods its override headers ask the backends to
// read it as (an override in the query or body is in the target or body
// already). A POST standing for a DELETE and one standing for a PUT are
// two methods to the backends: the same key on both was taken for a
// retry, and the PUT reached the primary alone (found by the red team).
func (t *Table) keyedMethod(req *http.Request) string {
	ms := canonical.MethodOverrides(req, !t.dropOddHeaders)
	if len(ms) == 0 {
		return req.Method
	}
	slices.Sort(ms)
	return req.Method + " " + strings.Join(slices.Compact(ms), ",")
}
