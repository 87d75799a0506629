package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor owns the bench's temporary directory and every child process,
// and removes them all on exit, Ctrl-C included.
type supervisor struct {
	dir      string
	mu       sync.Mutex
	children []*child
	// after runs once the children are gone (dropping a PostgreSQL schema
	// they used).
	after []func()
	once  sync.Once
}

// child is one started process; its stdout and stderr go to a log file.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, once done is closed
}

func newSupervisor() (*supervisor, error) {
	dir, err := os.MkdirTemp("", "strangler-bench-")
	if err != nil {
		return nil, err
	}
	// nginx workers drop root privileges and must reach their temp paths.
	os.Chmod(dir, 0o755)
	s := &supervisor{dir: dir}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "\ninterrupted; stopping child processes")
		s.cleanup()
		os.Exit(130)
	}()
	return s, nil
}

// start runs cmd with its output in the log file dir/key.log.
func (s *supervisor) start(key, name string, cmd *exec.Cmd) (*child, error) {
	logPath := filepath.Join(s.dir, key+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	setProcAttr(cmd)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	s.children = append(s.children, c)
	return c, nil
}

// cleanup kills every child's process group and removes the temporary
// directory. It is safe to call more than once and from any goroutine.
func (s *supervisor) cleanup() {
	s.once.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.children {
			killGroup(c.cmd.Process)
		}
		for _, c := range s.children {
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				fmt.Fprintf(os.Stderr, "bench: %s (pid %d) did not exit\n", c.name, c.cmd.Process.Pid)
			}
		}
		for _, f := range s.after {
			f()
		}
		os.RemoveAll(s.dir)
	})
}

// atCleanup has f run by cleanup once every child has exited.
func (s *supervisor) atCleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after = append(s.after, f)
}

// waitLine waits until the child's log has a line containing marker and
// returns it; it fails if the child exits or timeout passes first.
func (c *child) waitLine(marker string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if line, ok := findLine(c.log, marker); ok {
			return line, nil
		}
		select {
		case <-c.done:
			if line, ok := findLine(c.log, marker); ok {
				return line, nil
			}
			return "", fmt.Errorf("%s exited (%v) before it was ready; its output:\n%s", c.name, c.err, c.tail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s was not ready after %v; its output:\n%s", c.name, timeout, c.tail())
		}
	}
}

// exited reports an error if the child has already exited.
func (c *child) exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v); its output:\n%s", c.name, c.err, c.tail())
	default:
		return nil
	}
}

func findLine(path, marker string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), marker) {
			return sc.Text(), true
		}
	}
	return "", false
}

// tail returns the last lines of the child's output, for error messages.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "    " + string(bytes.Join(lines, []byte("\n    ")))
}

// memory is resident memory in KiB: now (VmRSS) and the peak (VmHWM),
// summed over the child's process group (nginx's master and workers), and
// how much of the resident memory now is pages of files (RssFile): the
// executable and libraries, which the kernel maps in as code runs and can
// drop and read again under memory pressure; the rest is anonymous memory
// (heap, stacks).
type memory struct{ rss, hwm, file uint64 }

func (m memory) rssMiB() float64  { return float64(m.rss) / 1024 }
func (m memory) hwmMiB() float64  { return float64(m.hwm) / 1024 }
func (m memory) fileMiB() float64 { return float64(m.file) / 1024 }

func (c *child) memory() (memory, error) { return groupMemory(c.cmd.Process.Pid) }

// cpu returns the CPU time the child's process group has used so far.
func (c *child) cpu() (time.Duration, error) { return groupCPU(c.cmd.Process.Pid) }
