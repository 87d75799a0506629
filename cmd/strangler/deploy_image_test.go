package main

// Tests of the image and compose: the Dockerfile builds as the README and
// the Makefile say, .dockerignore keeps what the build reads, and
// compose.yaml wires the services to files and ports that exist.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"strangler/config"
)

// dockerfileBuild returns the Dockerfile's go build command, continuation
// lines joined.
func dockerfileBuild(t *testing.T, dockerfile string) []string {
	t.Helper()
	joined := strings.ReplaceAll(dockerfile, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, " go build ") {
			return shellFields(line)
		}
	}
	t.Fatal("no RUN … go build in the Dockerfile")
	return nil
}

// shellFields splits a command line into words as the shell does, quotes
// and all (no escapes or expansions: the Dockerfile needs none).
func shellFields(s string) []string {
	var words []string
	var word strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			word.WriteByte(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

func TestDeployDockerfile(t *testing.T) {
	dockerfile := string(readFile(t, deployPath("Dockerfile")))
	readme := string(readFile(t, "../../README.md"))

	// The build command the README gives is the one the Dockerfile states.
	buildLine := regexp.MustCompile(`(?m)^[#\s]*(docker build .*)$`)
	inDockerfile := buildLine.FindAllStringSubmatch(dockerfile, -1)
	if len(inDockerfile) != 1 {
		t.Fatalf("the Dockerfile states %d docker build commands, want 1", len(inDockerfile))
	}
	want := strings.TrimSpace(inDockerfile[0][1])
	_, production, ok := strings.Cut(readme, "## Run in production")
	if !ok {
		t.Fatal(`the README has no "Run in production" section`)
	}
	if !strings.Contains(production, want) {
		t.Errorf("the README's Run in production section does not give the Dockerfile's build command %q", want)
	}
	if !strings.Contains(want, "-f deploy/Dockerfile") || !strings.HasSuffix(want, " .") {
		t.Errorf("%q: the context must be the repository root and the file deploy/Dockerfile", want)
	}

	// go build as `make build` does it.
	makefile := string(readFile(t, "../../Makefile"))
	_, target, ok := strings.Cut(makefile, "\nbuild:")
	if !ok {
		t.Fatal("the Makefile has no build target")
	}
	var makeBuild []string
	for _, line := range strings.Split(target, "\n")[1:] {
		if !strings.HasPrefix(line, "\t") {
			break
		}
		if strings.Contains(line, " build ") {
			makeBuild = strings.Fields(line)
		}
	}
	if makeBuild == nil {
		t.Fatal("the Makefile's build target runs no go build")
	}
	docker := dockerfileBuild(t, dockerfile)
	for i, tok := range makeBuild {
		switch {
		case i > 0 && makeBuild[i-1] == "-o", tok == "-o", strings.HasPrefix(tok, "$("), tok == "build":
		case strings.Contains(tok, "=") || strings.HasPrefix(tok, "-") || strings.HasPrefix(tok, "./"):
			if !slices.Contains(docker, tok) {
				t.Errorf("make build uses %s; the Dockerfile's go build does not: %s", tok, strings.Join(docker, " "))
			}
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags=-s -w"} {
		if !slices.Contains(docker, want) {
			t.Errorf("the Dockerfile's go build lacks %s", want)
		}
	}
	for _, want := range []string{
		"FROM golang:${GO_VERSION} AS build", "gcr.io/distroless/static-debian12:nonroot",
		"USER 65532:65532", `ENTRYPOINT ["/strangler"]`, `CMD ["serve", "--config", "/etc/strangler/strangler.yaml"]`,
	} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`ARG GO_VERSION=(\S+)`).FindStringSubmatch(dockerfile); m == nil || !strings.Contains(string(readFile(t, "../../go.mod")), "\ngo "+m[1]) {
		t.Errorf("the Dockerfile's GO_VERSION %v is not go.mod's", m)
	}
	for _, port := range []string{"8080", "9901"} {
		if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + port + `\b`).MatchString(dockerfile) {
			t.Errorf("the Dockerfile does not EXPOSE %s", port)
		}
	}
	// The configuration the image starts with is valid in the image, given
	// the admin token it needs off loopback (the README's docker run).
	env := map[string]string{"STRANGLER_ADMIN_TOKEN": "a-placeholder-of-32-characters.."}
	for _, m := range regexp.MustCompile(`(?m)^ENV (\w+)=(\S+)$`).FindAllStringSubmatch(dockerfile, -1) {
		env[m[1]] = m[2]
	}
	cfg, err := config.Load(deployPath("strangler.yaml"), config.Env{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatalf("deploy/strangler.yaml with the image's environment: %v", err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("in the image the admin listener would listen on %s, out of reach of probes and Prometheus", cfg.Admin.Listen)
	}
}

// TestDeployDockerignoreKeepsTheBuild checks that .dockerignore lets
// every file the image's go build reads reach the builder: the Go files
// and embedded files of the module's packages, as go list names them for
// the Dockerfile's build environment, and the files the Dockerfile copies.
func TestDeployDockerignoreKeepsTheBuild(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ignore := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	args := dockerfileBuild(t, string(readFile(t, deployPath("Dockerfile"))))
	env := os.Environ()
	pkg := args[len(args)-1]
	for _, a := range args {
		if k, _, ok := strings.Cut(a, "="); ok && !strings.HasPrefix(a, "-") && strings.ToUpper(k) == k {
			env = append(env, a)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-json", pkg)
	cmd.Dir = root
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, m := range regexp.MustCompile(`(?m)^COPY (\S+) `).FindAllStringSubmatch(string(readFile(t, deployPath("Dockerfile"))), -1) {
		if m[1] != "." && !strings.HasPrefix(m[1], "--") {
			needed = append(needed, m[1])
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	packages := 0
	for {
		var p struct {
			Dir, ImportPath                                    string
			Module                                             *struct{ Path string }
			GoFiles, EmbedFiles, OtherFiles, IgnoredOtherFiles []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "strangler" {
			continue // the standard library, or a module from the proxy
		}
		packages++
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles, p.OtherFiles) {
			rel, err := filepath.Rel(root, filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			needed = append(needed, filepath.ToSlash(rel))
		}
	}
	if packages < 5 {
		t.Fatalf("go list found %d of the module's packages; the test is broken", packages)
	}
	for _, f := range needed {
		if ignore.excludes(f) {
			t.Errorf(".dockerignore keeps %s, which the image's build needs, from the builder", f)
		}
	}
	for _, f := range []string{".git/HEAD", "strangler.db", "strangler", "deploy/k8s/base/kustomization.yaml", "config/testdata/full.yaml"} {
		if !ignore.excludes(f) {
			t.Errorf("%s reaches the builder", f)
		}
	}
}

// dockerignore matches paths as Docker does, near enough for these
// patterns: the last matching pattern wins, ! re-includes, a pattern that
// matches a folder excludes what is in it, ** spans folders.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func readDockerignore(t *testing.T, path string) dockerignore {
	t.Helper()
	var d dockerignore
	for _, line := range strings.Split(string(readFile(t, path)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		negate := strings.HasPrefix(line, "!")
		line = strings.Trim(strings.TrimPrefix(line, "!"), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case line[i] == '*':
				re.WriteString("[^/]*")
			case line[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		re.WriteString("(/.*)?$")
		d = append(d, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), negate})
	}
	return d
}

func (d dockerignore) excludes(path string) bool {
	excluded := false
	for _, p := range d {
		if p.re.MatchString(path) {
			excluded = !p.negate
		}
	}
	return excluded
}

// composeFile is the part of deploy/compose.yaml these tests read.
type composeFile struct {
	Services map[string]struct {
		Build       *struct{ Context, Dockerfile string } `yaml:"build"`
		Command     []string                              `yaml:"command"`
		Environment map[string]string                     `yaml:"environment"`
		Volumes     []string                              `yaml:"volumes"`
		Ports       []string                              `yaml:"ports"`
	} `yaml:"services"`
}

// composeDefaults does compose's ${VAR:-default} with nothing set.
var composeDefaults = regexp.MustCompile(`\$\{\w+:-([^}]*)\}`)

// TestDeployCompose checks what compose.yaml names: the files it mounts,
// the image build, the facade's configuration with the environment it
// gets, and the ports Prometheus scrapes.
func TestDeployCompose(t *testing.T) {
	var c composeFile
	readYAML(t, deployPath("compose.yaml"), &c)
	for _, name := range []string{"strangler", "legacy", "modern", "mariadb", "postgres", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no %s service", name)
		}
	}
	mounts := map[string]string{} // container path: host path
	for name, s := range c.Services {
		if s.Build != nil && (filepath.Clean(filepath.Join(deployDir, s.Build.Context)) != filepath.Clean("../..") || s.Build.Dockerfile != "deploy/Dockerfile") {
			t.Errorf("%s builds %+v; want the repository root with deploy/Dockerfile", name, *s.Build)
		}
		for _, v := range s.Volumes {
			host, container, _ := strings.Cut(v, ":")
			container, _, _ = strings.Cut(container, ":")
			if !strings.HasPrefix(host, "./") {
				continue // a named volume
			}
			if _, err := os.Stat(deployPath(host)); err != nil {
				t.Errorf("%s mounts %s: %v", name, host, err)
			}
			mounts[name+":"+container] = deployPath(host)
		}
	}

	facade := c.Services["strangler"]
	env := map[string]string{}
	for k, v := range facade.Environment {
		env[k] = composeDefaults.ReplaceAllString(v, "$1")
	}
	i := slices.Index(facade.Command, "--config")
	if i < 0 || i+1 >= len(facade.Command) {
		t.Fatalf("the strangler service runs %q, without --config", facade.Command)
	}
	path, ok := mounts["strangler:"+facade.Command[i+1]]
	if !ok {
		t.Fatalf("the strangler service's %s is not mounted from deploy/", facade.Command[i+1])
	}
	cfg, err := config.Load(path, config.Env{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatalf("compose's strangler.yaml with the service's environment: %v", err)
	}
	if !strings.HasPrefix(string(cfg.Store), "postgres://") || cfg.Backfill == nil {
		t.Errorf("compose's facade should keep its state in PostgreSQL and have a backfill section")
	}

	// Prometheus scrapes the facade's admin port and verify's metrics.
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, deployPath("prometheus", "prometheus.yml"), &prom)
	targets := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				targets[target] = true
			}
		}
	}
	if want := fmt.Sprintf("strangler:%d", portOf(t, cfg.Admin.Listen)); !targets[want] {
		t.Errorf("Prometheus scrapes %v, not the facade's admin listener %s", slices.Sorted(maps.Keys(targets)), want)
	}
	verify := c.Services["verify"].Command
	if i := slices.Index(verify, "--metrics-listen"); i < 0 || !targets["verify"+verify[i+1]] {
		t.Errorf("Prometheus scrapes %v, not verify's --metrics-listen (%q)", slices.Sorted(maps.Keys(targets)), verify)
	}
	if _, ok := mounts["prometheus:/etc/prometheus/alerts.yaml"]; !ok {
		t.Error("the prometheus service does not mount the alert rules next to prometheus.yml")
	}

	// Grafana's provisioning finds the dashboard where compose mounts it.
	var provider struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, deployPath("grafana", "provisioning", "dashboards", "strangler.yaml"), &provider)
	if len(provider.Providers) != 1 {
		t.Fatal("want one dashboard provider")
	}
	if host := mounts["grafana:"+provider.Providers[0].Options.Path]; filepath.Clean(host) != filepath.Clean(deployPath("grafana", "dashboards")) {
		t.Errorf("grafana loads dashboards from %s, where compose mounts %q", provider.Providers[0].Options.Path, host)
	}
}
