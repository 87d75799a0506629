// Package metrics names every Prometheus metric strangler exports: its
// name, help text, labels and buckets, in this one file. The packages
// that count build their collectors from these definitions, so a metric's
// name is written once, here. Labels carry route and table names and
// closed sets of values, never paths, ids or keys.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Def is one metric's definition.
type Def struct {
	Name   string
	Help   string
	Labels []string
	// Buckets are a histogram's upper bounds, in seconds.
	Buckets []float64
}

// latency is the bucket layout of every duration histogram: 1 ms to 10 s.
var latency = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// The public listener (package edge).
var (
	ClientConnections = Def{
		Name: "strangler_client_connections",
		Help: "Client connections the public listener holds open now; max_connections bounds it.",
	}
	ClientConnectionsMax = Def{
		Name: "strangler_client_connections_max",
		Help: "The public listener's max_connections: set, or half the process's open-file limit.",
	}
	ClientConnectionsFull = Def{
		Name: "strangler_client_connections_full_total",
		Help: "Times the public listener was at max_connections when ready for the next client, which then waited in the kernel's backlog until a connection closed.",
	}
)

// The admin listener (package edge, bounded in cmd/strangler).
var (
	AdminConnections = Def{
		Name: "strangler_admin_connections",
		Help: "Connections the admin listener holds open now; at strangler_admin_connections_max further clients, scrapes included, wait in the kernel's backlog.",
	}
	AdminConnectionsMax = Def{
		Name: "strangler_admin_connections_max",
		Help: "The most connections the admin listener holds at once.",
	}
	AdminConnectionsFull = Def{
		Name: "strangler_admin_connections_full_total",
		Help: "Times the admin listener was at strangler_admin_connections_max when ready for the next client, which then waited in the kernel's backlog until a connection closed.",
	}
)

