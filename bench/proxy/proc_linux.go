package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setProcAttr puts the child in a process group of its own, so that
// cleanup can kill it together with any workers it forks (nginx), and asks
// the kernel to kill it if the bench dies without cleaning up. (Pdeathsig
// fires when the forking thread exits; the Go runtime keeps its threads,
// so in practice that means when the bench exits.) A guard gets SIGTERM
// instead, to pass on to its group.
func setProcAttr(cmd *exec.Cmd) {
	sig := syscall.SIGKILL
	if len(cmd.Args) > 2 && cmd.Args[1] == "-role" && cmd.Args[2] == "guard" {
		sig = syscall.SIGTERM
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}

// guarded wraps cmd, a server that forks workers, in a guard: the bench
// itself re-executed with -role guard. The kernel's parent-death signal
// reaches only the direct child, so if the bench were killed outright,
// nginx's master would die and its workers would live on; the guard turns
// that signal into a SIGKILL for its whole process group.
func guarded(self string, cmd *exec.Cmd) *exec.Cmd {
	g := exec.Command(self, append([]string{"-role", "guard", "--", cmd.Path}, cmd.Args[1:]...)...)
	g.Env = cmd.Env
	return g
}

// runGuard is the -role guard child process: it runs args in its own
// process group and kills the group when told to stop.
func runGuard(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("guard: no command")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-sig:
		return syscall.Kill(0, syscall.SIGKILL) // 0: this process group, guard included
	case err := <-done:
		return err
	}
}

func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// groupMemory sums VmRSS, VmHWM and RssFile over the processes in process
// group pgid, read from /proc.
func groupMemory(pgid int) (memory, error) {
	var m memory
	err := eachInGroup(pgid, func(pid int, _ [][]byte) {
		if s, err := procStatus(pid); err == nil {
			m.rss += s.rss
			m.hwm += s.hwm
			m.file += s.file
		}
	})
	return m, err
}

// clockTick is USER_HZ, the unit of CPU times in /proc/PID/stat; it is 100
// on every Linux platform Go supports.
const clockTick = 10 * time.Millisecond

// groupCPU sums the user and system CPU time the processes in group pgid
// have used so far.
func groupCPU(pgid int) (time.Duration, error) {
	var ticks uint64
	err := eachInGroup(pgid, func(_ int, f [][]byte) {
		if len(f) > 12 {
			u, _ := strconv.ParseUint(string(f[11]), 10, 64)
			s, _ := strconv.ParseUint(string(f[12]), 10, 64)
			ticks += u + s
		}
	})
	return time.Duration(ticks) * clockTick, err
}

// eachInGroup calls fn for every process in process group pgid, except a
// guard, with the fields of its /proc/PID/stat after the command name
// (state, ppid, pgrp, ...).
func eachInGroup(pgid int, fn func(pid int, fields [][]byte)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 || string(f[2]) != strconv.Itoa(pgid) || isGuard(pid) {
			continue
		}
		fn(pid, f)
		found = true
	}
	if !found {
		return fmt.Errorf("no process in group %d", pgid)
	}
	return nil
}

// procStatus returns VmRSS, VmHWM and RssFile of a process in KiB.
func procStatus(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := bytes.Cut(sc.Bytes(), []byte(":"))
		var dst *uint64
		switch string(name) {
		case "VmRSS":
			dst = &m.rss
		case "VmHWM":
			dst = &m.hwm
		case "RssFile":
			dst = &m.file
		default:
			continue
		}
		f := bytes.Fields(value) // "12345 kB"
		if len(f) > 0 {
			*dst, _ = strconv.ParseUint(string(f[0]), 10, 64)
		}
	}
	return m, sc.Err()
}

// selfCPU returns the CPU time the bench process (the load generator) has
// used so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// isGuard reports whether pid runs as a guard, which is not part of what
// it guards.
func isGuard(pid int) bool {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return bytes.Contains(b, []byte("\x00-role\x00guard\x00"))
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
