package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"strangler/control"
	"strangler/internal/human"
)

func routesForceToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes force-token", flag.ContinueOnError)
	setUsage(fs, `routes force-token NAME --backend legacy|modern [--ttl 1h] [--reason "…"] [--json]

Issues a value for the X-Strangler-Force request header: a request on the
route that carries it goes to that backend, whatever the route's mode and
split, with no fallback, until the value expires (--ttl, 1m to 24h). For
testers who must reach one side in production without moving clients.
The value is signed with the configuration's force_token_key, printed
once, and audited by its id (never the value). Forced requests count
nowhere in the gates, the guard or the report. Dual-write routes take no
force tokens.`)
	client := adminFlags(fs, getenv)
	var body control.ForceTokenRequest
	fs.StringVar((*string)(&body.Backend), "backend", "", "`backend` the requests go to: legacy or modern (required)")
	fs.StringVar(&body.TTL, "ttl", "1h", "how long the value is good for, like `30m` (1m to 24h)")
	reasonVar(fs, &body.Reason, "`text` saying why, for the audit log")
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError{"routes force-token: name one route: strangler routes force-token NAME --backend modern"}
	case body.Backend != "legacy" && body.Backend != "modern":
		return usageError{"routes force-token: --backend must be legacy or modern"}
	}
	c, err := client()
	if err != nil {
		return err
	}
	var out control.ForceTokenJSON
	resp, err := c.Send(ctx, "POST", "/admin/routes/"+url.PathEscape(rest[0])+"/force-token", body, "", &out)
	if err != nil {
		return routeError(rest[0], err)
	}
	if *asJSON {
		_, err := stdout.Write(resp.Body)
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", out.Header, out.Value)
	fmt.Fprintf(stdout, "\nRequests on %s that carry this header go to %s until %s (%s), id %s.\n",
		out.Route, out.Backend, human.Time(out.ExpiresAt), human.Age(time.Duration(out.TTLSeconds)*time.Second), out.ID)
	fmt.Fprintln(stdout, "Keep it to yourself: anyone who has it can do the same until then.")
	return nil
}
