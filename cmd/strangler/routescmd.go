package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"strangler/config"
	"strangler/control"
	"strangler/domain"
	"strangler/internal/human"
)

const routesUsage = `usage: strangler routes <command> [flags]

commands:
  list [--json]             every route: file and effective mode, live rates, overrides
  set NAME --mode M [--percent N] --reason "…" [--force]
                            flip a route (an audited override of the file's mode)
  set NAME --clear --reason "…"
                            drop the override: the file's mode applies again
  report [--json] [NAME]    the retirement report: traffic, fallbacks, verdict, next stage
  force-token NAME --backend B [--ttl 1h] [--reason "…"]
                            a signed X-Strangler-Force header value for testers
  schema NAME [--format openapi|json-schema] [--status N]
                            the JSON shape of legacy's answers, learned, for modern's CI
  ramp NAME --steps 1,5,25,50,100 --every 30m [--mode M] --reason "…"
                            raise the share to modern step by step, while the gates pass
  ramp NAME --pause|--resume|--cancel --reason "…"
                            stop or go on with the ramp under way
  ramp NAME                 show the route's ramp
  changes [--all] [--json]  change requests waiting for approval (--all: decided ones too)
  approve ID [--reason "…"] approve another token's change request; the last approval applies it
  reject ID --reason "…"    reject a change request (or withdraw your own)

` + tokenHelp

// runRoutes runs `strangler routes …`: reading and flipping route flags
// through the admin API.
func runRoutes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, routesUsage)
		return usageError{"routes: want list, set, report, force-token, schema, ramp, changes, approve or reject"}
	}
	switch args[0] {
	case "list":
		return routesList(ctx, args[1:], getenv, stdout, stderr)
	case "set":
		return routesSet(ctx, args[1:], getenv, stdout, stderr)
	case "report":
		return routesReport(ctx, args[1:], getenv, stdout, stderr)
	case "force-token":
		return routesForceToken(ctx, args[1:], getenv, stdout, stderr)
	case "schema":
		return routesSchema(ctx, args[1:], getenv, stdout, stderr)
	case "ramp":
		return routesRamp(ctx, args[1:], getenv, stdout, stderr)
	case "changes":
		return routesChanges(ctx, args[1:], getenv, stdout, stderr)
	case "approve", "reject":
		return routesDecide(ctx, args[0], args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, routesUsage)
		return nil
	}
	fmt.Fprint(stderr, routesUsage)
	return usageError{fmt.Sprintf("routes: unknown command %q; want list, set, report, force-token, schema, ramp, changes, approve or reject", args[0])}
}

// overrideAge is how long ago the route was flipped, "-" without an
// override. It uses the facade's age_seconds, so this machine's clock
// does not matter.
func overrideAge(r control.RouteJSON) string {
	if r.Override == nil {
		return "-"
	}
	return human.Age(time.Duration(r.Override.AgeSeconds * float64(time.Second)))
}

// routeState is how the route is now, for messages: "fallback at 50% by
// alice".
func routeState(r control.RouteJSON) string {
	s := control.ModeText(domain.Mode(r.Mode), r.Percent)
	if r.Override != nil {
		return s + " by " + r.Override.Actor
	}
	return s + ", the file's mode"
}

