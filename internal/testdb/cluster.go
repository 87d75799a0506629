package testdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a PostgreSQL primary and a standby streaming from it, both
// started by the test from the server binaries (Debian's, under
// /usr/lib/postgresql/*/bin) on free loopback ports and removed when it
// ends. Replication is synchronous: a commit returns once the standby has
// the WAL, which is how a store that must lose no journaled write across
// a failover is set up. When the test runs as root the servers run as the
// postgres user, since PostgreSQL refuses root.
type Cluster struct {
	t    testing.TB
	bin  string
	dir  string
	cred *syscall.Credential
	// Primary and Standby are the two servers; after Promote the standby
	// is the primary.
	Primary, Standby *Server
}

// Server is one PostgreSQL server of a Cluster.
type Server struct {
	Name string
	Port int
	dir  string
}

// DSN is the URL of the server's postgres database, this host only.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.Port)
}

// NewCluster starts a primary and a synchronous standby. It skips the test
// when the server binaries are missing, and fails it then when
// STRANGLER_REQUIRE_DB=1, as in CI.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := serverBinaries()
	if err != nil {
		missing(t, err)
	}
	c := &Cluster{t: t, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, fmt.Errorf("running as root and no postgres user to run the servers as: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	c.dir, err = os.MkdirTemp("", "strangler-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// The servers' user must reach the directory, whoever made it.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.own(c.dir)
	t.Cleanup(c.remove)

	c.Primary = &Server{Name: "primary", Port: freePort(t), dir: filepath.Join(c.dir, "primary")}
	c.Standby = &Server{Name: "standby", Port: freePort(t), dir: filepath.Join(c.dir, "standby")}
	c.run("initdb", "-D", c.Primary.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	// fsync off: the test stops servers, it does not crash the machine;
	// what a commit waits for (the standby's acknowledgement) is unchanged.
	c.appendConf(c.Primary, fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
wal_level = replica
max_wal_senders = 4
synchronous_standby_names = '*'
synchronous_commit = on
fsync = off
shared_buffers = 16MB
max_connections = 60
`, c.Primary.Port, c.dir))
	c.start(c.Primary)
	c.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Primary.Port), "-U", "postgres",
		"-D", c.Standby.dir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	// Promoted, the standby has no standby of its own: like a failover
	// manager, it then commits without waiting for one, or every write
	// would wait forever.
	c.appendConf(c.Standby, fmt.Sprintf("port = %d\ncluster_name = 'standby'\nsynchronous_standby_names = ''\n", c.Standby.Port))
	c.start(c.Standby)
	c.waitSyncStandby()
	return c
}

// DSN is the URL a client fails over with: both hosts, the one that takes
// writes.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2&target_session_attrs=read-write",
		c.Primary.Port, c.Standby.Port)
}

// StopPrimary stops the primary at once, as a crash would: no shutdown
// checkpoint, connections cut.
func (c *Cluster) StopPrimary() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.Primary.dir, "-m", "immediate", "-w", "stop")
}

// RestartPrimary restarts the primary as an operator would (pg_ctl
// restart, fast mode: sessions are ended, transactions rolled back) and
// returns once it streams to the standby again and so takes writes.
func (c *Cluster) RestartPrimary() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.Primary.dir, "-l", filepath.Join(c.dir, c.Primary.Name+".log"), "-m", "fast", "-w", "-t", "60", "restart")
	c.waitSyncStandby()
}

// Promote makes the standby the primary and returns once it takes writes.
func (c *Cluster) Promote() {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.Standby.dir, "-w", "-t", "60", "promote")
	c.Primary, c.Standby = c.Standby, c.Primary
}

func (c *Cluster) start(s *Server) {
	c.t.Helper()
	c.run("pg_ctl", "-D", s.dir, "-l", filepath.Join(c.dir, s.Name+".log"), "-w", "-t", "60", "start")
}

// waitSyncStandby waits until the primary streams to the standby
// synchronously.
func (c *Cluster) waitSyncStandby() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var state string
		err := func() error {
			conn, err := pgx.Connect(ctx, c.Primary.DSN())
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			return conn.QueryRow(ctx, `SELECT state || '/' || sync_state FROM pg_stat_replication`).Scan(&state)
		}()
		cancel()
		if err == nil && state == "streaming/sync" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the standby is not streaming synchronously after 60 s (%q, %v); logs:\n%s", state, err, c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) appendConf(s *Server, conf string) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		c.t.Fatal(err)
	}
}

// run runs one of the server binaries as the servers' user.
func (c *Cluster) run(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s\nlogs:\n%s", name, strings.Join(args, " "), err, out, c.logs())
	}
}

// own gives path to the servers' user.
func (c *Cluster) own(path string) {
	if c.cred == nil {
		return
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		c.t.Fatal(err)
	}
}

// logs are the servers' logs, for a failure message.
func (c *Cluster) logs() string {
	var b strings.Builder
	for _, name := range []string{"primary", "standby"} {
		if out, err := os.ReadFile(filepath.Join(c.dir, name+".log")); err == nil {
			fmt.Fprintf(&b, "--- %s.log\n%s", name, out)
		}
	}
	return b.String()
}

// remove stops whatever still runs and deletes the data.
func (c *Cluster) remove() {
	for _, s := range []*Server{c.Primary, c.Standby} {
		if s == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.dir, "postmaster.pid")); err != nil {
			continue
		}
		cmd := exec.Command(filepath.Join(c.bin, "pg_ctl"), "-D", s.dir, "-m", "immediate", "-w", "stop")
		cmd.Dir = c.dir
		if c.cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		}
		cmd.Run()
	}
	os.RemoveAll(c.dir)
}

// missing skips the test, or fails it when STRANGLER_REQUIRE_DB=1.
func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("STRANGLER_REQUIRE_DB") == "1" {
		t.Fatalf("a PostgreSQL cluster is required (STRANGLER_REQUIRE_DB=1) but cannot be started: %v", err)
	}
	t.Skipf("cannot start a PostgreSQL cluster (install the server, e.g. Debian's postgresql package): %v", err)
}

// serverBinaries finds the newest installed server's bin directory.
func serverBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_basebackup")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no initdb, pg_ctl and pg_basebackup in /usr/lib/postgresql/*/bin or on PATH")
}

// freePort is a loopback TCP port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
