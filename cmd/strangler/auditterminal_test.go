package main

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"strangler/domain"
)

// TestAuditExportWritesNoControlCharactersFromTheLog: a denied flip's
// detail quotes the gate's error, which quotes a backend's answer, and
// entries from before reasons were checked hold what an operator typed.
// encoding/json escapes only C0 controls, so `audit export` (JSON lines,
// often read on a terminal before it goes to a SIEM) wrote DEL, C1
// controls (U+009B is ESC [) and U+202E as they were; now each is a \u
// escape, and the export decodes to the same entries, whose hashes
// recompute.
func TestAuditExportWritesNoControlCharactersFromTheLog(t *testing.T) {
	hostile := "legacy answered 503 \x1b]52;c;cm0gLXJmIH4K\x07 \u009b2J \u009d8;;http://evil.example/\u009c click \u202edaer \x7f"
	cfg := auditLogHolding(t,
		domain.AuditEntry{Actor: "bob", Action: "denied", Route: "flag-a", Detail: "flip to modern refused: " + hostile},
		domain.AuditEntry{Actor: "bob", Action: "flip", Route: "flag-b", Reason: "from before reasons were checked: " + hostile, FromMode: "legacy", ToMode: "shadow"})
	out, err := runCLI(t, "audit", "export", "--config", cfg)
	if err != nil {
		t.Fatalf("audit export: %v", err)
	}
	if r := actsOnTerminal(out); r != 0 {
		t.Errorf("audit export wrote %U as it is:\n%q", r, out)
	}
	records := exportJSONL(t, cfg)
	checkChain(t, records)
	if got := records[0]["detail"]; got != "flip to modern refused: "+hostile {
		t.Errorf("the exported detail decodes to %q, want the entry's", got)
	}
}

// TestAuditCSVExportOnATerminalWritesNoControlCharacters: CSV has no
// escapes, so the export wrote the same characters raw to a terminal;
// there it writes them as \u escapes, and to a file (TestAuditCSVExport…,
// checkChain) the exact values the hashes cover.
func TestAuditCSVExportOnATerminalWritesNoControlCharacters(t *testing.T) {
	hostile := "legacy answered 503 \x1b]52;c;cm0gLXJmIH4K\x07 \x1b[2J \u009b2J \u202edaer \x7f"
	cfg := auditLogHolding(t, domain.AuditEntry{Actor: "bob", Action: "denied", Route: "flag-a", Detail: hostile})
	term, screen := openTerminal(t)
	var stderr strings.Builder
	if err := run(context.Background(), []string{"audit", "export", "--config", cfg, "--format", "csv"}, noEnv, term, &stderr); err != nil {
		t.Fatalf("audit export: %v\n%s", err, stderr.String())
	}
	term.Close()
	out := <-screen
	if r := actsOnTerminal(strings.ReplaceAll(out, "\r\n", "\n")); r != 0 {
		t.Errorf("audit export --format csv wrote %U to the terminal as it is:\n%q", r, out)
	}
	if want := `legacy answered 503 \u001b]52;c;cm0gLXJmIH4K\u0007 \u001b[2J \u009b2J \u202edaer \u007f`; !strings.Contains(out, want) {
		t.Errorf("the terminal shows\n%q\nwant the detail with escapes: %s", out, want)
	}
}

// openTerminal opens a pseudo-terminal and returns its terminal end, for
// a command's output, and what the command wrote there, once it is
// closed. The terminal writes each newline as CR LF, as terminals do.
func openTerminal(t *testing.T) (*os.File, <-chan string) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	unlock := 0
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	term, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	screen := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once the terminal end is closed
		screen <- string(b)
	}()
	return term, screen
}
