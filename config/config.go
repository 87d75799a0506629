// Package config owns strangler's YAML configuration: loading a file,
// expanding its ${…} placeholders, decoding it strictly, validating it, and
// reporting every problem with the file, line and field it concerns.
package config

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"strangler/domain"
)

// Config is one validated configuration file with defaults applied.
type Config struct {
	// Listen is the public listener's address.
	Listen string `yaml:"listen"`
	// TLS serves the public listener over HTTPS (TLS 1.2 or later, HTTP/2);
	// nil serves plain HTTP.
	TLS *TLS `yaml:"tls,omitempty"`
	// Admin configures the separate admin listener.
	Admin Admin `yaml:"admin"`
	// Backends are the two sides of the migration.
	Backends Backends `yaml:"backends"`
	// Default is where requests go that match no route.
	Default domain.Backend `yaml:"default"`
	// DebugHeaders adds X-Strangler-Backend to responses of every route that
	// does not say otherwise.
	DebugHeaders bool `yaml:"debug_headers"`
	// TrustedProxies lists the networks whose X-Forwarded-* headers are kept;
	// from anyone else they are replaced.
	TrustedProxies []Prefix `yaml:"trusted_proxies,omitempty"`
	// MaxConnections caps the client connections the public listener holds
	// at once; at the cap further clients wait in the kernel's backlog. 0
	// (unset) is half the process's open-file limit, the rest left to the
	// backends, the store and the admin listener.
	MaxConnections int `yaml:"max_connections,omitempty"`
	// MaxReplayBody caps a request body that must be buffered to be sent
	// twice; routes may lower or raise it.
	MaxReplayBody ByteSize `yaml:"max_replay_body"`
	// ReplayBudget caps the bytes of request bodies buffered for replay
	// at once, over every route: a request that would go past it is
	// refused (503) before any backend sees a byte. The default is
	// DefaultReplayBudgetShare times max_replay_body, and never less
	// than the largest route's max_replay_body.
	ReplayBudget ByteSize `yaml:"replay_budget"`
	// MaxBody caps every request body (413); routes may lower or raise it.
	// 0 is unlimited.
	MaxBody ByteSize `yaml:"max_body,omitempty"`
	// IdempotencyScope names the request parts that identify a client
	// (header:NAME, cookie:NAME): a client's Idempotency-Key on a
	// dual-write route names a write only among requests carrying the
	// same values. Nil means DefaultIdempotencyScope; an empty list makes
	// keys one space for all clients.
	IdempotencyScope []Credential `yaml:"idempotency_scope"`
	// BodyTimeout ends a request whose body sends no byte for this long
	// (408), and aborts the request to the backend.
	BodyTimeout Duration `yaml:"body_timeout"`
	// AllowMethods lets methods through besides GET, HEAD, POST, PUT,
	// PATCH, DELETE and OPTIONS; any other answers 405. CONNECT and TRACE
	// are never let through.
	AllowMethods []Method `yaml:"allow_methods,omitempty"`
	// HeadersWithUnderscores is what becomes of a request header whose
	// name holds anything but letters, digits and -: dropped, refused
	// (400) or passed on.
	HeadersWithUnderscores HeaderRule `yaml:"headers_with_underscores"`
	// Shutdown tunes the drain on SIGTERM.
	Shutdown Shutdown `yaml:"shutdown"`
	// Store is where the facade keeps its state: "sqlite:PATH" for one
	// instance, or a postgres:// URL shared by several replicas.
	Store StoreDSN `yaml:"store"`
	// StoreEncryption encrypts what the store keeps of requests; nil
	// stores it in clear.
	StoreEncryption *StoreEncryption `yaml:"store_encryption,omitempty"`
	// ForceTokenKey signs the values of the X-Strangler-Force header that
	// `strangler routes force-token` issues for testers; nil turns force
	// tokens off. Every replica needs the same key.
	ForceTokenKey *EncryptionKey `yaml:"force_token_key,omitempty"`
	// StateSnapshot is where this replica keeps its last-known-good copy
	// of the route overrides, served when it starts while the store is
	// unreachable. The default is next to a SQLite store, and in the
	// temporary directory (named after the store) for PostgreSQL.
	StateSnapshot string `yaml:"state_snapshot"`
	// Repairs tunes the delivery of dual writes to the secondary.
	Repairs Repairs `yaml:"repairs"`
	// Approvals is how many token names must agree to a flip that moves
	// a route forward, its requester included: 2 makes such a flip a
	// change request another token approves. Routes may say otherwise; 0
	// (unset) and 1 need no approval.
	Approvals int `yaml:"approvals,omitempty"`
	// Routes are matched against every request; unmatched requests go to
	// Default.
	Routes []Route `yaml:"routes"`
	// Backfill configures the backfill and verify commands; nil when the
	// file has no backfill section.
	Backfill *Backfill `yaml:"backfill,omitempty"`

	// File is the path the configuration was read from.
	File string `yaml:"-"`
	// Warnings are what the file does that is valid but unwise, such as
	// journaling dual writes without store_encryption.
	Warnings Errors `yaml:"-"`
	// Unsafe are what the file does that turns a protection off: a secret
	// that is plainly not random, one secret for two purposes, every
	// address trusted as a proxy. `config check` refuses them; the
	// facade's start logs them as it logs Warnings and serves, so that a
	// facade that ran with one keeps running after an upgrade that
	// learned to see it, and a store key in use keeps opening what it
	// encrypted.
	Unsafe Errors `yaml:"-"`
	// Sources are every file the configuration was built from: File and the
	// files its ${file:…} placeholders read. A change to any of them is a
	// reason to reload.
	Sources []string `yaml:"-"`
}

