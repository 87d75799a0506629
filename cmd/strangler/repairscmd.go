package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"strangler/control"
	"strangler/domain"
	"strangler/internal/human"
	"strangler/internal/tty"
)

const repairsUsage = `usage: strangler repairs <command> [flags]

The repair queue holds the dual writes the secondary has not applied yet.
A dead one (the secondary refused it, or too many attempts failed) holds
back later writes to the same resource until an operator acts. So does a
sent one recovery keeps resending to a primary that does not answer.

commands:
  list [--state S] [--route R] [--limit N] [--before ID] [--json]
                            the queue, newest first; --before ID lists
                            the page after the one that ended with ID
  show ID [--body]          one write; --body adds its target, headers and
                            body, which may hold patient data: reading them
                            is recorded in the audit log
  retry ID --reason "…"     send it to the secondary again
  stop ID --reason "…"      stop resending a sent write to its primary: it
                            is unknown then, and later writes to its
                            resource go on
  discard ID --reason "…" [--yes]
                            give up on it (asks first on a terminal)
  retry|discard --route R --state dead|unknown --reason "…" [--dry-run] [--yes]
                            every such write of route R (500 a call), each
                            audited; --dry-run lists them and changes nothing

` + tokenHelp

// console is where a command asks a person to confirm: the terminal the
// command runs on, if it does.
type console struct {
	in          io.Reader
	interactive bool
}

// stdinConsole is the process's standard input, interactive when it is a
// terminal.
func stdinConsole() console {
	return console{in: os.Stdin, interactive: tty.Is(os.Stdin)}
}

// runRepairs runs `strangler repairs …`: the dual-write repair queue.
func runRepairs(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return repairsCommand(ctx, args, getenv, stdinConsole(), stdout, stderr)
}

func repairsCommand(ctx context.Context, args []string, getenv func(string) string, con console, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, repairsUsage)
		return usageError{"repairs: want list, show, retry, stop or discard"}
	}
	switch args[0] {
	case "list":
		return repairsList(ctx, args[1:], getenv, stdout, stderr)
	case "show":
		return repairsShow(ctx, args[1:], getenv, stdout, stderr)
	case "retry", "stop":
		return repairsAct(ctx, args[0], args[1:], getenv, con, stdout, stderr)
	case "discard":
		return repairsAct(ctx, "discard", args[1:], getenv, con, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, repairsUsage)
		return nil
	}
	fmt.Fprint(stderr, repairsUsage)
	return usageError{fmt.Sprintf("repairs: unknown command %q; want list, show, retry, stop or discard", args[0])}
}

func repairsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("repairs list", flag.ContinueOnError)
	setUsage(fs, "repairs list [--state S] [--route R] [--limit N] [--before ID] [--json]")
	client := adminFlags(fs, getenv)
	state := fs.String("state", "", "only writes in this `state`, one of "+fmt.Sprint(domain.States))
	route := fs.String("route", "", "only this `route`")
	limit := fs.Int("limit", 100, "at most `N` writes, newest first (1-1000)")
	before := fs.String("before", "", "only writes listed after the write `ID` (the next page)")
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usageError{fmt.Sprintf("repairs list: unexpected argument %q", rest[0])}
	case *limit < 1 || *limit > 1000:
		return usageError{"repairs list: --limit must be from 1 to 1000"}
	}
	if *state != "" {
		if _, err := domain.ParseState(*state); err != nil {
			return usageError{"repairs list: --state: " + err.Error()}
		}
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *state != "" {
		q.Set("state", *state)
	}
	if *route != "" {
		q.Set("route", *route)
	}
	if *before != "" {
		q.Set("before_id", *before)
	}
	var out struct {
		Repairs []control.RepairView `json:"repairs"`
	}
	resp, err := c.Get(ctx, "/admin/repairs", q, &out)
	if err != nil {
		return repairError(*before, err)
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	if len(out.Repairs) == 0 {
		fmt.Fprintln(stdout, "no repairs match")
		return nil
	}
	now := time.Now()
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tROUTE\tMETHOD\tRESOURCE\tSTATE\tATTEMPTS\tLAST ERROR\tAGE")
	for _, r := range out.Repairs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
			r.ID, r.Route, writeMethod(r), cell(r.Resource, 40), r.State, r.Attempts, cell(r.LastError, 60), human.Age(now.Sub(r.CreatedAt)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(out.Repairs) == *limit {
		fmt.Fprintf(stderr, "strangler: there may be more: add --before %s\n", out.Repairs[len(out.Repairs)-1].ID)
	}
	return nil
}

func repairsShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("repairs show", flag.ContinueOnError)
	setUsage(fs, `repairs show ID [--body] [--json]

Without --body: the write's route, method, resource, state and attempts.
With --body: also its target, headers and body, which may hold patient
data; reading them is recorded in the audit log with your token's name.`)
	client := adminFlags(fs, getenv)
	withBody := fs.Bool("body", false, "also show the target, headers and body (audited: they may hold patient data)")
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"repairs show: name one repair: strangler repairs show ID"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	var q url.Values
	if *withBody {
		q = url.Values{"body": {"1"}}
	}
	var r control.RepairView
	resp, err := c.Get(ctx, "/admin/repairs/"+url.PathEscape(rest[0]), q, &r)
	if err != nil {
		return repairError(rest[0], err)
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	writeRepair(stdout, r, time.Now())
	if *withBody {
		fmt.Fprintln(stderr, "strangler: reading this body was recorded in the audit log")
	}
	return nil
}

// writeRepair lays one repair out for a terminal, its body last.
func writeRepair(w io.Writer, r control.RepairView, now time.Time) {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", r.ID)
	fmt.Fprintf(tw, "route:\t%s\n", r.Route)
	fmt.Fprintf(tw, "write:\t%s %s\n", writeMethod(r), r.Resource)
	fmt.Fprintf(tw, "primary:\t%s (answered %d)\n", r.Primary, r.PrimaryStatus)
	fmt.Fprintf(tw, "state:\t%s\n", r.State)
	fmt.Fprintf(tw, "attempts:\t%d\n", r.Attempts)
	if r.LastError != "" {
		fmt.Fprintf(tw, "last error:\t%s\n", cell(r.LastError, 0))
	}
	if r.NextAttemptAt != nil {
		fmt.Fprintf(tw, "next attempt:\t%s\n", human.Time(*r.NextAttemptAt))
	}
	fmt.Fprintf(tw, "created:\t%s\n", fmtTime(r.CreatedAt, now))
	fmt.Fprintf(tw, "updated:\t%s\n", fmtTime(r.UpdatedAt, now))
	tw.Flush()
	if r.Target == "" && r.Body == nil && r.BodyBase64 == nil {
		return
	}
	fmt.Fprintf(w, "\n%s %s\n", r.Method, r.Target)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
	switch {
	case r.Body != nil:
		fmt.Fprintf(w, "\n%s\n", *r.Body)
	case r.BodyBase64 != nil:
		fmt.Fprintf(w, "\n(binary body, base64)\n%s\n", *r.BodyBase64)
	}
}

// repairsAct retries, stops or discards a repair (action is "retry",
// "stop" or "discard").
func repairsAct(ctx context.Context, action string, args []string, getenv func(string) string, con console, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("repairs "+action, flag.ContinueOnError)
	synopsis := `repairs retry ID --reason "…"

Sends a dead or unknown write to the secondary again. The reason goes
into the audit log with your token's name.`
	switch action {
	case "stop":
		synopsis = `repairs stop ID --reason "…"

Stops resending a sent write to its primary, which recovery does while
the primary does not answer: the write becomes unknown, to retry (if the
primary applied it) or discard, and later writes to the same resource
are no longer held back. The reason goes into the audit log.`
	case "discard":
		synopsis = `repairs discard ID --reason "…" [--yes]

Gives up on a write: the secondary never gets it, and later writes to the
same resource are no longer held back. On a terminal it asks first; off
one, --yes is required. The reason goes into the audit log.`
	}
	setUsage(fs, synopsis)
	client := adminFlags(fs, getenv)
	reason := new(string)
	reasonVar(fs, reason, "`text` saying why, for the audit log (required)")
	yes := new(bool)
	if action == "discard" {
		fs.BoolVar(yes, "yes", false, "do not ask for confirmation")
	}
	var bulk bulkFlags
	if action != "stop" {
		fs.StringVar(&bulk.route, "route", "", "act on every write of `route` in --state, not one by its id")
		fs.StringVar(&bulk.state, "state", "", "with --route: the `state` of the writes, dead or unknown")
		fs.BoolVar(&bulk.dryRun, "dry-run", false, "with --route: list the writes it would act on, and change nothing")
	}
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if bulk.route != "" || bulk.state != "" || bulk.dryRun {
		if len(rest) != 0 {
			return usageError{fmt.Sprintf("repairs %s: name one repair by its id, or --route with --state, not both", action)}
		}
		c, err := client()
		if err != nil {
			return err
		}
		return repairsBulk(ctx, c, action, bulk, *reason, *yes, con, stdout, stderr)
	}
	switch {
	case len(rest) != 1:
		return usageError{fmt.Sprintf("repairs %s: name one repair: strangler repairs %s ID --reason \"…\"", action, action)}
	case strings.TrimSpace(*reason) == "":
		return usageError{fmt.Sprintf("repairs %s: --reason is required: it goes into the audit log, with your token's name", action)}
	}
	c, err := client()
	if err != nil {
		return err
	}
	id := rest[0]
	path := "/admin/repairs/" + url.PathEscape(id)
	method := http.MethodDelete
	if action != "discard" {
		method, path = http.MethodPost, path+"/"+action
	} else if !*yes {
		if err := confirmDiscard(ctx, c, id, con, stderr); err != nil {
			return err
		}
	}
	var r control.RepairView
	if _, err := c.Send(ctx, method, path, map[string]string{"reason": *reason}, "", &r); err != nil {
		return repairError(id, err)
	}
	fmt.Fprintf(stdout, "repair %s (%s %s %s) is %s now\n", r.ID, r.Route, writeMethod(r), r.Resource, r.State)
	return nil
}

// bulkFlags select every write of a route in a state.
type bulkFlags struct {
	route, state string
	dryRun       bool
}

// repairsBulk retries or discards every write of a route in a state
// (POST /admin/repairs/retry or /discard). A discard asks first on a
// terminal, showing how many a dry run found; off one it needs --yes.
func repairsBulk(ctx context.Context, c *control.Client, action string, b bulkFlags, reason string, yes bool, con console, stdout, stderr io.Writer) error {
	switch {
	case b.route == "" || b.state == "":
		return usageError{fmt.Sprintf("repairs %s: --route and --state go together: strangler repairs %s --route R --state dead --reason \"…\"", action, action)}
	case !b.dryRun && strings.TrimSpace(reason) == "":
		return usageError{fmt.Sprintf("repairs %s: --reason is required: it goes into the audit log, with your token's name", action)}
	}
	path := "/admin/repairs/" + action
	send := func(dryRun bool) (control.BulkJSON, error) {
		var out control.BulkJSON
		_, err := c.Send(ctx, http.MethodPost, path, map[string]any{"route": b.route, "state": b.state, "reason": reason, "dry_run": dryRun}, "", &out)
		return out, err
	}
	if b.dryRun || (action == "discard" && !yes) {
		found, err := send(true)
		if err != nil {
			return err
		}
		more := ""
		if found.More {
			more = " (and more: one call takes 500)"
		}
		if b.dryRun {
			fmt.Fprintf(stdout, "%d %s writes of %s%s would be %s: %s\n", len(found.Matched), b.state, b.route, more, pastTense(action), strings.Join(found.Matched, " "))
			return nil
		}
		if !con.interactive {
			return usageError{"repairs discard: not on a terminal, so nobody can confirm: add --yes (or look first with --dry-run)"}
		}
		fmt.Fprintf(stderr, "Discard %d %s writes of %s%s? The secondary will never get them. [y/N] ", len(found.Matched), b.state, b.route, more)
		answer, err := bufio.NewReader(con.in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("repairs discard: not confirmed; nothing changed")
		}
	}
	out, err := send(false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d of %d %s writes of %s %s, each audited\n", out.Done, len(out.Matched), b.state, b.route, pastTense(action))
	for _, r := range out.Refused {
		fmt.Fprintf(stdout, "  %s left as it was: %s\n", r.ID, r.Why)
	}
	if out.More {
		fmt.Fprintf(stdout, "more are left: run the command again\n")
	}
	return nil
}

// pastTense is what an action did to a write: retried, discarded.
func pastTense(action string) string {
	if action == "retry" {
		return "retried"
	}
	return action + "ed"
}

// confirmDiscard shows the write about to be discarded and asks the person
// at the terminal; off a terminal nobody can answer, so --yes is needed.
func confirmDiscard(ctx context.Context, c *control.Client, id string, con console, stderr io.Writer) error {
	if !con.interactive {
		return usageError{"repairs discard: not on a terminal, so nobody can confirm: add --yes"}
	}
	var r control.RepairView
	if _, err := c.Get(ctx, "/admin/repairs/"+url.PathEscape(id), nil, &r); err != nil {
		return repairError(id, err)
	}
	fmt.Fprintf(stderr, "Discard %s %s on %s (%s, %d attempts)? The secondary will never get this write. [y/N] ",
		writeMethod(r), r.Resource, r.Route, r.State, r.Attempts)
	answer, err := bufio.NewReader(con.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("repairs discard: not confirmed; nothing changed")
}

// repairError names the repair in the API's 404.
func repairError(id string, err error) error {
	if control.StatusOf(err) == http.StatusNotFound {
		return fmt.Errorf("no repair with id %q (strangler repairs list shows them)", id)
	}
	return err
}

// writeMethod is how a terminal shows the method of write r: the method
// it was sent with, and, when the backends read it as another (a POST
// with X-HTTP-Method-Override or _method), that one: an operator retrying
// or discarding "POST" must see that it deletes.
func writeMethod(r control.RepairView) string {
	switch {
	case r.Method != http.MethodPost || r.StandsFor == r.Method:
		return r.Method
	case r.StandsFor == "":
		return r.Method + " (as several methods, or not known)"
	}
	return r.Method + " (as " + r.StandsFor + ")"
}
