package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/dsn"
)

// Reconnection backoff of a PostgreSQL watcher.
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
	// watchConnectTimeout bounds one attempt to open the LISTEN connection.
	watchConnectTimeout = 10 * time.Second
)

// Watch returns a channel that receives a value whenever route overrides
// may have changed: on PostgreSQL, when any Store sharing this schema
// commits a SetOverride or ClearOverride (its own included), and after the
// watcher reconnects, since changes may have been missed while it was
// away. Signals coalesce: the receiver should reload Overrides, not count.
// The channel is closed when ctx is done or the Store closes.
//
// When Watch returns, the watcher is listening, so a caller that loads
// Overrides after Watch returns misses nothing. If it cannot connect, it
// logs, keeps trying in the background with backoff, and signals once it
// is connected.
//
// On SQLite there is one instance and no one else to hear from: the
// channel never fires.
func (s *Store) Watch(ctx context.Context) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("store: watch: store is closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	ch := make(chan struct{}, 1)
	var l *listener
	if s.dialect.notify != "" {
		var err error
		if l, err = s.listen(ctx); err != nil {
			s.log.Warn("store watch: cannot listen for route flag changes; retrying", "error", err)
		}
	}
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		defer close(ch)
		defer stop()
		defer cancel()
		if s.dialect.notify == "" {
			<-ctx.Done()
			return
		}
		s.watch(ctx, l, ch)
	}()
	return ch, nil
}

// listener is a dedicated connection LISTENing for override changes.
type listener struct {
	conn *pgx.Conn
	// schema is the payload of the notifications meant for this store.
	schema string
}

func (s *Store) listen(ctx context.Context) (*listener, error) {
	ctx, cancel := context.WithTimeout(ctx, watchConnectTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return nil, dsn.RedactError(err, s.dsn)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &listener{conn: conn}
	if err := conn.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&l.schema); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	// Last, so pg_stat_activity shows this connection as the LISTEN.
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return l, nil
}

func (l *listener) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.conn.Close(ctx)
}

// watch forwards notifications for this schema to ch until ctx is done,
// reconnecting with backoff whenever the connection drops. l may be nil:
// not connected yet.
func (s *Store) watch(ctx context.Context, l *listener, ch chan<- struct{}) {
	backoff := watchMinBackoff
	for {
		if l == nil {
			// Jitter, so replicas that lost the server together do not
			// all come back in the same instant.
			wait := backoff/2 + rand.N(backoff/2+1)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			if l, err = s.listen(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("store watch: cannot listen for route flag changes; retrying",
					"error", err, "retry_in", backoff.String())
				backoff = min(2*backoff, watchMaxBackoff)
				continue
			}
			backoff = watchMinBackoff
			s.log.Info("store watch: listening for route flag changes again")
			signal(ch)
		}
		n, err := l.conn.WaitForNotification(ctx)
		if err != nil {
			l.close()
			l = nil
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("store watch: lost the connection listening for route flag changes; reconnecting",
				"error", err)
			continue
		}
		if n.Payload == l.schema {
			signal(ch)
		}
	}
}

// signal sends on ch unless a signal is already waiting there.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
