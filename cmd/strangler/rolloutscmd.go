package main

// strangler routes ramp, changes, approve and reject: scheduled ramps and
// change requests through the admin API.

import (
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

// rampBody is the body of PATCH /admin/routes/{name} with a ramp.
type rampBody struct {
	Ramp   rampPlan `json:"ramp"`
	Reason string   `json:"reason"`
}

type rampPlan struct {
	Action string    `json:"action,omitempty"`
	Mode   string    `json:"mode,omitempty"`
	Steps  []float64 `json:"steps,omitempty"`
	Every  string    `json:"every,omitempty"`
}

func routesRamp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes ramp", flag.ContinueOnError)
	setUsage(fs, `routes ramp NAME --steps 1,5,25,50,100 --every 30m [--mode fallback|modern] --reason "…"
       strangler routes ramp NAME --pause|--resume|--cancel --reason "…"
       strangler routes ramp NAME

Ramps a route's share to modern up step by step: the first step now, the
next ones every --every, each a flip audited as actor "ramp" and taken
only while the route's gates pass (until then the ramp waits and says
why). The guard's rollback steps it back one step and holds it; a flip by
hand pauses it. --resume goes on from where the route is then, the next
step --every later; --cancel leaves the route where it is. On a route with
approvals a new ramp is a change request, approved once for all its
steps. Without flags it shows the route's ramp.`)
	client := adminFlags(fs, getenv)
	var plan rampPlan
	var reason string
	fs.Func("steps", "the `percents` sent to modern, rising, such as 1,5,25,50,100", func(s string) error {
		steps, err := control.ParseSteps(s)
		plan.Steps = steps
		return err
	})
	fs.Func("every", "how long each step lasts, such as 30m, 2h or 1d (`duration`)", func(s string) error {
		var d config.Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		plan.Every = s
		return nil
	})
	fs.Func("mode", "the `mode` of the steps: fallback or modern (default: the route's, if it is one of them)", func(s string) error {
		var m domain.Mode
		if err := m.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		plan.Mode = s
		return nil
	})
	pause := fs.Bool("pause", false, "pause the ramp under way")
	resume := fs.Bool("resume", false, "resume a paused or held ramp from where the route is")
	cancel := fs.Bool("cancel", false, "cancel the ramp under way; the route stays where it is")
	reasonVar(fs, &reason, "`text` saying why, for the audit log")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"routes ramp: name one route: strangler routes ramp NAME --steps 1,5,25,50,100 --every 30m --reason \"…\""}
	}
	name := rest[0]
	actions := 0
	for action, on := range map[string]bool{"pause": *pause, "resume": *resume, "cancel": *cancel} {
		if on {
			plan.Action = action
			actions++
		}
	}
	starting := plan.Steps != nil || plan.Every != "" || plan.Mode != ""
	switch {
	case actions > 1:
		return usageError{"routes ramp: give one of --pause, --resume and --cancel"}
	case actions == 1 && starting:
		return usageError{"routes ramp: --" + plan.Action + " takes no --steps, --every or --mode"}
	case actions == 0 && !starting:
		if reason != "" {
			return usageError{"routes ramp: say what to do: --steps and --every, or --pause, --resume or --cancel"}
		}
		c, err := client()
		if err != nil {
			return err
		}
		return showRamp(ctx, c, name, stdout)
	case actions == 0 && (plan.Steps == nil || plan.Every == ""):
		return usageError{"routes ramp: a ramp needs --steps and --every, such as --steps 1,5,25,50,100 --every 30m"}
	case strings.TrimSpace(reason) == "":
		return usageError{"routes ramp: --reason is required: it goes into the audit log, with your token's name"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	_, etag, err := readRoute(ctx, c, name)
	if err != nil {
		return err
	}
	after, req, err := patchRoute(ctx, c, name, etag, rampBody{Ramp: plan, Reason: reason})
	switch {
	case err != nil:
		return err
	case req != nil:
		fmt.Fprintln(stdout, req.Message)
		return nil
	case after.Ramp == nil:
		return fmt.Errorf("the admin API's answer shows no ramp of %s (is --admin a strangler admin listener of the same version?)", name)
	}
	switch plan.Action {
	case "":
		fmt.Fprintf(stdout, "%s: ramp started %s; the first step is due now\n", name, after.Ramp.PlanText())
	default:
		fmt.Fprintf(stdout, "%s: ramp %s\n", name, after.Ramp.ProgressText())
	}
	return nil
}

// showRamp prints a route's ramp.
func showRamp(ctx context.Context, c *control.Client, name string, stdout io.Writer) error {
	r, _, err := readRoute(ctx, c, name)
	if err != nil {
		return err
	}
	if r.Ramp == nil {
		fmt.Fprintf(stdout, "%s has no ramp (%s)\n", name, routeState(r))
		return nil
	}
	now, rp := time.Now(), r.Ramp
	fmt.Fprintf(stdout, "%s: ramp %s\n", name, rp.PlanText())
	tw := newTable(stdout)
	fmt.Fprintf(tw, "  state:\t%s\n", rp.ProgressText())
	fmt.Fprintf(tw, "  route now:\t%s\n", routeState(r))
	if rp.Note != "" {
		fmt.Fprintf(tw, "  note:\t%s\n", cell(rp.Note, 0))
	}
	if rp.WaitingSince != nil {
		fmt.Fprintf(tw, "  waiting since:\t%s\n", fmtTime(*rp.WaitingSince, now))
	}
	started := rp.StartedBy
	if rp.ApprovedBy != "" {
		started += ", approved by " + rp.ApprovedBy
	}
	fmt.Fprintf(tw, "  started:\t%s by %s: %s\n", fmtTime(rp.StartedAt, now), started, cell(rp.Reason, 0))
	return tw.Flush()
}

func routesChanges(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes changes", flag.ContinueOnError)
	setUsage(fs, `routes changes [--all] [--route NAME] [--json]

Change requests: flips, clears and ramps that move a route with approvals
forward, waiting up to 24 hours for other token names to approve them
(strangler routes approve ID). --all lists decided ones too.`)
	client := adminFlags(fs, getenv)
	all := fs.Bool("all", false, "list applied, rejected, expired and stale requests too")
	route := fs.String("route", "", "only the requests of route `NAME`")
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("routes changes: unexpected argument %q", rest[0])}
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *all {
		q.Set("state", "all")
	}
	if *route != "" {
		q.Set("route", *route)
	}
	var out struct {
		Changes []control.ChangeJSON `json:"changes"`
	}
	resp, err := c.Get(ctx, "/admin/changes", q, &out)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	if len(out.Changes) == 0 {
		fmt.Fprintln(stdout, "no change requests")
		return nil
	}
	now := time.Now()
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tROUTE\tCHANGE\tREQUESTED BY\tAPPROVALS\tEXPIRES\tSTATE\tREASON")
	for _, ch := range out.Changes {
		state := ch.State
		if ch.DecidedBy != "" {
			state += " by " + ch.DecidedBy
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s, %s ago\t%d of %d\t%s\t%s\t%s\n",
			ch.ID, ch.Route, cell(ch.Summary, 60), ch.RequestedBy, human.Age(now.Sub(ch.RequestedAt)),
			len(ch.ApprovedBy), ch.ApprovalsNeeded, human.Minute(ch.ExpiresAt), state, cell(ch.Reason, 40))
	}
	return tw.Flush()
}

