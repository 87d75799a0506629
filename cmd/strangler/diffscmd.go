package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"strangler/internal/human"
	"strangler/shadow"
)

// runDiffs runs `strangler diffs`: the shadow routes' mismatch samples,
// or the noise fields they learned to ignore.
func runDiffs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("diffs", flag.ContinueOnError)
	setUsage(fs, `diffs [--route R] [--limit N] [--noise | --schema] [--json]

The shadow routes' latest mismatches, grouped by route and the fields
that differ, the group with the newest sample first: how many samples
and on which requests, then the newest one's two statuses, each differing
field with both values, and a curl command for each side to reproduce it.
Values, path parameters and query values show as keyed hashes ({h:…}):
the same value hashes alike, so the same mismatch on the same patient
groups, and a curl runs once its placeholders are filled in. Only
compare.keep_values fields show in clear. With --noise: the fields each
route learned to ignore because the primary itself answers them
differently every time. With --schema: per route, method and status,
where modern's answers departed from the JSON shape learned from
legacy's (a field legacy always sends that modern lacks, or sends with
another type), how often, and what each side sends there.`)
	client := adminFlags(fs, getenv)
	route := fs.String("route", "", "only this `route`")
	limit := fs.Int("limit", 100, "group the newest `N` samples (1-1000)")
	noise := fs.Bool("noise", false, "show the learned noise fields instead")
	schema := fs.Bool("schema", false, "show modern's drift from legacy's learned response schema instead")
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usageError{fmt.Sprintf("diffs: unexpected argument %q", rest[0])}
	case *limit < 1 || *limit > 1000:
		return usageError{"diffs: --limit must be from 1 to 1000"}
	case *noise && *schema:
		return usageError{"diffs: --noise and --schema show different things; ask for one"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *route != "" {
		q.Set("route", *route)
	}
	if *schema {
		q.Set("schema", "1")
		var out struct {
			Schemas []schemaDrift `json:"schemas"`
		}
		resp, err := c.Get(ctx, "/admin/diffs", q, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(resp.Body)
			return err
		}
		sortSchemaDrift(out.Schemas)
		writeSchemaDrift(stdout, out.Schemas)
		return nil
	}
	if *noise {
		q.Set("noise", "1")
		var out struct {
			Noise map[string][]string `json:"noise"`
		}
		resp, err := c.Get(ctx, "/admin/diffs", q, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(resp.Body)
			return err
		}
		writeNoise(stdout, out.Noise)
		return nil
	}
	q.Set("limit", strconv.Itoa(*limit))
	var out struct {
		Samples []shadow.Sample `json:"samples"`
	}
	resp, err := c.Get(ctx, "/admin/diffs", q, &out)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	if len(out.Samples) == 0 {
		fmt.Fprintln(stdout, "no mismatch samples")
		return nil
	}
	now := time.Now()
	for i, g := range groupSamples(out.Samples) {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		writeGroup(stdout, g, now)
	}
	return nil
}

// sampleGroup is the samples of one route that differ in the same fields,
// newest first.
type sampleGroup struct {
	route, unreadable string
	paths             []string
	samples           []shadow.Sample
}

// groupSamples groups samples (newest first) by route and differing
// fields, in the order of each group's newest sample. Samples that cannot
// be read group by route and reason.
func groupSamples(samples []shadow.Sample) []*sampleGroup {
	var groups []*sampleGroup
	byKey := map[string]*sampleGroup{}
	for _, s := range samples {
		paths := make([]string, len(s.Diffs))
		for i, d := range s.Diffs {
			paths[i] = d.Path
		}
		key := s.Route + "\x00" + s.Unreadable + "\x00" + strings.Join(paths, "\x00")
		g := byKey[key]
		if g == nil {
			g = &sampleGroup{route: s.Route, unreadable: s.Unreadable, paths: paths}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.samples = append(g.samples, s)
	}
	return groups
}

// writeGroup lays one group out: what differs and how often, the requests
// it was seen on, then the newest sample.
func writeGroup(w io.Writer, g *sampleGroup, now time.Time) {
	newest, oldest := g.samples[0], g.samples[len(g.samples)-1]
	n := plural(len(g.samples), "sample", "samples")
	if g.unreadable != "" {
		fmt.Fprintf(w, "%s: %s that cannot be read (newest %s): %s\n", g.route, n, human.Age(now.Sub(newest.At))+" ago", g.unreadable)
		return
	}
	fmt.Fprintf(w, "%s: %s differing in %s (newest %s ago, oldest %s ago)\n",
		g.route, n, cell(strings.Join(g.paths, ", "), 120), human.Age(now.Sub(newest.At)), human.Age(now.Sub(oldest.At)))
	var requests []string
	seen := map[string]int{}
	for _, s := range g.samples {
		r := s.Method + " " + s.Target
		if seen[r] == 0 {
			requests = append(requests, r)
		}
		seen[r]++
	}
	for _, r := range requests {
		fmt.Fprintf(w, "  %s ×%d\n", cell(r, 0), seen[r])
	}
	writeSample(w, newest, now)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// writeSample lays one mismatch out: its statuses, the differing fields in
// columns, then the two curl commands.
func writeSample(w io.Writer, s shadow.Sample, now time.Time) {
	fmt.Fprintf(w, "  newest: %s, primary %d, other %d\n", fmtTime(s.At, now), s.PrimaryStatus, s.OtherStatus)
	tw := newTable(w)
	fmt.Fprintln(tw, "  PATH\tPRIMARY\tOTHER")
	for _, d := range s.Diffs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", cell(d.Path, 0), diffValue(d.Primary), diffValue(d.Other))
	}
	tw.Flush()
	if s.MoreDiffs > 0 {
		fmt.Fprintf(w, "  … and %d more differences\n", s.MoreDiffs)
	}
	fmt.Fprintf(w, "  primary: %s\n", s.CurlPrimary)
	fmt.Fprintf(w, "  other:   %s\n", s.CurlOther)
}

// diffValue writes one side's value of a differing field; the API leaves
// it empty when the field is absent on that side.
func diffValue(v string) string {
	if v == "" {
		return "(absent)"
	}
	return cell(v, 60)
}

func writeNoise(w io.Writer, noise map[string][]string) {
	if len(noise) == 0 {
		fmt.Fprintln(w, "no noise fields learned (only shadow routes with compare: {noise: true} learn them)")
		return
	}
	routes := make([]string, 0, len(noise))
	for r := range noise {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	tw := newTable(w)
	fmt.Fprintln(tw, "ROUTE\tNOISE FIELDS")
	for _, r := range routes {
		fmt.Fprintf(tw, "%s\t%s\n", cell(r, 0), cell(strings.Join(noise[r], ", "), 0))
	}
	tw.Flush()
}
