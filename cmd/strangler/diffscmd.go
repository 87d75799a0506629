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

	"strangler/shadow"
)

// runDiffs runs `strangler diffs`: the shadow routes' mismatch samples,
// or the noise fields they learned to ignore.
func runDiffs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("diffs", flag.ContinueOnError)
	setUsage(fs, `diffs [--route R] [--limit N] [--noise] [--json]

The shadow routes' latest mismatches, newest first: the two statuses, each
differing field with both values, and a curl command for each side to
reproduce it (secrets and redacted fields elided). With --noise: the
fields each route learned to ignore because the primary itself answers
them differently every time.`)
	client := adminFlags(fs, getenv)
	route := fs.String("route", "", "only this `route`")
	limit := fs.Int("limit", 20, "at most `N` samples (1-1000)")
	noise := fs.Bool("noise", false, "show the learned noise fields instead")
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
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *route != "" {
		q.Set("route", *route)
	}
	if *noise {
		q.Set("noise", "1")
		var out struct {
			Noise map[string][]string `json:"noise"`
		}
		resp, err := c.get(ctx, "/admin/diffs", q, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(resp.body)
			return err
		}
		writeNoise(stdout, out.Noise)
		return nil
	}
	q.Set("limit", strconv.Itoa(*limit))
	var out struct {
		Samples []shadow.Sample `json:"samples"`
	}
	resp, err := c.get(ctx, "/admin/diffs", q, &out)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(resp.body)
		return err
	}
	if len(out.Samples) == 0 {
		fmt.Fprintln(stdout, "no mismatch samples")
		return nil
	}
	now := time.Now()
	for i, s := range out.Samples {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		writeSample(stdout, s, now)
	}
	return nil
}

// writeSample lays one mismatch out: a heading, the differing fields in
// columns, then the two curl commands.
func writeSample(w io.Writer, s shadow.Sample, now time.Time) {
	fmt.Fprintf(w, "%s  %s  primary %d, other %d\n", s.Route, fmtTime(s.At, now), s.PrimaryStatus, s.OtherStatus)
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
		fmt.Fprintf(tw, "%s\t%s\n", r, strings.Join(noise[r], ", "))
	}
	tw.Flush()
}
