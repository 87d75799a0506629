package domain

import "time"

// Override is a route flag set at run time; it wins over the config file
// until cleared.
type Override struct {
	Route string
	// Mode is the route mode, as the config file spells it.
	Mode Mode
	// Percent is the share sent to modern; nil keeps the file's.
	Percent *float64
	// Version is the route's version once the override was set: every
	// change of the route moves it, a clear too, and it never comes back
	// (store.Store.RouteFlags). The store's SetOverride and ClearOverride
	// take the version the caller saw, so two operators flipping at once,
	// or one with a version read before a clear, cannot overwrite each
	// other unseen.
	Version   int64
	Actor     string
	Reason    string
	UpdatedAt time.Time
	// Fence is the route's fence in a PostgreSQL store once the store's
	// SetOverride stored the override, or ClearOverride cleared it (see
	// Intent.Fence); 0 otherwise.
	Fence int64
}
