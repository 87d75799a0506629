package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestTheRoutesReportSaysWhatARouteStillOwes: modern is down, so a dual
// write legacy applied waits in the journal for it. routes report says
// how many are owed and to whom, its verdict is not yet for them, and the
// flip to modern, which would send writes straight to modern ahead of
// the one owed there, is blocked by it; the report did not look at the
// journal before.
func TestTheRoutesReportSaysWhatARouteStillOwes(t *testing.T) {
	legacy := backendAnswering(t, `{"ok":true}`)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: "http://" + refusedAddr(t), store: "sqlite:" + filepath.Join(dir, "s.db")})
	f := startRun(t, "serve", "--config", cfg)
	status, _, err := sendRequest(http.MethodPut, "http://"+f.public+"/items/1", `{"name":"x"}`, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("PUT: %d, %v", status, err)
	}
	cli := cliEnv(map[string]string{"STRANGLER_ADMIN": "http://" + f.admin, "STRANGLER_ADMIN_TOKEN": e2eAdminToken})
	var out string
	testkit.Eventually(t, 10*time.Second, "the write owed in the report", func() bool {
		out = cli(t, "routes", "report", "put-item").must(t)
		return strings.Contains(out, "dual writes owed:")
	})
	for _, want := range []string{
		"  dual writes owed:      1 to modern\n",
		"  verdict:               not yet: 1 dual write still owed to modern (strangler repairs list --route put-item; deliver or discard them)\n",
		"blocked by 1 dual write still owed to modern: the flip would send writes straight to modern ahead of them",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("routes report put-item lacks %q:\n%s", want, out)
		}
	}
}
