package dualwrite

// Kicks carries the ids of writes to deliver now, from the request path
// (the router, the outcome journal) to the worker. It is made before all
// three, so that each is built whole, in order: the router and the
// journal first, then the worker that delivers what they kick.
type Kicks chan string

// NewKicks returns a Kicks with room for a burst of writes; kicks beyond
// it are dropped, and the worker's poll finds those writes.
func NewKicks() Kicks { return make(Kicks, 1024) }

// Kick asks for the write with id to be delivered now, if it is its
// resource's next one. It never blocks.
func (k Kicks) Kick(id string) {
	select {
	case k <- id:
	default:
	}
}