// Admin configures the admin listener: metrics, health, readiness, the
// admin API and the status page.
type Admin struct {
	// Listen is the admin listener's address; keep it off the public network.
	Listen string `yaml:"listen"`
	// TLS serves the admin listener over HTTPS; nil serves plain HTTP.
	TLS *TLS `yaml:"tls,omitempty"`
	// Token is a bearer token for the admin API, named "admin" in the audit
	// log, with the operator role.
	Token Secret `yaml:"token,omitempty"`
	// Tokens are named bearer tokens; the name is the actor in the audit log.
	Tokens []Token `yaml:"tokens,omitempty"`
	// TrustedProxies are the networks of the load balancers or proxies in
	// front of the admin listener: from them, the client's address is
	// read from X-Forwarded-For, for the lockout, the security log and
	// the audit log.
	TrustedProxies []Prefix `yaml:"trusted_proxies,omitempty"`
	// Hosts are the host names, besides localhost, admin.listen's own
	// and any IP address, that the admin listener answers to in a
	// request's Host: the names operators, Prometheus and load balancers
	// reach it by. A page on another name that resolves to the listener
	// (DNS rebinding) is refused before any handler.
	Hosts []string `yaml:"hosts,omitempty"`
}

// AdminHosts are the host names the admin listener answers to besides
// localhost and IP addresses: admin.listen's host when it is a name, and
// admin.hosts.
func (a Admin) AdminHosts() []string {
	var hosts []string
	if host, _, err := net.SplitHostPort(a.Listen); err == nil && host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			hosts = append(hosts, host)
		}
	}
	return append(hosts, a.Hosts...)
}

// Token is one named admin token.
type Token struct {
	Name  string `yaml:"name"`
	Token Secret `yaml:"token"`
	// Role is what the token may do; required.
	Role Role `yaml:"role"`
	// Expires is the last day (UTC) the token works; nil never expires.
	Expires *Date `yaml:"expires,omitempty"`
}

// GuardActor names the guard in the audit log and on the overrides its
// rollbacks set, which is how a held route is known: no admin token may
// take the name.
const GuardActor = "guard"

// RampActor names a scheduled ramp in the audit log and on the overrides
// its steps set: no admin token may take the name either.
const RampActor = "ramp"

// ConfigActor names the configuration file in the audit log, on the
// entries that delete what routes removed from it left in the store:
// no admin token may take the name either.
const ConfigActor = "config"

// AdminTokens lists every admin token, admin.token named "admin" with the
// operator role.
func (a Admin) AdminTokens() []Token {
	tokens := append([]Token(nil), a.Tokens...)
	if a.Token != "" {
		tokens = append(tokens, Token{Name: "admin", Token: a.Token, Role: RoleOperator})
	}
	return tokens
}

// Backends names the two sides of the migration.
type Backends struct {
	Legacy Upstream `yaml:"legacy"`
	Modern Upstream `yaml:"modern"`
}

