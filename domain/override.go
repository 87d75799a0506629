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
	// Version counts the changes since the route last had no override; 0
	// means none. The store's SetOverride and ClearOverride take the version the caller
	// saw, so two operators flipping at once cannot overwrite each other
	// unseen.
	Version   int64
	Actor     string
	Reason    string
	UpdatedAt time.Time
	// Fence is the route's fence in a PostgreSQL store once the store's
	// SetOverride stored the override (see Intent.Fence); 0 otherwise.
	Fence int64
}
