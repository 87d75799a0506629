package domain

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// State is where a journaled write is in its life:
//
//   - sent → pending when the primary answered 2xx, skipped otherwise;
//   - sent → unknown when its lease passed before the answer was recorded
//     (and recovery's resends went unanswered), or an operator stopped
//     recovery's resends;
//   - unknown → pending on an operator's retry, sent again when its
//     client retries it with its Idempotency-Key (the store's
//     BeginKeyedWrite); never on a late answer of the primary's (its
//     sender's, or a resend's an operator stopped): unknown, the write no
//     longer held its resource's turn, so later writes may have reached
//     the secondary since, and queued it would overwrite them there;
//   - pending → done when the secondary applied it, dead when delivery
//     gave up;
//   - dead → pending on an operator's retry;
//   - pending, dead, unknown → discarded when an operator gives up on it.
type State string

// The states of a journaled write.
const (
	// StateSent means the primary call is in flight, or recovery resends
	// it to a primary that has not answered yet.
	StateSent State = "sent"
	// StatePending means the primary applied it; the secondary has not yet.
	StatePending State = "pending"
	// StateSkipped means the primary refused it, so the secondary never gets it.
	StateSkipped State = "skipped"
	// StateUnknown means the facade died before the primary's answer was
	// recorded, and recovery could not learn it or an operator stopped
	// its trying. An operator decides: retry if the primary applied it,
	// discard if not. It is never resent on its own.
	StateUnknown State = "unknown"
	// StateDone means the secondary applied it.
	StateDone State = "done"
	// StateDead means the secondary refused it for good, or too many attempts
	// failed. It blocks later writes to its resource until retried or
	// discarded.
	StateDead State = "dead"
	// StateDiscarded means an operator gave up on it.
	StateDiscarded State = "discarded"
)

// States lists every state of a journaled write, in the order a write
// moves through them.
var States = []State{StateSent, StatePending, StateSkipped, StateUnknown, StateDone, StateDead, StateDiscarded}

// transitions is the journal's state machine, the one place that says
// which state a journaled write may go to from which (State tells why).
// The store writes the SQL of every change of state from a move it
// checks against this table.
var transitions = map[State][]State{
	StateSent:    {StatePending, StateSkipped, StateUnknown},
	StateUnknown: {StateSent, StatePending, StateDiscarded},
	StatePending: {StateDone, StateDead, StateDiscarded},
	StateDead:    {StatePending, StateDiscarded},
}

// CanMove reports whether a journaled write in state from may go to state
// to. Done, skipped and discarded are final: nothing leaves them.
func CanMove(from, to State) bool { return slices.Contains(transitions[from], to) }

// Final reports whether st is a state no write leaves.
func (st State) Final() bool { return len(transitions[st]) == 0 }

// ParseState returns the state called name, or an error that lists the
// states there are.
func ParseState(name string) (State, error) {
	if st := State(name); slices.Contains(States, st) {
		return st, nil
	}
	names := make([]string, len(States))
	for i, st := range States {
		names[i] = string(st)
	}
	return "", fmt.Errorf("unknown state %q; want one of %s", name, strings.Join(names, ", "))
}

// Intent is a write the facade is about to send to the primary, journaled
// so that it can be replayed to the secondary.
type Intent struct {
	// ID is a UUID, also sent as the Idempotency-Key on every attempt so the
	// secondary applies the write once however often it is sent.
	ID string
	// Route is the route's name.
	Route string
	// Resource names what the write changes, such as "/patients/42":
	// writes to one resource reach the secondary in the order the primary
	// answered them. It is stored only as its keyed digest.
	Resource string
	// ResourceView is how listings show the resource: its path with the
	// route's parameters hashed (/patients/{id:h:3f9a…}). Empty means every
	// segment hashed.
	ResourceView string
	// Method is the request method.
	Method string
	// StandsFor is the method the backends read the write as
	// (canonical.StandsFor, decided once, by the router): Method, unless
	// a POST overrides it (X-HTTP-Method-Override, _method), and "" when
	// its overrides name several methods, or one the facade does not know
	// (a token the client chose, which may be patient data, is not
	// kept). A write stands for a create
	// only when it is POST: every other write, "" included, is ordered
	// behind the earlier writes to its resource.
	StandsFor string
	// Target is the request's path and query.
	Target string
	// Header is the request header to replay, already filtered by the
	// caller. It is stored byte for byte.
	Header http.Header
	// Body is the buffered request body.
	Body []byte
	// Primary is the backend that answers the client.
	Primary Backend
	// PrimaryIdempotent is the route's primary_idempotent when the write
	// was journaled. It decides the write's delivery and recovery for
	// good, whatever a reload says later: the secondary gets the client's
	// Idempotency-Key on every attempt only when it is set (else the
	// write's id), and recovery resends the write to the primary only
	// when it is set (else marks it unknown). Decided again at each
	// attempt, a reload between an attempt the secondary applied but
	// whose answer was lost and the next one sent the write under another
	// key, and the secondary applied it twice.
	PrimaryIdempotent bool
	// CreatedAt is when the request arrived; zero means now.
	CreatedAt time.Time
	// Fence is the fence of the route's flags the write was decided
	// under (config.Route.Fence): a PostgreSQL store journals it only
	// while the route's fence is still that one, else it refuses it with
	// ErrStaleFlags; 0 journals it unfenced (flags not read through
	// control.Flags: tests, tools). An SQLite store ignores it.
	Fence int64
}

