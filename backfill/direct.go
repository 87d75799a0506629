package backfill

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The direct path: a batch of new rows goes straight into the target with
// one COPY in PostgreSQL's text format, which parses each value with its
// column's own input function, as the staged path's casts do. It skips the
// staging table and the upsert, about a third of the target's work, but it
// cannot look values up, check keys, count rows already present, or set a
// bad row aside: any row the target refuses (a key already there
// included) fails the whole COPY. So it is tried only where that is
// unlikely and keys are exact, and a failed attempt is rolled back to a
// savepoint and the batch goes the staged way.

// directPause is how many batches go the staged way after a direct COPY
// failed, before another is tried.
const directPause = 8

// directCopy decides, per writer, whether the next batch tries the direct
// path.
type directCopy struct {
	// sql is the COPY statement; empty when the table has lookups.
	sql string
	// pause counts batches left before trying again.
	pause int
}

func newDirectCopy(t *table, try bool) directCopy {
	if !t.exactKey {
		return directCopy{}
	}
	for _, c := range t.cols {
		if c.lookup != nil {
			return directCopy{}
		}
	}
	if !try {
		return directCopy{pause: directPause}
	}
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = pgIdent(c.name)
	}
	return directCopy{sql: "COPY " + t.target + " (" + strings.Join(cols, ", ") + ") FROM STDIN"}
}

func (d *directCopy) worthTrying() bool {
	if d.sql == "" {
		return false
	}
	if d.pause > 0 {
		d.pause--
		return false
	}
	return true
}

// staged learns from a batch written the staged way: one that only
// inserted rows suggests the rows ahead are new too.
func (d *directCopy) staged(o outcome, rows int) {
	if o.present > 0 || o.updated > 0 || len(o.failures) > 0 || o.inserted < int64(rows) {
		d.pause = max(d.pause, directPause)
	}
}

// tryDirect copies the batch's rows with one COPY inside a savepoint. On
// a row error it rolls back and reports ok false, leaving the batch
// untouched for the staged path.
func (bw *batchWrite) tryDirect(ctx context.Context, tx pgx.Tx) (ok bool, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	src := &copyText{bw: bw}
	tag, err := sp.Conn().PgConn().CopyFrom(ctx, src, bw.w.direct.sql)
	if err == nil {
		err = sp.Commit(ctx)
	}
	if err != nil {
		sp.Rollback(ctx)
		if rowError(err) {
			bw.w.direct.pause = directPause
			return false, nil
		}
		return false, err
	}
	bw.out.inserted = tag.RowsAffected()
	bw.out.failures = src.refused
	return true, nil
}

// copyText streams a batch in COPY's text format a row at a time, so the
// batch is never held twice; rows refused before staging (see refuse) are
// left out and set aside as failures.
type copyText struct {
	bw      *batchWrite
	next    int
	buf     bytes.Buffer
	refused []failure
}

func (c *copyText) Read(p []byte) (int, error) {
	for c.buf.Len() == 0 {
		if c.next == len(c.bw.b.rows) {
			return 0, io.EOF
		}
		r := c.bw.b.rows[c.next]
		c.next++
		t := c.bw.w.t
		if reason := t.refuse(r); reason != "" {
			c.refused = append(c.refused, t.failed(r, reason))
			continue
		}
		for j, v := range r.vals {
			if j > 0 {
				c.buf.WriteByte('\t')
			}
			appendCopyText(&c.buf, t.cols[j].encode(v), t.cols[j].isBytes())
		}
		c.buf.WriteByte('\n')
	}
	return c.buf.Read(p)
}

// appendCopyText writes a value in COPY's text format: \N for NULL,
// backslash escapes for the characters that delimit rows and columns,
// bytea in hex.
func appendCopyText(buf *bytes.Buffer, v []byte, binary bool) {
	switch {
	case v == nil:
		buf.WriteString(`\N`)
		return
	case binary:
		buf.WriteString(`\\x`)
		buf.Grow(hex.EncodedLen(len(v)))
		buf.Write(hex.AppendEncode(buf.AvailableBuffer(), v))
		return
	}
	start := 0
	for i, c := range v {
		var esc string
		switch c {
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		default:
			continue
		}
		buf.Write(v[start:i])
		buf.WriteString(esc)
		start = i + 1
	}
	buf.Write(v[start:])
}
