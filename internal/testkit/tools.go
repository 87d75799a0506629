package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// Tool returns the path of a command a test needs. Without it the test is
// skipped, or fails when STRANGLER_REQUIRE_TOOLS=1 (as in CI), so that a
// machine missing the command cannot turn the test green by skipping it.
// install says how to get the command.
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("STRANGLER_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (STRANGLER_REQUIRE_TOOLS=1) but not installed; %s", name, install)
		}
		t.Skipf("%s not installed (%s); set STRANGLER_REQUIRE_TOOLS=1 to make this a failure", name, install)
	}
	return path
}