// ErrStaleFlags is the journal refusing a write decided under route
// flags older than the state store's: another replica changed the route
// (a flip, a rollback, a ramp's step) and this one has not followed yet.
// Nothing was journaled; the write is to be decided again under the
// flags as they are now.
var ErrStaleFlags = errors.New("the route's flags changed in the state store since this replica read them")

// TooLargeForRoomError is the journal refusing a new write because its
// body needs more of the state store's free space than is left, while a
// write of ordinary size would still be taken: that write alone is
// refused, and the store is not failing. Nothing was journaled; the same
// write is refused again until the store has more room.
type TooLargeForRoomError struct {
	// Need is the free space in bytes the write needs, the store's own
	// headroom included; Free is what the store has left for writes.
	Need, Free int64
}

// TooLargeForRoom returns the TooLargeForRoomError in err's chain, nil
// if there is none.
func TooLargeForRoom(err error) *TooLargeForRoomError {
	var e *TooLargeForRoomError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Error says the sizes, in KiB.
func (e *TooLargeForRoomError) Error() string {
	return fmt.Sprintf("the body is too large for the space the state store has left: %d KiB needed, %d KiB free", e.Need>>10, e.Free>>10)
}

// Outcome is the primary's answer to a journaled write.
type Outcome struct {
	// Status is the primary's status code; 2xx queues the write for the
	// secondary, anything else skips it.
	Status int
	// Location is the primary's Location header, if any.
	Location string
	// PrimaryID is the id the primary gave a created resource (id_field).
	PrimaryID string
	// Resource, if set, is the resource the write belongs to from now on:
	// what a create made (its Location, or its collection and new id), so
	// that later writes to it wait behind the create. ResourceView is how
	// listings show it, as Intent.ResourceView.
	Resource, ResourceView string
}

// RepairSummary describes a journaled write without what it carries of
// the request.
type RepairSummary struct {
	ID, Route, Method string
	// StandsFor is Intent.StandsFor as journaled; "" also for a POST
	// journaled by a release that did not record it whose request is
	// erased or cannot be read (store_encryption key lost), which is
	// then taken for no create.
	StandsFor string
	// Resource is how listings show what the write changes: its path with
	// the route's parameters hashed (/patients/{id:h:3f9a…}).
	Resource string
	// ResourceKey is the resource's keyed digest, which orders the queue:
	// equal for every write to the same resource.
	ResourceKey string
	// Primary is the backend that answered the client.
	Primary Backend
	State   State
	// Seq orders the writes to one resource; 0 until the primary's 2xx
	// answer is recorded.
	Seq int64
	// Outcome is the primary's answer; zero while sent or unknown. Its
	// Location and PrimaryID are part of the payload: set only in a Repair.
	Outcome Outcome
	// Attempts counts failed deliveries to the secondary; of a sent or
	// unknown write, recovery's resends the primary did not answer.
	Attempts  int
	LastError string
	// NextAttemptAt is when a pending write is due.
	NextAttemptAt time.Time
	// LeaseOwner and LeaseUntil say who is delivering it, and until when.
	LeaseOwner string
	LeaseUntil time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Repair is a journaled write with what is needed to replay it. Once the
// write is settled (done, skipped, discarded) its target, headers and body
// are erased.
type Repair struct {
	RepairSummary
	// Target is the request's path and query.
	Target string
	Header http.Header
	Body   []byte
	// PrimaryIdempotent is Intent.PrimaryIdempotent as journaled; not
	// Known for a write journaled by a release that did not record it,
	// which follows the route's current primary_idempotent as it did
	// then.
	PrimaryIdempotent Journaled
	// PayloadErr is set when the target, headers and body cannot be read:
	// they were encrypted with a key that is no longer configured
	// (the store's ErrKeyLost). The write cannot be replayed until it is again.
	PayloadErr error
}

// Journaled is a route setting as a write recorded it when it was
// journaled. Known is false for a write journaled by a release that did
// not record the setting.
type Journaled struct{ Value, Known bool }