// The request path (package router).
var (
	Requests = Def{
		Name:   "strangler_requests_total",
		Help:   "Backend exchanges by route, backend and status code; a fallback counts the modern attempt and the legacy answer. 499: the client left first. An unregistered status counts as its class (2xx…5xx), one outside 100-599 as other.",
		Labels: []string{"route", "backend", "code"},
	}
	BrokenAnswers = Def{
		Name:   "strangler_backend_answers_broken_total",
		Help:   "Backend answers that broke off mid-body while their client waited, by route, backend and reason: reset (the connection failed), closed (it ended short of the body), stalled (no byte for the backend's timeout), malformed (a body whose framing could not be read). The client's answer was cut; strangler_requests_total counts it with the status sent.",
		Labels: []string{"route", "backend", "reason"},
	}
	RequestDuration = Def{
		Name:    "strangler_request_duration_seconds",
		Help:    "Time from receiving a request to the end of a backend exchange, by route and backend.",
		Labels:  []string{"route", "backend"},
		Buckets: latency,
	}
	Fallbacks = Def{
		Name:   "strangler_fallback_total",
		Help:   "Requests a fallback route served from legacy, by reason: not_found, server_error, timeout, error; confirmed_missing is a not_found that legacy answered 404 or 410 too (the resource exists nowhere), which holds back neither gates nor retirement.",
		Labels: []string{"route", "reason"},
	}
	RouteMode = Def{
		Name:   "strangler_route_mode",
		Help:   "1 for each route's current mode; a route has one series, for the mode it is in.",
		Labels: []string{"route", "mode"},
	}
	ShadowComparisons = Def{
		Name:   "strangler_shadow_comparisons_total",
		Help:   "Shadow comparisons by route and result: match, mismatch, error, dropped (pool full), too_large.",
		Labels: []string{"route", "result"},
	}
	ShadowDuration = Def{
		Name:    "strangler_shadow_duration_seconds",
		Help:    "Time the shadow copy took to be answered, by route.",
		Labels:  []string{"route"},
		Buckets: latency,
	}
	DualWrites = Def{
		Name:   "strangler_dualwrite_total",
		Help:   "Dual writes by route and result: queued, skipped (primary refused), unknown (primary outcome lost), refused (journal down: 503), applied, failed (an attempt; retried), dead.",
		Labels: []string{"route", "result"},
	}
	Refused = Def{
		Name:   "strangler_refused_total",
		Help:   "Requests the facade answered alone, before or instead of a backend, by route and reason: method (405), bad_request (a path, header or framing the edge refuses), body_incomplete, body_timeout (408), body_too_large (max_body), replay_too_large (max_replay_body), replay_budget (503: replay_budget full), trailer, journal_down (503), store_room (503: a dual write's body needs more of the state store's free space than is left), key_in_flight and key_moved (409), key_reused (422), key_invalid (400 Idempotency-Key), resource_busy (503: a dual write waited too long behind earlier writes to its path), writes_held (503: a dual write waited past its primary's timeout for a change of where routes send writes, or was decided under route flags another replica had changed and this one could not read again). With route \"\": requests Go's HTTP server could not read, answered before any route: malformed (400), host (400: Host missing or malformed), header (400: a header name or value), head_too_large (431), transfer_encoding (501), http_version (505), expect (417), not_tls (400: plain HTTP on the TLS listener).",
		Labels: []string{"route", "reason"},
	}
	StaleFlagsWrites = Def{
		Name:   "strangler_stale_flags_writes_total",
		Help:   "Writes a replica sent straight to a backend, unjournaled, on route flags it could not read from the state store it shares with other replicas within the last second (the store out of its reach), by route: if another replica moved the route into dual-write meanwhile, the other side lacks them until a backfill.",
		Labels: []string{"route"},
	}
	ForcedRequests = Def{
		Name:   "strangler_forced_requests_total",
		Help:   "Requests a valid X-Strangler-Force header sent to one backend, past the route's mode and split, by route and backend.",
		Labels: []string{"route", "backend"},
	}
	ForceIgnored = Def{
		Name:   "strangler_force_ignored_total",
		Help:   "X-Strangler-Force headers ignored (the request routed as usual), by route and reason: malformed, forged (bad signature), expired, other_route, dual_write, off (no force_token_key).",
		Labels: []string{"route", "reason"},
	}
	ReplayBuffered = Def{
		Name: "strangler_replay_buffered_bytes",
		Help: "Bytes of request bodies buffered for replay (dual-write, fallback, shadow) now, over every route; replay_budget bounds it.",
	}
	SchemaDrift = Def{
		Name:   "strangler_schema_drift_total",
		Help:   "Departures of modern's JSON answers from the schema learned from legacy's, by route and kind: missing (a field legacy always sends), type (a type legacy never sent there); each field once per answer.",
		Labels: []string{"route", "kind"},
	}
)

// Dual-write delivery and the state store (packages dualwrite, cmd).
var (
	RepairQueueDepth = Def{
		Name:   "strangler_repair_queue_depth",
		Help:   "Journaled dual writes by state: pending (waiting for the secondary), dead (refused; an operator must act), unknown (primary outcome lost), sent (primary call in flight).",
		Labels: []string{"state"},
	}
	StoreWriteErrors = Def{
		Name: "strangler_store_write_errors_total",
		Help: "Dual-write journal writes (intents and outcomes) the state store refused. Outcomes are retried from memory until it takes them.",
	}
	StoreUp = Def{
		Name: "strangler_store_up",
		Help: "1 while the state store answers and takes writes; 0 while the facade serves its last known flags without it, or keeps dual-write outcomes in memory because it refuses them.",
	}
)