// Upstream says how to reach one backend.
type Upstream struct {
	// URL is the backend's base URL; a path in it prefixes every request path.
	URL URL `yaml:"url"`
	// Timeout bounds how long the backend may take to start answering:
	// connecting, and after the request is sent, the response headers. A
	// response body that has started streaming is not cut off.
	Timeout Duration `yaml:"timeout"`
	// IdleTimeout is how long a pooled connection to the backend may wait
	// idle before the facade closes it; keep it below the backend's own
	// keep-alive timeout (a Keep-Alive: timeout=N the backend sends
	// shortens it on its own).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnectionAge is how long a pooled connection to the backend is
	// used, however busy: past it the connection is closed once its
	// exchange ends, and the next one resolves the backend's name again,
	// so that a move by DNS (blue/green, failover) is followed.
	MaxConnectionAge Duration `yaml:"max_connection_age"`
	// TLS says how to trust an https backend; nil trusts the system's
	// authorities and checks the URL's host.
	TLS *UpstreamTLS `yaml:"tls,omitempty"`
}

// Shutdown tunes the drain on SIGTERM.
type Shutdown struct {
	// Delay keeps serving, with /readyz failing, so load balancers stop
	// sending new requests before the listener closes.
	Delay Duration `yaml:"delay"`
	// Grace is how long in-flight requests get to finish after the listener
	// closes; what is still running then is cut off.
	Grace Duration `yaml:"grace"`
}

// AfterGrace is the longest a stopping facade waits, after
// shutdown.grace, for requests whose clients it cut off but which are
// still at a backend: a dual write's primary may yet answer, and its
// answer must be recorded, or a restart finds the write unknown for an
// operator. It is the longer backend timeout plus the store's bound on
// recording an outcome (10 s) and some slack. An orchestrator's kill
// must come no sooner than shutdown.delay + shutdown.grace + AfterGrace
// after SIGTERM.
func (c *Config) AfterGrace() time.Duration {
	return time.Duration(max(c.Backends.Legacy.Timeout, c.Backends.Modern.Timeout)) + 12*time.Second
}

// Route says where requests matching one pattern go.
type Route struct {
	// Name identifies the route in metrics, logs and the admin API.
	Name string `yaml:"name"`
	// Match is "METHOD /path/{param}" or "/path/*"; no method matches all.
	Match Match `yaml:"match"`
	// Mode is where the route's traffic goes.
	Mode domain.Mode `yaml:"mode"`
	// Percent sends only this share of requests to modern (fallback and
	// modern modes); the rest go to legacy. Nil means 100.
	Percent *Percent `yaml:"percent,omitempty"`
	// Sticky keeps a client on one side of a percent split.
	Sticky Sticky `yaml:"sticky,omitempty"`
	// FallbackOn lists what makes a fallback route serve legacy instead.
	FallbackOn []Trigger `yaml:"fallback_on"`
	// FallbackMethods lets these non-idempotent methods fall back on any
	// trigger (their bodies are buffered for the replay).
	FallbackMethods []Method `yaml:"fallback_methods,omitempty"`
	// DebugHeaders overrides the top-level debug_headers for this route.
	DebugHeaders *bool `yaml:"debug_headers,omitempty"`
	// MaxReplayBody overrides the top-level max_replay_body for this route.
	MaxReplayBody *ByteSize `yaml:"max_replay_body,omitempty"`
	// MaxBody overrides the top-level max_body for this route.
	MaxBody *ByteSize `yaml:"max_body,omitempty"`
	// AllowEncodedSlash lets %2F through inside the route's parameters,
	// kept encoded; other routes refuse it (400).
	AllowEncodedSlash bool `yaml:"allow_encoded_slash,omitempty"`
	// LogPath adds the request path to this route's fallback log lines. Off
	// by default: paths often carry patient identifiers.
	LogPath bool `yaml:"log_path,omitempty"`

	// Primary is the backend that answers the client in shadow and
	// dual-write modes; the other one gets the copy. Empty means legacy.
	Primary domain.Backend `yaml:"primary,omitempty"`
	// IDField is where a dual-write primary's JSON response carries the id
	// of what it created (a field path such as id or data.id); it reaches
	// the secondary as X-Strangler-Primary-Id.
	IDField string `yaml:"id_field,omitempty"`
	// PrimaryIdempotent says the primary honours Idempotency-Key, so a write
	// whose outcome was lost in a crash may be sent to it again.
	PrimaryIdempotent bool `yaml:"primary_idempotent,omitempty"`
	// Compare configures a shadow route's response comparison.
	Compare *Compare `yaml:"compare,omitempty"`
	// ShadowWrites lets a shadow route copy non-idempotent requests too.
	ShadowWrites bool `yaml:"shadow_writes,omitempty"`

	// Gates refuse a flip to a later stage while the route misbehaves.
	Gates Gates `yaml:"gates,omitempty"`
	// Guard rolls a route in modern or fallback back when modern fails.
	Guard *Guard `yaml:"guard,omitempty"`
	// Approvals overrides the top-level approvals for this route; nil
	// keeps it.
	Approvals *int `yaml:"approvals,omitempty"`
	// RetireAfter is how long a route must see no fallback before its
	// legacy path counts as retirable; 0 means DefaultRetireAfter.
	RetireAfter Duration `yaml:"retire_after,omitempty"`
	// RetireMinRequests is how many requests modern must have served in
	// that time; 0 means DefaultRetireMinRequests.
	RetireMinRequests int `yaml:"retire_min_requests,omitempty"`
	// Entity names what the route's path parameter identifies (patients),
	// for read repair.
	Entity string `yaml:"entity,omitempty"`
	// EntityKey is the path parameter holding the entity's key; empty
	// means the route's only (or last) parameter.
	EntityKey string `yaml:"entity_key,omitempty"`
	// ReadRepair queues the entity's key for the backfill when modern did
	// not have it (a not_found fallback).
	ReadRepair bool `yaml:"read_repair,omitempty"`

	// Fence is never in the file: it is the route's fence in a PostgreSQL
	// state store when its flags were read (control.Flags), which the
	// journal checks each dual write against (domain.Intent.Fence): -1
	// when the route had none or the flags were not read yet, which no
	// write is journaled under; 0 for flags not read through
	// control.Flags, or from an SQLite store.
	Fence int64 `yaml:"-"`
}

