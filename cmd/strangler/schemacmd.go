package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"strangler/internal/human"
	"strangler/shadow"
)

func routesSchema(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes schema", flag.ContinueOnError)
	setUsage(fs, `routes schema NAME [--format openapi|json-schema] [--status N] [--method M]

Prints the JSON shape of legacy's answers on the route, as the facade
learned it in shadow and fallback modes (field names, types, which fields
legacy always sends; never values, except compare.keep_values ones), for
modern's team to test against in CI: an OpenAPI 3.1 document with one
response per status (the default), or the JSON Schema (2020-12) of one
status, by default the 2xx legacy answered most.`)
	client := adminFlags(fs, getenv)
	format := fs.String("format", "openapi", "`format`: openapi or json-schema")
	status := fs.Int("status", 0, "only the answers with this `status`")
	method := fs.String("method", "", "only the answers to this request `method`")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError{"routes schema: name one route: strangler routes schema NAME --format openapi"}
	case *format != "openapi" && *format != "json-schema":
		return usageError{fmt.Sprintf("routes schema: unknown --format %q; want openapi or json-schema", *format)}
	case *status != 0 && (*status < 100 || *status > 599):
		return usageError{"routes schema: --status must be an HTTP status from 100 to 599"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	// The schema endpoint's 404 also says that nothing was learned yet;
	// reading the route first tells an unknown route apart.
	if _, _, err := readRoute(ctx, c, rest[0]); err != nil {
		return err
	}
	q := url.Values{"format": {*format}}
	if *status != 0 {
		q.Set("status", strconv.Itoa(*status))
	}
	if *method != "" {
		q.Set("method", strings.ToUpper(*method))
	}
	resp, err := c.Get(ctx, "/admin/routes/"+url.PathEscape(rest[0])+"/schema", q, nil)
	if err != nil {
		return err
	}
	_, err = stdout.Write(resp.Body)
	return err
}

// schemaDrift is a learned schema's drift as GET /admin/diffs?schema=1
// lists it.
type schemaDrift struct {
	Route     string               `json:"route"`
	Method    string               `json:"method"`
	Status    int                  `json:"status"`
	Answers   int64                `json:"answers"`
	Checked   int64                `json:"checked"`
	Truncated bool                 `json:"truncated"`
	Drift     []shadow.DriftReport `json:"drift"`
}

// writeSchemaDrift lays out, per learned schema, where modern's answers
// departed from legacy's shape.
func writeSchemaDrift(w io.Writer, schemas []schemaDrift) {
	if len(schemas) == 0 {
		fmt.Fprintln(w, "no schema learned yet (shadow and fallback routes learn one from legacy's JSON answers)")
		return
	}
	for i, s := range schemas {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %s %d: learned from %s legacy answers, %s modern answers checked", s.Route, s.Method, s.Status, human.Count(s.Answers), human.Count(s.Checked))
		if s.Truncated {
			fmt.Fprint(w, " (truncated: legacy's answers have more places than a schema keeps)")
		}
		fmt.Fprintln(w)
		if len(s.Drift) == 0 {
			fmt.Fprintln(w, "  no drift")
			continue
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "  PATH\tDRIFT\tANSWERS\tLEGACY SENDS\tMODERN SENT")
		for _, d := range s.Drift {
			modern := "(absent)"
			if d.Kind == shadow.DriftType {
				modern = strings.Join(d.ModernTypes, ", ")
			}
			legacy := strings.Join(d.LegacyTypes, ", ")
			if d.Presence >= 1 {
				legacy += ", always"
			} else {
				legacy += fmt.Sprintf(", in %s", human.Share(d.Presence))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", cell(d.Path, 0), d.Kind, human.Count(d.Count), legacy, modern)
		}
		tw.Flush()
	}
}

// sortSchemaDrift puts the schemas with the most drift first.
func sortSchemaDrift(schemas []schemaDrift) {
	total := func(s schemaDrift) int64 {
		var n int64
		for _, d := range s.Drift {
			n += d.Count
		}
		return n
	}
	slices.SortStableFunc(schemas, func(a, b schemaDrift) int { return cmp.Compare(total(b), total(a)) })
}