func routesDecide(ctx context.Context, how string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes "+how, flag.ContinueOnError)
	if how == "approve" {
		setUsage(fs, `routes approve ID [--reason "…"]

Approves change request ID (strangler routes changes lists them), which
another token name made: your own needs someone else's. The last approval
it needs applies it, audited as the requester's change, approved by you.`)
	} else {
		setUsage(fs, `routes reject ID --reason "…"

Rejects change request ID; rejecting your own withdraws it.`)
	}
	client := adminFlags(fs, getenv)
	reason := new(string)
	reasonVar(fs, reason, "`text` saying why, for the audit log (required to reject)")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{fmt.Sprintf("routes %s: name one change request: strangler routes %s ID", how, how)}
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || id < 1 {
		return usageError{fmt.Sprintf("routes %s: %q is not a change request's id (strangler routes changes lists them)", how, rest[0])}
	}
	if how == "reject" && strings.TrimSpace(*reason) == "" {
		return usageError{"routes reject: --reason is required: it goes into the audit log, with your token's name"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	var out control.DecidedJSON
	if _, err := c.Send(ctx, http.MethodPost, fmt.Sprintf("/admin/changes/%d/%s", id, how), map[string]string{"reason": *reason}, "", &out); err != nil {
		return err
	}
	ch := out.ChangeRequest
	switch ch.State {
	case "applied":
		now := ch.Route
		if r := out.Route; r != nil {
			now = routeState(*r)
			if r.Ramp != nil && ch.Kind == "ramp" {
				now = "ramps " + r.Ramp.PlanText() + ", the first step now"
			}
		}
		fmt.Fprintf(stdout, "change request %d approved and applied: %s: %s\n", id, ch.Route, now)
	case "rejected":
		fmt.Fprintf(stdout, "change request %d (%s's %s) rejected\n", id, ch.RequestedBy, ch.Summary)
	default:
		fmt.Fprintf(stdout, "change request %d approved by %s; it waits for %d more\n", id, strings.Join(ch.ApprovedBy, ", "), ch.ApprovalsNeeded-len(ch.ApprovedBy))
	}
	return nil
}