func routesList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes list", flag.ContinueOnError)
	setUsage(fs, "routes list [--json] [--admin URL]")
	client := adminFlags(fs, getenv)
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("routes list: unexpected argument %q", rest[0])}
	}
	c, err := client()
	if err != nil {
		return err
	}
	var out struct {
		Routes []control.RouteJSON `json:"routes"`
	}
	resp, err := c.Get(ctx, "/admin/routes", nil, &out)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ROUTE\tMATCH\tFILE MODE\tMODE\tPERCENT\tREQ/S\tFALLBACK\tMISMATCH\tOVERRIDE")
	for _, r := range out.Routes {
		override := overrideAge(r)
		if r.Override != nil {
			override += " by " + r.Override.Actor
		}
		mode := r.Mode
		if r.Held != nil {
			mode += " (held)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Name, r.Match, control.ModeText(domain.Mode(r.FileMode), r.FilePercent), mode, fmtPercent(r.Mode, r.Percent),
			strconv.FormatFloat(r.Live.RequestsPerSecond, 'f', 2, 64),
			human.Share(r.Live.FallbackRate), human.Share(r.Live.MismatchRate), override)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	now := time.Now()
	for _, r := range out.Routes {
		if r.Held != nil {
			fmt.Fprintf(stdout, "\n%s is held by the guard since %s: %s\nThe guard leaves it alone until it is flipped or cleared (strangler routes set %s …).\n",
				r.Name, fmtTime(r.Held.Since, now), r.Held.Reason, r.Name)
		}
		if r.Ramp != nil && r.Ramp.Active() {
			fmt.Fprintf(stdout, "\n%s ramps %s: %s (strangler routes ramp %s)\n", r.Name, r.Ramp.PlanText(), r.Ramp.ProgressText(), r.Name)
		}
		if c := r.PendingChange; c != nil {
			fmt.Fprintf(stdout, "\n%s has change request %d pending: %s's %s, until %s (strangler routes approve %d)\n",
				r.Name, c.ID, c.RequestedBy, c.Summary, fmtTime(c.ExpiresAt, now), c.ID)
		}
		if r.RolloutsUnknown != "" {
			fmt.Fprintf(stdout, "\n%s: %s\n", r.Name, r.RolloutsUnknown)
		}
	}
	return nil
}

// patchBody is the body of PATCH /admin/routes/{name}.
type patchBody struct {
	Mode    string   `json:"mode,omitempty"`
	Percent *float64 `json:"percent,omitempty"`
	Reason  string   `json:"reason"`
	Force   bool     `json:"force,omitempty"`
	Clear   bool     `json:"clear,omitempty"`
}

