package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopsOnSignal sends sig to the one-shot command cmd, started and
// blocked, and fails the test unless it exits within five seconds with
// 128 plus the signal's number, saying it was stopped. It returns stderr.
func stopsOnSignal(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, sig syscall.Signal) string {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%v: still running 5s after %v", cmd.Args[1:], sig)
	}
	failOnDataRace(t, "strangler", stderr.String())
	if code, want := cmd.ProcessState.ExitCode(), 128+int(sig); code != want || !strings.Contains(stderr.String(), "strangler: stopped by "+sig.String()) {
		t.Errorf("%v after %v: exit %d, stderr %q; want %d and a line saying it was stopped", cmd.Args[1:], sig, code, stderr, want)
	}
	return stderr.String()
}

// A one-shot command blocked where it does not watch its context (here
// writing to a stdout nobody reads) stopped on SIGTERM only when killed.
func TestAOneShotCommandBlockedStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	var routes strings.Builder
	for i := range 2000 { // config print writes far more than a pipe holds
		fmt.Fprintf(&routes, "  - {name: r%d, match: \"GET /r%d\", mode: legacy}\n", i, i)
	}
	cfg := writeConfig(t, filepath.Join(dir, "strangler.yaml"), "http://127.0.0.1:1", "http://127.0.0.1:1", routes.String())
	cmd := exec.Command(binary(t), "config", "print", cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Its first byte out: it is writing, and blocks once the pipe is full.
	if _, err := out.Read(make([]byte, 1)); err != nil {
		t.Fatalf("config print wrote nothing: %v; %s", err, stderr.String())
	}
	stopsOnSignal(t, cmd, &stderr, syscall.SIGTERM)
}

// `store verify` waiting for a lock another process holds, interrupted,
// said the backup was damaged and exited 1.
func TestStoreVerifyWaitingForALockStopsOnSIGINT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{`CREATE TABLE t (x)`, `BEGIN EXCLUSIVE`, `INSERT INTO t VALUES (1)`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	cmd := exec.Command(binary(t), "store", "verify", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitOpened(t, cmd.Process.Pid, path)
	if msg := stopsOnSignal(t, cmd, &stderr, syscall.SIGINT); strings.Contains(msg, "damaged") {
		t.Errorf("stderr %q: an interrupted verify says nothing of damage", msg)
	}
}

// waitOpened waits until process pid has the file at path open.
func waitOpened(t *testing.T, pid int, path string) {
	t.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, err := os.ReadDir(fds)
		if err != nil {
			t.Skipf("cannot see what a process has open: %v", err)
		}
		for _, e := range entries {
			if target, _ := os.Readlink(filepath.Join(fds, e.Name())); target == path {
				return
			}
		}
	}
	t.Fatalf("process %d has not opened %s after 30s", pid, path)
}
