// Package domain is strangler's shared vocabulary: the route modes and
// their lifecycle, the two backends, JSON field paths, the journaled
// writes and the states they move through, overrides, audit entries and
// the hourly counts. It holds types and the rules that belong to them, and
// imports nothing outside the standard library, so that the hot path
// (router, stats, shadow) can speak it without linking a database driver
// or a YAML parser.
package domain
