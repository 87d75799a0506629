package dualwrite

import (
	"sync/atomic"
	"time"

	"strangler/domain"
)

// Kicks carries the writes to deliver now from the request path (the
// outcome journal) to the worker. It is made before both, so that each is
// built whole, in order: the journal first, then the router that records
// through it, then the worker that delivers what it is handed.
type Kicks struct {
	// ids are writes to claim from the queue and deliver, if each is its
	// resource's next one.
	ids chan string
	// worker is the worker that delivers; nil until it is built.
	worker atomic.Pointer[Worker]
}

// kickBurst is the room for a burst of kicks; kicks beyond it are
// dropped, and the worker's poll finds those writes.
const kickBurst = 1024

// NewKicks returns Kicks with room for a burst of writes.
func NewKicks() *Kicks { return &Kicks{ids: make(chan string, kickBurst)} }

// Kick asks for the write with id to be delivered now, if it is its
// resource's next one. It never blocks.
func (k *Kicks) Kick(id string) {
	select {
	case k.ids <- id:
	default:
	}
}

// reserve makes room with the worker for a write about to be recorded,
// and says whom to lease it to, for how long, and until when that is on
// the worker's clock, read before the store takes the lease (which then
// runs at least as long); ok is false when there is
// no worker yet, it is stopping, or it holds as many handed-over writes
// as it may. The room is the write's until handOff or unreserve.
func (k *Kicks) reserve() (w *Worker, owner string, lease time.Duration, until time.Time, ok bool) {
	w = k.worker.Load()
	if w == nil {
		return nil, "", 0, time.Time{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		// A write leased to a worker that has stopped would wait for its
		// lease to pass: unleased, anyone delivers it at once.
		return nil, "", 0, time.Time{}, false
	}
	select {
	case w.handOffs <- struct{}{}:
	default:
		return nil, "", 0, time.Time{}, false
	}
	w.reservations.Add(1)
	lease, until = w.leaseFromNow()
	return w, w.owner, lease, until, true
}

// unreserve gives back the room reserve made for a write that was not
// leased.
func (w *Worker) unreserve() {
	<-w.handOffs
	w.reservations.Done()
}

// handOff gives the worker a write the store leased to it, in the room
// reserve made for it. It never blocks.
func (w *Worker) handOff(r domain.Repair) {
	w.mu.Lock()
	w.delivering[r.ID] = true // a lost claim's release must spare it
	w.mu.Unlock()
	w.leased <- r
	w.reservations.Done()
}
