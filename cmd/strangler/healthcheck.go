package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"strangler/internal/human"
)

// runHealthcheck asks a facade's admin listener for /readyz and succeeds
// only on 200, a redirect not followed: a container healthcheck for an image that has no shell or
// HTTP client (compose's `healthcheck`, Docker's HEALTHCHECK). It needs
// no token: /readyz is open.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	def := getenv("STRANGLER_ADMIN")
	if def == "" {
		def = defaultAdmin
	}
	admin := fs.String("admin", def, "the admin listener's `URL` (env STRANGLER_ADMIN)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("healthcheck: unexpected argument %q", fs.Arg(0))}
	case *timeout <= 0:
		// It would report a healthy facade unhealthy, every time.
		return usageError{fmt.Sprintf("healthcheck: --timeout %s: want a positive duration, like 2s", *timeout)}
	}
	target, err := readyzURL(*admin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// The admin listener is local: no proxy from the environment. A
	// redirect is not followed: it is an answer other than 200, so not
	// ready. Followed, whatever answered at --admin sent the check to
	// any address, and a 200 there passed it.
	client := &http.Client{Transport: &http.Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, here
		}
		return fmt.Errorf("healthcheck: not ready: %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// The answer is printed: whatever answers at --admin must not
	// reprogram the terminal (or a log viewer) through it.
	answer := human.Printable(strings.TrimSpace(string(body)), true)
	if resp.StatusCode != http.StatusOK {
		if loc := resp.Header.Get("Location"); loc != "" {
			answer = strings.TrimSpace(answer + " (a redirect to " + human.Printable(loc, true) + ", not followed)")
		}
		return fmt.Errorf("healthcheck: not ready: %s answered %d %s", target, resp.StatusCode, answer)
	}
	fmt.Fprintln(stdout, answer)
	return nil
}

// readyzURL is the /readyz of the admin listener at admin, a URL or a
// bare host:port taken as http.
func readyzURL(admin string) (string, error) {
	u, err := adminURL(admin)
	if err != nil {
		return "", usageError{"healthcheck: " + err.Error()}
	}
	return u.String() + "/readyz", nil
}