// Gates bound a route's recent shadow mismatch and fallback rates; a flip
// to a later lifecycle stage is refused while either is above its bound.
type Gates struct {
	MaxMismatchRate *Percent `yaml:"max_mismatch_rate,omitempty"`
	MaxFallbackRate *Percent `yaml:"max_fallback_rate,omitempty"`
}

// IsZero reports whether no gate is set.
func (g Gates) IsZero() bool { return g.MaxMismatchRate == nil && g.MaxFallbackRate == nil }

// Guard rolls a route back when modern's error rate passes a bound.
type Guard struct {
	// MaxErrorRate is modern's 5xx and timeout share that trips the guard.
	MaxErrorRate Percent `yaml:"max_error_rate"`
	// Window is how far back the rate looks; 0 means one minute.
	Window Duration `yaml:"window,omitempty"`
	// MinRequests is how many modern requests the window needs before the
	// rate counts; 0 means DefaultGuardMinRequests.
	MinRequests int `yaml:"min_requests,omitempty"`
}

// Repairs tunes how journaled dual writes are delivered to the secondary.
type Repairs struct {
	// MaxAttempts is how many failed deliveries make a write dead; the
	// default spans about eight hours of a secondary being down.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the delay before the first retry, doubled (with jitter)
	// per attempt up to MaxBackoff.
	Backoff    Duration `yaml:"backoff"`
	MaxBackoff Duration `yaml:"max_backoff"`
	// Workers bounds the deliveries running at once on each replica.
	Workers int `yaml:"workers"`
	// Keep is how long delivered writes stay listed before they are purged.
	Keep Duration `yaml:"keep"`
}

func (r *Repairs) applyDefaults() {
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultRepairMaxAttempts
	}
	if r.Backoff == 0 {
		r.Backoff = Duration(DefaultRepairBackoff)
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = Duration(DefaultRepairMaxBackoff)
	}
	if r.Workers == 0 {
		r.Workers = DefaultRepairWorkers
	}
	if r.Keep == 0 {
		r.Keep = Duration(DefaultRepairKeep)
	}
}

// PrimaryBackend is the route's primary: legacy unless it says modern.
func (r *Route) PrimaryBackend() domain.Backend {
	if r.Primary == "" {
		return domain.Legacy
	}
	return r.Primary
}

// Defaults that apply where the file is silent.
const (
	DefaultListen      = ":8080"
	DefaultAdminListen = "127.0.0.1:9901"
	DefaultTimeout     = 15 * time.Second
	// DefaultIdleTimeout is Go's transport's IdleConnTimeout.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultMaxConnectionAge is upstream.DefaultMaxConnAge.
	DefaultMaxConnectionAge = time.Minute
	DefaultMaxReplayBody    = 10 << 20
	// DefaultReplayBudgetShare is how many bodies of max_replay_body the
	// default replay_budget holds at once: 160 MiB with the default 10
	// MiB, whatever the number of clients.
	DefaultReplayBudgetShare = 16
	// DefaultBodyTimeout is nginx's client_body_timeout.
	DefaultBodyTimeout   = 60 * time.Second
	DefaultShutdownGrace = 30 * time.Second
	DefaultStore         = "sqlite:./strangler.db"
)

