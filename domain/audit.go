package domain

import "time"

// AuditEntry is one line of the audit log: who did what to which route,
// when and why.
type AuditEntry struct {
	// ID is assigned by the store; later entries have higher ids, and the
	// hash chain runs in id order.
	ID int64
	// At is when it happened; zero means now. A PostgreSQL store stamps
	// the time itself, on the clock its replicas share.
	At    time.Time
	Actor string
	// Action is what happened: "flip", "clear", "denied", "rollback",
	// "repair_retry", "repair_discard", …
	Action string
	Route  string
	// FromMode and ToMode, FromPercent and ToPercent describe a flip; nil
	// percents were not set.
	FromMode, ToMode       Mode
	FromPercent, ToPercent *float64
	Reason                 string
	// Forced says a gate was overridden.
	Forced bool
	// Detail is free text, such as which gate refused a flip.
	Detail string
	// PrevHash and Hash link the entry into the audit log's hash chain
	// (the store's auditchain.go); set by the store, "" for an entry that was written
	// around the chain.
	PrevHash, Hash string
}
