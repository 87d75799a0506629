package store

import (
	"context"
	"database/sql/driver"
	"errors"
)

// maxCachedStatements bounds the statements one SQLite connection keeps
// prepared: the store's statements are a fixed set, and a query built at
// run time past the bound is simply prepared each time.
const maxCachedStatements = 256

// cachingConnector opens SQLite connections that keep the statements they
// execute prepared. The driver parses and plans a statement on every Exec
// with its text: for a dual write's journal entries that was more CPU than
// the writes themselves (28% of the facade's CPU in a profile of
// dual-write under load). A query whose statement is still being read
// (the same query nested in its own rows) is prepared afresh.
type cachingConnector struct {
	dsn string
	// file is the file dsn opens, shared by every connection.
	file *storeFile
	drv  driver.Driver
	// gate keeps callers out until the schema is current; nil never does.
	gate *schemaGate
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.gate != nil && !c.gate.pass(ctx) {
		return nil, c.gate.refusal()
	}
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	c.file.connected()
	return &cachingConn{Conn: conn, stmts: map[string]driver.Stmt{}, queries: map[string]*cachedQuery{}, file: c.file, gate: c.gate}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// cachingConn is one SQLite connection with its prepared statements.
// database/sql uses a connection from one goroutine at a time.
type cachingConn struct {
	driver.Conn
	stmts   map[string]driver.Stmt
	queries map[string]*cachedQuery
	// file is what each write transaction checks is still there.
	file *storeFile
	gate *schemaGate
	// begin, commit and rollbackStmt are the transaction's own kept
	// statements; nil until first used.
	begin, commit, rollbackStmt driver.Stmt
	// steady is set while a write transaction begun with a context that
	// cannot end is open (see statementContext).
	steady bool
}

// statementContext is what a statement given ctx runs under. Inside a
// write transaction begun with a context that cannot end (a batch's:
// one caller giving up must not roll back the others' writes, see
// batcher.inTx), a statement cannot end with its caller's context
// either: the transaction took the write lock at its BEGIN IMMEDIATE, so
// its statements wait for nothing that a context would cut short, and
// for a context that can end the driver starts a goroutine per statement
// to watch it (with the deadlines the request path sets, 27k of the 665k
// instructions a dual write's journal cost when writes share commits).
func (c *cachingConn) statementContext(ctx context.Context) context.Context {
	if c.steady && ctx.Done() != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// cachedQuery is a prepared query; busy while its rows are open.
type cachedQuery struct {
	st   driver.Stmt
	busy bool
}

var errNoContext = errors.New("store: the SQLite driver lacks a context method")

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ctx = c.statementContext(ctx)
	st, ok := c.stmts[query]
	if !ok {
		prep, isPrep := c.Conn.(driver.ConnPrepareContext)
		exec, isExec := c.Conn.(driver.ExecerContext)
		if !isPrep || !isExec {
			return nil, errNoContext
		}
		if len(c.stmts) >= maxCachedStatements {
			return exec.ExecContext(ctx, query, args)
		}
		var err error
		if st, err = prep.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		c.stmts[query] = st
	}
	return st.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ctx = c.statementContext(ctx)
	cq, ok := c.queries[query]
	if !ok && len(c.queries) < maxCachedStatements {
		prep, isPrep := c.Conn.(driver.ConnPrepareContext)
		if !isPrep {
			return nil, errNoContext
		}
		st, err := prep.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		cq = &cachedQuery{st: st}
		c.queries[query] = cq
	}
	if cq == nil || cq.busy {
		q, isQueryer := c.Conn.(driver.QueryerContext)
		if !isQueryer {
			return nil, errNoContext
		}
		return q.QueryContext(ctx, query, args)
	}
	rows, err := cq.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cq.busy = true
	return &cachedRows{Rows: rows, q: cq}, nil
}

// cachedRows frees its query's statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	q *cachedQuery
}

func (r *cachedRows) Close() error {
	r.q.busy = false
	return r.Rows.Close()
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	p, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return nil, errNoContext
	}
	return p.PrepareContext(ctx, query)
}

// BeginTx begins a transaction with a kept prepared BEGIN IMMEDIATE
// (taking the write lock up front: see openSQLite), which Commit and
// Rollback end with kept prepared statements too: the driver prepared
// and finalized each of the three every time, 5% of the CPU of a dual
// write's journal entries. A read-only one goes to the driver.
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		return nil, errNoContext
	}
	if err := c.file.check(ctx, c.Conn); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		return b.BeginTx(ctx, opts)
	}
	if err := c.control(ctx, &c.begin, "BEGIN IMMEDIATE"); err != nil {
		// A BEGIN that took effect before ctx ended still fails here
		// (the driver reports ctx's error): end it, or the next BEGIN
		// finds a transaction open. Outside one, ROLLBACK is a no-op
		// error.
		c.rollback()
		return nil, err
	}
	c.steady = ctx.Done() == nil
	return &cachedTx{c: c, ctx: ctx}, nil
}

// rollback ends the connection's transaction, if one is open.
func (c *cachingConn) rollback() error {
	c.steady = false
	return c.control(context.Background(), &c.rollbackStmt, "ROLLBACK")
}

// control runs a transaction's BEGIN, COMMIT or ROLLBACK from *st,
// preparing it into *st the first time.
func (c *cachingConn) control(ctx context.Context, st *driver.Stmt, query string) error {
	if *st == nil {
		prep, ok := c.Conn.(driver.ConnPrepareContext)
		if !ok {
			return errNoContext
		}
		var err error
		if *st, err = prep.PrepareContext(ctx, query); err != nil {
			return err
		}
	}
	_, err := (*st).(driver.StmtExecContext).ExecContext(ctx, nil)
	return err
}

// cachedTx is a transaction cachingConn.BeginTx began.
type cachedTx struct {
	c *cachingConn
	// ctx is BeginTx's, which database/sql keeps alive until the end of
	// the transaction: it bounds COMMIT's wait for a lock, as the
	// driver's own transactions do.
	ctx context.Context
}

// Commit commits; if that fails, the transaction is rolled back, as
// database/sql expects the connection to be out of it.
func (t *cachedTx) Commit() error {
	t.c.steady = false
	if err := t.c.control(t.ctx, &t.c.commit, "COMMIT"); err != nil {
		t.c.rollback()
		return err
	}
	return nil
}

// Rollback rolls back whatever ctx says: it runs to clean up after a
// context ended.
func (t *cachedTx) Rollback() error { return t.c.rollback() }

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if c.gate != nil && !c.gate.pass(ctx) {
		return driver.ErrBadConn // see schemaGate.resetSession
	}
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// Close finalizes the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	for q, cq := range c.queries {
		errs = append(errs, cq.st.Close())
		delete(c.queries, q)
	}
	for _, st := range []*driver.Stmt{&c.begin, &c.commit, &c.rollbackStmt} {
		if *st != nil {
			errs = append(errs, (*st).Close())
			*st = nil
		}
	}
	return errors.Join(append(errs, c.Conn.Close())...)
}
