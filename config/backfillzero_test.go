package config_test

import (
	"fmt"
	"strings"
	"testing"

	"strangler/config/configfile"
)

// A 0 written for a backfill setting that 0 leaves at its default is
// warned of at its line, as the facade's are: an operator writing
// retry: {max_attempts: 0} for no retries, api.timeout: 0s for no limit
// or stop_after_unanswered: 0 for never got 5 attempts, 10 s and 10 rows
// without a word.
func TestABackfillZeroThatMeansTheDefaultIsWarnedOf(t *testing.T) {
	y := hostileBackends + `store: "sqlite:/tmp/redteam21.db"
store_encryption: { keys: ["0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"] }
backfill:
  source: "mysql://u@db:3306/h"
  target: "postgres://u@db:5432/m"
  batch: 0
  concurrency: 0
  api: { url: "http://modern:9090", timeout: 0s }
  wait_until: { path: /jobs, field: pending, equals: "0", every: 0s, timeout: 0s }
  tables:
    - name: p
      from: P
      key: ID
      target_api:
        method: PUT
        path: "/p/{ID}"
        body: { legacy_id: ID }
        concurrency: 0
        retry: { max_attempts: 0, backoff: 0s, max_backoff: 0s }
        stop_after_unanswered: 0
    - { name: q, from: Q, key: ID, to: q, target_key: id, columns: { id: ID } }
`
	c, err := configfile.Parse("c.yaml", []byte(y), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		if i := strings.Index(w.Msg, ", not none"); i > 0 {
			got = append(got, fmt.Sprintf("%d %s %s", w.Line, w.Field, w.Msg[:i]))
		}
	}
	base := strings.Count(hostileBackends, "\n")
	want := []string{
		fmt.Sprintf("%d backfill.batch is 0, which here means the default, 5000", base+6),
		fmt.Sprintf("%d backfill.concurrency is 0, which here means the default, 2", base+7),
		fmt.Sprintf("%d backfill.api.timeout is 0, which here means the default, 10s", base+8),
		fmt.Sprintf("%d backfill.wait_until.every is 0, which here means the default, 5s", base+9),
		fmt.Sprintf("%d backfill.wait_until.timeout is 0, which here means the default, 30m0s", base+9),
		fmt.Sprintf("%d backfill.tables[0].target_api.concurrency is 0, which here means the default, 4", base+18),
		fmt.Sprintf("%d backfill.tables[0].target_api.retry.max_attempts is 0, which here means the default, 5", base+19),
		fmt.Sprintf("%d backfill.tables[0].target_api.retry.backoff is 0, which here means the default, 500ms", base+19),
		fmt.Sprintf("%d backfill.tables[0].target_api.retry.max_backoff is 0, which here means the default, 30s", base+19),
		fmt.Sprintf("%d backfill.tables[0].target_api.stop_after_unanswered is 0, which here means the default, 10", base+20),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a := c.Backfill.Tables[0].TargetAPI; c.Backfill.Batch != 5000 || a.Retry.MaxAttempts != 5 || a.StopAfterUnanswered != 10 {
		t.Errorf("batch %d, max_attempts %d, stop_after_unanswered %d: want the defaults", c.Backfill.Batch, a.Retry.MaxAttempts, a.StopAfterUnanswered)
	}
}