// DefaultIdempotencyScope scopes Idempotency-Keys by the Authorization
// header: a bearer token or basic credentials name the client.
var DefaultIdempotencyScope = []Credential{{Sticky{Header: "Authorization"}}}

// Defaults of the retirement verdict and the guard.
const (
	DefaultRetireAfter       = 7 * 24 * time.Hour
	DefaultRetireMinRequests = 1000
	DefaultGuardWindow       = time.Minute
	DefaultGuardMinRequests  = 20
)

// Defaults of the repairs section.
const (
	DefaultRepairMaxAttempts = 100
	DefaultRepairBackoff     = time.Second
	DefaultRepairMaxBackoff  = 5 * time.Minute
	DefaultRepairWorkers     = 8
	DefaultRepairKeep        = 7 * 24 * time.Hour
)

// ReplayLimit is the route's effective max_replay_body.
func (c *Config) ReplayLimit(r *Route) int64 {
	if r.MaxReplayBody != nil {
		return int64(*r.MaxReplayBody)
	}
	return int64(c.MaxReplayBody)
}

// BodyLimit is the route's effective max_body; 0 is unlimited.
func (c *Config) BodyLimit(r *Route) int64 {
	if r.MaxBody != nil {
		return int64(*r.MaxBody)
	}
	return int64(c.MaxBody)
}

// ApprovalsFor is how many token names must agree to move the route
// forward, its requester included: 1 when it needs no approval.
func (c *Config) ApprovalsFor(r *Route) int {
	n := c.Approvals
	if r.Approvals != nil {
		n = *r.Approvals
	}
	return max(n, 1)
}

// DebugHeadersFor reports whether the route adds X-Strangler-Backend.
func (c *Config) DebugHeadersFor(r *Route) bool {
	if r.DebugHeaders != nil {
		return *r.DebugHeaders
	}
	return c.DebugHeaders
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	for _, u := range []*Upstream{&c.Backends.Legacy, &c.Backends.Modern} {
		if u.Timeout == 0 {
			u.Timeout = Duration(DefaultTimeout)
		}
		if u.IdleTimeout == 0 {
			u.IdleTimeout = Duration(DefaultIdleTimeout)
		}
		if u.MaxConnectionAge == 0 {
			u.MaxConnectionAge = Duration(DefaultMaxConnectionAge)
		}
	}
	if c.Default == "" {
		c.Default = domain.Legacy
	}
	if c.MaxReplayBody == 0 {
		c.MaxReplayBody = DefaultMaxReplayBody
	}
	if c.ReplayBudget == 0 {
		c.ReplayBudget = DefaultReplayBudgetShare * c.MaxReplayBody
		for i := range c.Routes {
			c.ReplayBudget = max(c.ReplayBudget, ByteSize(c.ReplayLimit(&c.Routes[i])))
		}
	}
	if c.IdempotencyScope == nil {
		c.IdempotencyScope = slices.Clone(DefaultIdempotencyScope)
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = Duration(DefaultBodyTimeout)
	}
	if c.HeadersWithUnderscores == "" {
		c.HeadersWithUnderscores = HeadersDrop
	}
	if c.Shutdown.Grace == 0 {
		c.Shutdown.Grace = Duration(DefaultShutdownGrace)
	}
	if c.Store == "" {
		c.Store = DefaultStore
	}
	c.Repairs.applyDefaults()
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.FallbackOn == nil {
			r.FallbackOn = AllTriggers
		}
		if r.RetireAfter == 0 {
			r.RetireAfter = Duration(DefaultRetireAfter)
		}
		if r.RetireMinRequests == 0 {
			r.RetireMinRequests = DefaultRetireMinRequests
		}
		if g := r.Guard; g != nil {
			if g.Window == 0 {
				g.Window = Duration(DefaultGuardWindow)
			}
			if g.MinRequests == 0 {
				g.MinRequests = DefaultGuardMinRequests
			}
		}
	}
	if c.Backfill != nil {
		c.Backfill.applyDefaults()
	}
}
