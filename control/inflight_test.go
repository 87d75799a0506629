package control

import (
	"testing"

	"strangler/config"
	"strangler/domain"
)

func route(name, match string, mode domain.Mode, primary domain.Backend) config.Route {
	var m config.Match
	if err := m.UnmarshalText([]byte(match)); err != nil {
		panic(err)
	}
	return config.Route{Name: name, Match: m, Mode: mode, Primary: primary}
}

// The routes of a configuration no longer there are found by name, or not
// at all when a route of the next one continues them by their match.
func TestDroppedRoutesAreThoseNothingContinues(t *testing.T) {
	prev := &config.Config{Routes: []config.Route{
		route("put-item", "PUT /items/{id}", domain.ModeDualWrite, ""),
		route("post-item", "POST /items", domain.ModeDualWrite, ""),
		route("get-item", "GET /items/{id}", domain.ModeLegacy, ""),
	}}
	next := &config.Config{Routes: []config.Route{
		// Renamed: same method and shape, the old name gone.
		route("put-item-v2", "PUT /items/{item}", domain.ModeDualWrite, ""),
		route("get-item", "GET /items/{id}", domain.ModeModern, ""),
	}}
	var got []string
	for _, r := range droppedRoutes(prev, next) {
		got = append(got, r.Name)
	}
	if len(got) != 1 || got[0] != "post-item" {
		t.Errorf("dropped: got %v, want [post-item]", got)
	}
	if got := droppedRoutes(nil, next); got != nil {
		t.Errorf("dropped at a start: got %v, want none (a start knows no earlier routes)", got)
	}
}

// What serves a dropped route's writes is the route of the next
// configuration matching its requests, else the default backend; at a
// start, where the journal keeps no match, any route taking writes and the
// default backend.
func TestOvertakerIsWhatNowServesTheDroppedRoutesRequests(t *testing.T) {
	put := route("put-item", "PUT /items/{id}", domain.ModeDualWrite, "").Match
	for _, tc := range []struct {
		name   string
		routes []config.Route
		def    domain.Backend
		m      *config.Match
		want   string
	}{
		{"no route matches and the default is the primary", nil, domain.Legacy, &put, ""},
		{"no route matches and the default is the secondary", nil, domain.Modern, &put, "the default backend (default: modern)"},
		{"a route of its match sends writes to the secondary", []config.Route{
			route("get-item", "GET /items/{id}", domain.ModeModern, ""),
			route("put-any", "/items/{id}", domain.ModeModern, ""),
		}, domain.Legacy, &put, "routes[1] (put-any)"},
		{"a route of its match and method is the one serving them", []config.Route{
			route("any", "/items/{id}", domain.ModeModern, ""),
			route("put-legacy", "PUT /items/{id}", domain.ModeLegacy, ""),
		}, domain.Legacy, &put, ""},
		{"a route of its match sends writes to the primary only, the default the secondary", []config.Route{
			route("put-legacy", "PUT /items/{key}", domain.ModeLegacy, ""),
		}, domain.Modern, &put, ""},
		{"routes of other requests send writes to the secondary", []config.Route{
			route("post-order", "POST /orders", domain.ModeModern, ""),
		}, domain.Legacy, &put, ""},
		{"a wildcard route sends writes to the secondary", []config.Route{
			route("items-any", "/items/*", domain.ModeModern, ""),
		}, domain.Legacy, &put, "routes[0] (items-any)"},
		{"a route of another regexp sends writes to the secondary", []config.Route{
			route("put-number", "PUT /items/{id:[0-9]+}", domain.ModeModern, ""),
		}, domain.Legacy, &put, "routes[0] (put-number)"},
		{"a route of another regexp sends writes to the primary, the default the secondary", []config.Route{
			route("put-number", "PUT /items/{id:[0-9]+}", domain.ModeLegacy, ""),
		}, domain.Modern, &put, "the default backend (default: modern)"},
		{"a route of its match takes them all from a catch-all sending writes to the secondary", []config.Route{
			route("all", "/*", domain.ModeModern, ""),
			route("put-legacy", "PUT /items/{key}", domain.ModeLegacy, ""),
		}, domain.Modern, &put, ""},
		{"at a start, a route taking writes sends them to the secondary", []config.Route{
			route("get-item", "GET /items/{id}", domain.ModeModern, ""),
			route("post-order", "POST /orders", domain.ModeDualWrite, domain.Modern),
		}, domain.Legacy, nil, "routes[1] (post-order)"},
		{"at a start, only reads go to the secondary", []config.Route{
			route("get-item", "GET /items/{id}", domain.ModeModern, ""),
			route("post-order", "POST /orders", domain.ModeDualWrite, ""),
		}, domain.Legacy, nil, ""},
		{"at a start, the default is the secondary", []config.Route{
			route("post-order", "POST /orders", domain.ModeDualWrite, ""),
		}, domain.Modern, nil, "the default backend (default: modern)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &config.Config{Default: tc.def, Routes: tc.routes}
			if got := overtaker(next, tc.m, domain.Modern); got != tc.want {
				t.Errorf("overtaker of writes owed to modern: got %q, want %q", got, tc.want)
			}
		})
	}
}

// A change of where a route of reads alone (GET, HEAD, OPTIONS) sends
// them moves no write: it is not checked against the journal, nor does
// it hold dual writes back (the guard rolling a read route back while
// the store was stuck held every dual write). A route that takes writes
// under either configuration is checked.
func TestAChangeOfAReadRouteMovesNoWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev, next config.Route
		want       bool
	}{
		{"a read route rolled back from modern to fallback",
			route("reads", "GET /reads/{id}", domain.ModeModern, ""), route("reads", "GET /reads/{id}", domain.ModeFallback, ""), false},
		{"a HEAD route flipped to modern",
			route("heads", "HEAD /reads/{id}", domain.ModeLegacy, ""), route("heads", "HEAD /reads/{id}", domain.ModeModern, ""), false},
		{"a PUT route flipped to modern",
			route("put-item", "PUT /items/{id}", domain.ModeDualWrite, ""), route("put-item", "PUT /items/{id}", domain.ModeModern, ""), true},
		{"a route of every method flipped to modern",
			route("items", "/items/{id}", domain.ModeLegacy, ""), route("items", "/items/{id}", domain.ModeModern, ""), true},
		{"a PUT route that became a GET route",
			route("item", "PUT /items/{id}", domain.ModeLegacy, ""), route("item", "GET /items/{id}", domain.ModeModern, ""), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := &config.Config{Routes: []config.Route{tc.prev}}
			next := &config.Config{Routes: []config.Route{tc.next}}
			if got := len(changedWrites(prev, next)) > 0; got != tc.want {
				t.Errorf("changes where writes go: got %t, want %t", got, tc.want)
			}
		})
	}
}
