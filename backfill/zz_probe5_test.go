package backfill_test

import (
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

func TestProbeTextKeyTz(t *testing.T) {
	for _, typ := range []string{"timestamptz", "timestamp", "date", "time", "timetz", "numeric", "interval", "inet", "jsonb", "boolean", "real", "money", "bigint", "citext"} {
		t.Run(typ, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			if typ == "citext" {
				w.pg(t, "CREATE EXTENSION IF NOT EXISTS citext")
			}
			w.mapTable(t, "CREATE TABLE K (Code VARCHAR(40) PRIMARY KEY, V INT)",
				"CREATE TABLE kk (code "+typ+" UNIQUE, v int)",
				config.BackfillTable{Name: "k", From: "K", Key: "Code", To: "kk", TargetKey: "code", Columns: cols("Code=code", "V=v")})
			vals := map[string]string{"timestamptz": "'2024-03-10 10:00:00'", "timestamp": "'2024-03-10 10:00:00'", "date": "'2024-03-10'", "time": "'10:00:00'", "timetz": "'10:00:00+00'",
				"numeric": "'1.5'", "interval": "'1 day'", "inet": "'10.0.0.1'", "jsonb": "'{\"a\":1}'", "boolean": "'true'", "real": "'1.5'", "money": "'1.50'", "bigint": "'15'", "citext": "'Ab'"}
			w.exec(t, "INSERT INTO K VALUES ("+vals[typ]+", 1)")
			tr := w.run(t, backfill.Options{}).Tables[0]
			t.Logf("%s: inserted %d failed %d %q", typ, tr.Inserted, tr.Failed, failureReasons(tr))
		})
	}
}
