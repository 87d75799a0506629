package control

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"strangler/config"
	"strangler/internal/human"
)

// expiryNotice is how long before a token expires the log and /readyz
// start saying so.
const expiryNotice = 7 * 24 * time.Hour

// expiryWarning is a token that expires soon or has expired.
type expiryWarning struct {
	token   config.Token
	expired bool
	// text says so in a sentence for /readyz, which answers anyone who
	// reaches the admin listener: it leaves the token's name to the log.
	text string
}

// expiryWarnings lists the tokens that expire within expiryNotice of now
// or have expired.
func (t *Tokens) expiryWarnings(now time.Time) []expiryWarning {
	list := t.list.Load()
	if list == nil {
		return nil
	}
	var out []expiryWarning
	for _, tok := range *list {
		end := tok.ExpiresAt()
		switch {
		case end.IsZero() || end.Sub(now) > expiryNotice:
		case tok.Expired(now):
			out = append(out, expiryWarning{tok, true, fmt.Sprintf("an admin token expired on %s and is refused (the log names it)", tok.Expires)})
		default:
			out = append(out, expiryWarning{tok, false, fmt.Sprintf("an admin token expires at the end of %s (UTC), in %s; renew it (the log names it)",
				tok.Expires, human.Age(end.Sub(now)))})
		}
	}
	return out
}

// expiryCheck is how often WarnExpiring looks again, so that a token
// added by a reload is warned about within the hour.
const expiryCheck = time.Hour

// WarnExpiring logs a warning for each token that expires within 7 days
// or has expired: at once, then once a day for each, until ctx ends.
func (t *Tokens) WarnExpiring(ctx context.Context, log *slog.Logger, now func() time.Time) error {
	// When each token was last warned about, by name, expiry and whether
	// it has expired: a new expiry date, or the day it passes, is news.
	warned := map[string]time.Time{}
	tick := time.NewTicker(expiryCheck)
	defer tick.Stop()
	for {
		at := now()
		for _, w := range t.expiryWarnings(at) {
			key := fmt.Sprint(w.token.Name, w.token.Expires, w.expired)
			if last, ok := warned[key]; ok && at.Sub(last) < 24*time.Hour {
				continue
			}
			warned[key] = at
			msg := "admin token expires soon; renew it"
			if w.expired {
				msg = "admin token expired; it is refused"
			}
			log.Warn(msg, "token_name", w.token.Name, "expires", w.token.Expires.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
