package config

import (
	"fmt"
	"net"
	"strconv"
)

// reservedRoute labels requests that match no route in metrics and logs.
const reservedRoute = "default"

func (d *decoder) validate(c *Config) {
	d.checkAddr("listen", c.Listen)
	d.checkAddr("admin.listen", c.Admin.Listen)
	if _, port, _ := net.SplitHostPort(c.Listen); c.Listen == c.Admin.Listen && port != "0" {
		d.errorAt("admin.listen", "must differ from listen (%s): keep the admin API off the public listener", c.Listen)
	}
	if c.Backends.Legacy.URL.URL == nil {
		d.errorAt("backends.legacy.url", "is required")
	}
	if c.Backends.Modern.URL.URL == nil {
		d.errorAt("backends.modern.url", "is required")
	}
	d.validateRoutes(c)
	d.validateBackfill(c.Backfill)
}

func (d *decoder) checkAddr(field, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		d.errorAt(field, "invalid address %q; write host:port or :port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.errorAt(field, "invalid port %q", port)
	}
}

func (d *decoder) validateRoutes(c *Config) {
	names := map[string]int{}
	// byShape groups routes whose paths match exactly the same requests, so
	// finding conflicts stays linear in the number of routes.
	byShape := map[string][]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := func(field string) string { return fmt.Sprintf("routes[%d].%s", i, field) }
		switch {
		case r.Name == "":
			d.errorAt(at("name"), "is required")
		case !isRouteName(r.Name):
			d.errorAt(at("name"), "invalid name %q; use lower-case letters, digits, -, _ and .", r.Name)
		case r.Name == reservedRoute:
			d.errorAt(at("name"), "%q is reserved for requests that match no route", r.Name)
		default:
			if first, dup := names[r.Name]; dup {
				d.errorAt(at("name"), "duplicate route name %q (also routes[%d])", r.Name, first)
			}
			names[r.Name] = i
		}
		if r.Match.Path == "" {
			d.errorAt(at("match"), "is required")
		} else {
			shape := r.Match.Shape()
			for _, j := range byShape[shape] {
				if c.Routes[j].Match.Overlaps(r.Match) {
					d.errorAt(at("match"), "%q conflicts with routes[%d] (%s) %q: both match the same requests",
						r.Match, j, c.Routes[j].Name, c.Routes[j].Match)
					break
				}
			}
			byShape[shape] = append(byShape[shape], i)
		}
		if r.Mode == "" {
			d.errorAt(at("mode"), "is required; want legacy, fallback or modern")
		}
		// Options of other modes are allowed on any route: a flip at run
		// time may move the route into the mode they serve.
		if r.IDField != "" {
			if _, err := ParseFieldPath(r.IDField); err != nil {
				d.errorAt(at("id_field"), "%v", err)
			}
		}
		if r.Compare != nil {
			for _, e := range r.Compare.Validate() {
				d.errorAt(at("compare."+e.Field), "%s", e.Msg)
			}
		}
		if r.FallbackOn != nil && len(r.FallbackOn) == 0 {
			d.errorAt(at("fallback_on"), "lists no trigger; leave it out for all of 404, 5xx, timeout and error")
		}
		if r.MaxReplayBody != nil && *r.MaxReplayBody == 0 {
			d.errorAt(at("max_replay_body"), "must be more than 0")
		}
	}
}

func isRouteName(s string) bool {
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			continue
		}
		return false
	}
	return s != ""
}
