package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// healthcheck runs `strangler healthcheck` with args and the environment
// env, and returns what it printed and its error.
func healthcheck(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	err := run(context.Background(), append([]string{"healthcheck"}, args...), func(k string) string { return env[k] }, &stdout, io.Discard)
	return stdout.String(), err
}

func TestHealthcheckPassesWhenTheFacadeIsReady(t *testing.T) {
	backend := backendAnswering(t, "ok")
	f := startRun(t, "serve", "--config", writeConfig(t, "", backend.URL, backend.URL, `  - {name: p, match: "GET /p", mode: legacy}
`))
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"--admin host:port":  {nil, []string{"--admin", f.admin}},
		"--admin URL":        {nil, []string{"--admin", "http://" + f.admin + "/"}},
		"STRANGLER_ADMIN":    {map[string]string{"STRANGLER_ADMIN": "http://" + f.admin}, nil},
		"the flag wins over": {map[string]string{"STRANGLER_ADMIN": "http://127.0.0.1:1"}, []string{"--admin", f.admin}},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := healthcheck(t, c.env, c.args...)
			if err != nil || strings.TrimSpace(out) != "ready" {
				t.Errorf("got %q, %v; want ready and no error", out, err)
			}
		})
	}
}

// TestHealthcheckFailsWhileDraining holds a request in flight so that the
// drain lasts, and checks the healthcheck fails with the facade's answer.
func TestHealthcheckFailsWhileDraining(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	})
	f := startRun(t, "serve", "--config", writeConfig(t, "", slow.URL, slow.URL, `  - {name: slow, match: "/slow", mode: legacy}
`))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get("http://" + f.public + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	f.stop()
	f.logs.waitFor(t, "draining", nil, 5*time.Second)
	_, err := healthcheck(t, nil, "--admin", f.admin)
	close(release)
	<-done
	var u usageError
	if err == nil || errors.As(err, &u) || !strings.Contains(err.Error(), "503 draining") {
		t.Errorf("got %v, want a failure that says 503 draining", err)
	}
}

func TestHealthcheckFailsWithoutAFacade(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// A listener that accepts and never answers: the timeout ends the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"nothing listening": {[]string{"--admin", closed}, "connection refused"},
		"no answer in time": {[]string{"--admin", silent.Addr().String(), "--timeout", "300ms"}, "deadline exceeded"},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := healthcheck(t, nil, c.args...)
			if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want not ready: … %s", err, c.want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func TestHealthcheckRefusesABadAdminURL(t *testing.T) {
	for _, admin := range []string{"ftp://127.0.0.1:9901", "http://user:pw@127.0.0.1:9901", "http://127.0.0.1:9901/?x=1", "http://"} {
		_, err := healthcheck(t, nil, "--admin", admin)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("--admin %q: got %v, want a usage error", admin, err)
		}
	}
}

// TestHealthcheckPrintsNoControlCharacters: whatever answers at --admin,
// its answer, printed or quoted in the error, reaches the terminal or a
// container's log with what they would act on escaped.
func TestHealthcheckPrintsNoControlCharacters(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		srv := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			w.Write([]byte("ready\x1b]0;pwned\x07\u202e\u009b"))
		})
		out, err := healthcheck(t, nil, "--admin", srv.URL)
		if err != nil {
			out = err.Error()
		}
		if want := `ready\u001b]0;pwned\u0007\u202e\u009b`; !strings.Contains(out, want) {
			t.Errorf("%d: healthcheck says %q, want it to show %s", status, out, want)
		}
	}
}

// TestHealthcheckFollowsNoRedirect: whatever answers at --admin with a
// redirect is not ready, and the check goes nowhere else. It followed
// redirects (up to 10): an answer of 302 to any address that answered
// 200 passed the check, and sent it (a GET) wherever it was pointed.
func TestHealthcheckFollowsNoRedirect(t *testing.T) {
	elsewhere := make(chan string, 10)
	other := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		elsewhere <- r.URL.Path
		w.Write([]byte("ready"))
	})
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/anywhere", status)
		})
		out, err := healthcheck(t, nil, "--admin", srv.URL)
		if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), "not followed") {
			t.Errorf("%d: got %q, %v; want not ready, the redirect not followed", status, out, err)
		}
	}
	select {
	case path := <-elsewhere:
		t.Errorf("the check reached the address the redirect named (%s)", path)
	default:
	}
}