// The control plane and the configuration (packages control, cmd).
var (
	GuardRollbacks = Def{
		Name:   "strangler_guard_rollbacks_total",
		Help:   "Routes the guard rolled back because modern's error rate passed the bound.",
		Labels: []string{"route"},
	}
	AdminDenied = Def{
		Name:   "strangler_admin_denied_total",
		Help:   "Admin API calls, status page logins and forms refused, by reason: missing_token, invalid_token, expired_token, locked_out, role, cross_origin, no_session, form_token, token_in_query, host; and requests Go's HTTP server could not read: malformed, header, head_too_large, transfer_encoding, http_version, expect, not_tls (host: a Host missing or malformed, as well as one the listener does not answer to).",
		Labels: []string{"reason"},
	}
	RampState = Def{
		Name:   "strangler_ramp_state",
		Help:   "1 for each route with a ramp under way, in the label its state: running, waiting (its due step refused by the gates), paused, held (by the guard). Read from the store: every replica reports the same.",
		Labels: []string{"route", "state"},
	}
	RampWaiting = Def{
		Name:   "strangler_ramp_waiting_seconds",
		Help:   "How long each route's ramp has waited for its gates to let its due step through; 0 without a waiting ramp.",
		Labels: []string{"route"},
	}
	ChangesPending = Def{
		Name: "strangler_change_requests_pending",
		Help: "Change requests waiting for approval (they expire after 24 hours).",
	}
	ChangeOldest = Def{
		Name: "strangler_change_request_oldest_pending_seconds",
		Help: "Age of the oldest change request waiting for approval; 0 without one.",
	}
	AdminLockouts = Def{
		Name:   "strangler_admin_lockouts_total",
		Help:   "Admin token lockouts begun, by scope: address (too many wrong tokens from one address), listener (too many from all addresses together). While one lasts, tokens are compared at a rationed rate; a valid token is still admitted.",
		Labels: []string{"scope"},
	}
	ConfigReloadSuccessful = Def{
		Name: "strangler_config_last_reload_successful",
		Help: "1 if the last configuration reload succeeded, 0 if it was refused.",
	}
	ConfigReloadTimestamp = Def{
		Name: "strangler_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load.",
	}
)

// The backfill and verify (package backfill).
var (
	BackfillRows = Def{
		Name:   "strangler_backfill_rows_total",
		Help:   "Rows the backfill handled, by source (of several; empty for one), table and result (inserted, updated, already_present, failed, deleted; migrated for the API).",
		Labels: []string{"source", "table", "result"},
	}
	VerifyDeviations = Def{
		Name:   "strangler_verify_deviations",
		Help:   "Rows that differ between legacy and modern at the last verify, by table and kind (missing, extra, changed).",
		Labels: []string{"table", "kind"},
	}
	VerifyLastRun = Def{
		Name: "strangler_verify_last_run_timestamp_seconds",
		Help: "When the last verify finished.",
	}
)

// All lists every definition above, for the tests that check them; a
// test in cmd/strangler fails when the facade or the backfill registers a
// metric missing here, or none registers one listed.
var All = []Def{
	Requests, BrokenAnswers, RequestDuration, Fallbacks, RouteMode, ShadowComparisons, ShadowDuration, DualWrites, ForcedRequests, ForceIgnored, SchemaDrift, Refused, StaleFlagsWrites,
	ReplayBuffered, ClientConnections, ClientConnectionsMax, ClientConnectionsFull, AdminConnections, AdminConnectionsMax, AdminConnectionsFull,
	RepairQueueDepth, StoreWriteErrors, StoreUp,
	GuardRollbacks, RampState, RampWaiting, ChangesPending, ChangeOldest, AdminDenied, AdminLockouts, ConfigReloadSuccessful, ConfigReloadTimestamp,
	BackfillRows, VerifyDeviations, VerifyLastRun,
}

// Desc describes d for a collector that reads its values at each scrape.
func (d Def) Desc() *prometheus.Desc {
	return prometheus.NewDesc(d.Name, d.Help, d.Labels, nil)
}

// CounterVec returns a new counter with d's labels.
func (d Def) CounterVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: d.Name, Help: d.Help}, d.Labels)
}

// Counter returns a new counter without labels.
func (d Def) Counter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: d.Name, Help: d.Help})
}

// GaugeVec returns a new gauge with d's labels.
func (d Def) GaugeVec() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: d.Name, Help: d.Help}, d.Labels)
}

// Gauge returns a new gauge without labels.
func (d Def) Gauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: d.Name, Help: d.Help})
}

// GaugeFunc returns a gauge whose value f gives at each scrape.
func (d Def) GaugeFunc(f func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: d.Name, Help: d.Help}, f)
}

// HistogramVec returns a new histogram with d's labels and buckets.
func (d Def) HistogramVec() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: d.Name, Help: d.Help, Buckets: d.Buckets}, d.Labels)
}