func routesSet(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes set", flag.ContinueOnError)
	setUsage(fs, `routes set NAME --mode M [--percent N] --reason "…" [--force]
       strangler routes set NAME --clear --reason "…"

Flips a route: the new mode is kept in the state store as an override of
the configuration file, audited with the token's name and the reason, and
followed by every replica within a second. A flip to a later stage is
refused while the route's gates see too many shadow mismatches or
fallbacks; --force flips anyway and the audit log says so.`)
	client := adminFlags(fs, getenv)
	var body patchBody
	fs.Func("mode", "new `mode`: legacy, shadow, fallback, dual-write or modern", func(s string) error {
		var m domain.Mode
		if err := m.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		body.Mode = string(m)
		return nil
	})
	fs.Func("percent", "share `N` (0-100) of requests sent to modern (fallback and modern modes)", func(s string) error {
		var p config.Percent
		if err := p.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		v := float64(p)
		body.Percent = &v
		return nil
	})
	reasonVar(fs, &body.Reason, "`text` saying why, for the audit log (required)")
	fs.BoolVar(&body.Force, "force", false, "flip even though a gate refuses it (audited as forced)")
	fs.BoolVar(&body.Clear, "clear", false, "drop the override, so the file's mode applies again")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError{"routes set: name one route: strangler routes set NAME --mode M --reason \"…\""}
	case body.Clear && (body.Mode != "" || body.Percent != nil):
		return usageError{"routes set: --clear goes back to the file's mode; it takes no --mode or --percent"}
	case !body.Clear && body.Mode == "" && body.Percent == nil:
		return usageError{"routes set: say what to change: --mode, --percent or --clear"}
	case strings.TrimSpace(body.Reason) == "":
		return usageError{"routes set: --reason is required: it goes into the audit log, with your token's name"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	return setRoute(ctx, c, rest[0], body, stdout)
}

// setRoute reads the route, then changes it only if nobody changed it in
// between: the PATCH carries the version read as If-Match.
func setRoute(ctx context.Context, c *control.Client, name string, body patchBody, stdout io.Writer) error {
	before, etag, err := readRoute(ctx, c, name)
	if err != nil {
		return err
	}
	if mode := cmp.Or(body.Mode, before.Mode); body.Percent != nil && !domain.Mode(mode).TakesPercent() {
		// The API would store it, and the router ignore it.
		return usageError{fmt.Sprintf("routes set: --percent applies to fallback and modern; %s would be %s", name, mode)}
	}
	after, req, err := patchRoute(ctx, c, name, etag, body)
	if err != nil {
		return err
	}
	if req != nil {
		fmt.Fprintln(stdout, req.Message)
		return nil
	}
	if after.Unchanged {
		fmt.Fprintf(stdout, "%s: already %s; nothing was changed or audited\n", name, control.ModeText(domain.Mode(after.Mode), after.Percent))
		return nil
	}
	fmt.Fprintf(stdout, "%s: %s -> %s", name, control.ModeText(domain.Mode(before.Mode), before.Percent), control.ModeText(domain.Mode(after.Mode), after.Percent))
	switch {
	case body.Clear:
		fmt.Fprint(stdout, " (the file's mode again)")
	case body.Force:
		fmt.Fprint(stdout, " (forced past the gates)")
	}
	fmt.Fprintln(stdout)
	return nil
}

// readRoute returns a route and its ETag, which a change must send back
// as If-Match.
func readRoute(ctx context.Context, c *control.Client, name string) (control.RouteJSON, string, error) {
	var r control.RouteJSON
	resp, err := c.Get(ctx, "/admin/routes/"+url.PathEscape(name), nil, &r)
	if err != nil {
		return r, "", routeError(name, err)
	}
	if resp.ETag == "" {
		return r, "", fmt.Errorf("the admin API gave no version (ETag) for %s (is --admin a strangler admin listener of the same version?)", name)
	}
	return r, resp.ETag, nil
}

// patchRoute sends the change if the route's version is still etag, and
// explains a refusal. On a route that needs approvals the change may be
// a change request instead (202), which it returns.
func patchRoute(ctx context.Context, c *control.Client, name, etag string, body any) (control.RouteJSON, *control.RequestedJSON, error) {
	var r control.RouteJSON
	resp, err := c.Call(ctx, http.MethodPatch, "/admin/routes/"+url.PathEscape(name), nil, body, etag)
	if err == nil && resp.Status == http.StatusAccepted {
		var req control.RequestedJSON
		return r, &req, control.Decode(resp.Body, &req)
	}
	if err == nil {
		err = control.Decode(resp.Body, &r)
	}
	status := control.StatusOf(err)
	if status == http.StatusConflict && strings.Contains(err.Error(), "changed since you read it") {
		status = http.StatusPreconditionFailed // facades before 412 answered 409
	}
	switch status {
	case 0:
		return r, nil, err
	case http.StatusPreconditionFailed:
		now, _, rerr := readRoute(ctx, c, name)
		if rerr != nil {
			return r, nil, fmt.Errorf("the route changed since it was read; run the command again")
		}
		return r, nil, fmt.Errorf("the route changed since it was read (now %s); run the command again", routeState(now))
	case http.StatusUnprocessableEntity:
		// The API's message names the number that failed; the hint is
		// the CLI's spelling of its "pass force".
		msg, _ := strings.CutSuffix(err.Error(), "; pass force to flip anyway")
		return r, nil, fmt.Errorf("%s\nrun the command again with --force to flip anyway; the audit log records it as forced", msg)
	}
	return r, nil, routeError(name, err)
}

// routeError names the route in the API's 404.
func routeError(name string, err error) error {
	if control.StatusOf(err) == http.StatusNotFound {
		return fmt.Errorf("no route named %q (strangler routes list shows them)", name)
	}
	return err
}

func routesReport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes report", flag.ContinueOnError)
	setUsage(fs, `routes report [--json] [NAME]

Per route: requests and fallbacks over the last day, week and month (and
apart from them the confirmed missing: modern and legacy both answered
404 or 410, which holds nothing back), the last fallback, modern's share,
the shadow mismatch rate, the client versions still reaching legacy,
pending read repairs, the dual writes still owed to a backend, and the
verdict: whether the legacy path can be retired; then when it would be at the current trend of fallbacks, the
next stage the route could move to, and each gate or condition that
blocks it, with its number.`)
	client := adminFlags(fs, getenv)
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usageError{"routes report: name at most one route"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	var reports []control.RouteReport
	var resp control.Answer
	if len(rest) == 1 {
		var one control.RouteReport
		resp, err = c.Get(ctx, "/admin/routes/"+url.PathEscape(rest[0])+"/report", nil, &one)
		err = routeError(rest[0], err)
		reports = append(reports, one)
	} else {
		var all struct {
			Routes []control.RouteReport `json:"routes"`
		}
		resp, err = c.Get(ctx, "/admin/report", nil, &all)
		reports = all.Routes
	}
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	now := time.Now()
	for i, rep := range reports {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := writeReport(stdout, rep, now); err != nil {
			return err
		}
	}
	return nil
}

// writeReport lays one route's report out for a terminal.
func writeReport(w io.Writer, rep control.RouteReport, now time.Time) error {
	fmt.Fprintf(w, "%s (%s)\n", rep.Route, control.ModeText(domain.Mode(rep.Mode), rep.Percent))
	tw := newTable(w)
	fmt.Fprintln(tw, "  \tREQUESTS\tMODERN\tFALLBACKS\tCONFIRMED MISSING\tLEGACY ITSELF")
	for _, p := range rep.Periods {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.Period, human.Count(p.Requests), human.Count(p.Modern), human.Count(p.Fallbacks), human.Count(p.ConfirmedMissing), human.Count(p.Legacy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	last := "none in 30d"
	if rep.LastFallback != nil {
		last = fmtTime(*rep.LastFallback, now)
	}
	clients := "none"
	if len(rep.LegacyClients) > 0 {
		var parts []string
		for _, c := range rep.LegacyClients {
			parts = append(parts, fmt.Sprintf("%s (%s)", cell(c.Client, 60), human.Count(c.Requests)))
		}
		clients = strings.Join(parts, ", ")
	}
	tw = newTable(w)
	fmt.Fprintf(tw, "  last fallback:\t%s\n", last)
	fmt.Fprintf(tw, "  modern share (24h):\t%s\n", human.Share(rep.ModernShare))
	fmt.Fprintf(tw, "  mismatch rate (24h):\t%s\n", human.Share(rep.MismatchRate))
	fmt.Fprintf(tw, "  legacy clients (7d):\t%s\n", clients)
	fmt.Fprintf(tw, "  pending read repairs:\t%d\n", rep.PendingReadRepairs)
	if rep.OwedWrites > 0 {
		var to []string
		for _, b := range []string{"legacy", "modern"} {
			if n := rep.OwedTo[b]; n > 0 {
				to = append(to, fmt.Sprintf("%d to %s", n, b))
			}
		}
		fmt.Fprintf(tw, "  dual writes owed:\t%s\n", strings.Join(to, ", "))
	}
	if rep.Held != nil {
		fmt.Fprintf(tw, "  held by the guard:\tsince %s: %s\n", fmtTime(rep.Held.Since, now), rep.Held.Reason)
	}
	fmt.Fprintf(tw, "  verdict:\t%s\n", rep.Verdict)
	fmt.Fprintf(tw, "  outlook:\t%s\n", rep.Outlook.Summary)
	fmt.Fprintf(tw, "  next:\t%s\n", nextText(rep.Next))
	for _, b := range rep.Next.Blockers {
		fmt.Fprintf(tw, "  \tblocked by %s\n", b)
	}
	return tw.Flush()
}

// nextText names the report's next step: a flip, or retiring legacy.
func nextText(n control.NextStep) string {
	if n.Retire {
		return "retire the legacy path (the verdict decides)"
	}
	target := control.ModeText(domain.Mode(n.Mode), n.Percent)
	if n.Percent != nil && *n.Percent == 100 {
		target += " for all of the traffic"
	}
	if len(n.Blockers) == 0 {
		return target + ": nothing blocks it"
	}
	return target
}
