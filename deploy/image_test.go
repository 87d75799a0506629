package deploy

// Tests of the image and compose: the Dockerfile builds as the README and
// the Makefile say, .dockerignore sends the checkout and keeps out what
// git ignores, the healthcheck the image and compose run works, and
// compose.yaml wires the services to files and ports that exist.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config/configfile"
	"strangler/internal/filecap"
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

func TestDockerfile(t *testing.T) {
	dockerfile := string(readFile(t, "Dockerfile"))
	readme := string(readFile(t, filepath.Join(repoRoot, "README.md")))

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
	makefile := string(readFile(t, filepath.Join(repoRoot, "Makefile")))
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
	if m := regexp.MustCompile(`ARG GO_VERSION=(\S+)`).FindStringSubmatch(dockerfile); m == nil || !strings.Contains(string(readFile(t, filepath.Join(repoRoot, "go.mod"))), "\ngo "+m[1]) {
		t.Errorf("the Dockerfile's GO_VERSION %v is not go.mod's", m)
	}
	for _, port := range []string{"8080", "9901"} {
		if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + port + `\b`).MatchString(dockerfile) {
			t.Errorf("the Dockerfile does not EXPOSE %s", port)
		}
	}
	// The sources, .git included, are mounted for the build, never copied
	// into a layer.
	if regexp.MustCompile(`(?m)^COPY \. `).MatchString(dockerfile) || !slices.Contains(docker, "--mount=type=bind,target=/src") {
		t.Error("the Dockerfile should mount the context for go build (Go stamps the revision from .git), not COPY it into a layer")
	}
	// The healthcheck is the binary's own, in exec form: no shell.
	hc := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD (\[.*\])$`).FindStringSubmatch(dockerfile)
	var hcCmd []string
	if hc == nil || json.Unmarshal([]byte(hc[1]), &hcCmd) != nil || !slices.Equal(hcCmd[:min(2, len(hcCmd))], []string{"/strangler", "healthcheck"}) {
		t.Fatalf("the Dockerfile's HEALTHCHECK %v does not run /strangler healthcheck in exec form", hc)
	}
	// The configuration the image starts with is valid in the image, given
	// the admin token it needs off loopback (the README's docker run).
	env := map[string]string{"STRANGLER_ADMIN_TOKEN": "a-placeholder-of-32-characters.."}
	for _, m := range regexp.MustCompile(`(?m)^ENV (\w+)=(\S+)$`).FindAllStringSubmatch(dockerfile, -1) {
		env[m[1]] = m[2]
	}
	cfg, err := configfile.Load("strangler.yaml", configfile.Env{Getenv: func(k string) string { return env[k] }, ReadFile: filecap.Read})
	if err != nil {
		t.Fatalf("deploy/strangler.yaml with the image's environment: %v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("deploy/strangler.yaml loads with warnings (config check prints them): %v", cfg.Warnings)
	}
	if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("in the image the admin listener would listen on %s, out of reach of probes and Prometheus", cfg.Admin.Listen)
	}
	if got, want := healthcheckPort(t, hcCmd[2:], nil), portOf(t, cfg.Admin.Listen); got != want {
		t.Errorf("the HEALTHCHECK asks port %d; the image's admin listener is on %d", got, want)
	}
}

// healthcheckPort is the port `strangler healthcheck args…` asks, with
// env its environment: --admin's, STRANGLER_ADMIN's, or the default the
// binary states in its usage.
func healthcheckPort(t *testing.T, args []string, env map[string]string) int {
	t.Helper()
	admin := env["STRANGLER_ADMIN"]
	if i := slices.Index(args, "--admin"); i >= 0 && i+1 < len(args) {
		admin = args[i+1]
	}
	if admin == "" {
		cmd := exec.Command(binary(t), "healthcheck", "-h")
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "STRANGLER_ADMIN=") })
		out, _ := cmd.CombinedOutput()
		m := regexp.MustCompile(`(?s)-admin URL.*?\(default "([^"]+)"\)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("strangler healthcheck -h states no default --admin:\n%s", out)
		}
		admin = string(m[1])
	}
	u, err := url.Parse(admin)
	if err != nil || u.Port() == "" {
		t.Fatalf("healthcheck would ask %q, which names no port", admin)
	}
	return portOf(t, u.Host)
}

// TestHealthcheckOfTheImage runs the binary's healthcheck, as the image
// and compose run it, against a facade: 0 while it serves, failing once
// it is gone.
func TestHealthcheckOfTheImage(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, _ *http.Request) {})
	f := startFacade(t, writeConfig(t, ok.URL, ok.URL, `  - {name: p, match: "GET /p", mode: legacy}
`))
	check := func() error {
		cmd := exec.Command(binary(t), "healthcheck")
		cmd.Env = append(os.Environ(), "STRANGLER_ADMIN=http://"+f.admin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := check(); err != nil {
		t.Errorf("healthcheck of a serving facade: %v", err)
	}
	f.cmd.Process.Kill()
	f.cmd.Wait()
	if err := check(); err == nil {
		t.Error("healthcheck passed with the facade gone")
	}
}

// TestDockerignoreSendsTheCheckout: the build mounts the context with
// .git, so that Go stamps the revision; every file git tracks must come
// along, or the stamp would say the tree was modified. What git ignores
// (build output, state, secrets) stays out.
func TestDockerignoreSendsTheCheckout(t *testing.T) {
	ignore := readDockerignore(t, filepath.Join(repoRoot, ".dockerignore"))
	cmd := exec.Command("git", "ls-files")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	tracked := strings.Fields(string(out))
	if len(tracked) < 50 {
		t.Fatalf("git ls-files lists %d files; the test is broken", len(tracked))
	}
	for _, f := range append(tracked, ".git/HEAD") {
		if ignore.excludes(f) {
			t.Errorf(".dockerignore keeps %s from the build", f)
		}
	}
	for _, f := range []string{"strangler", "bin/strangler", "strangler.db", "cmd/strangler/state.db-wal", "tmp/x", ".env", ".artifacts/page.png", "router/router.test"} {
		if !ignore.excludes(f) {
			t.Errorf("%s reaches the build", f)
		}
		cmd := exec.Command("git", "check-ignore", "-q", "--no-index", f)
		cmd.Dir = repoRoot
		if cmd.Run() != nil {
			t.Errorf("%s is kept from the build but not ignored by git: the two lists should agree", f)
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
		Build           *struct{ Context, Dockerfile string } `yaml:"build"`
		Command         []string                              `yaml:"command"`
		Environment     map[string]string                     `yaml:"environment"`
		Volumes         []string                              `yaml:"volumes"`
		Ports           []string                              `yaml:"ports"`
		Healthcheck     *struct{ Test []string }              `yaml:"healthcheck"`
		StopGracePeriod string                                `yaml:"stop_grace_period"`
	} `yaml:"services"`
}

// composeDefaults does compose's ${VAR:-default} with nothing set.
var composeDefaults = regexp.MustCompile(`\$\{\w+:-([^}]*)\}`)

// TestCompose checks what compose.yaml names: the files it mounts, the
// image build, the facade's configuration with the environment it gets,
// its healthcheck, and the ports Prometheus scrapes.
func TestCompose(t *testing.T) {
	var c composeFile
	readYAML(t, "compose.yaml", &c)
	for _, name := range []string{"strangler", "legacy", "modern", "mariadb", "postgres", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no %s service", name)
		}
	}
	mounts := map[string]string{} // container path: host path
	for name, s := range c.Services {
		if s.Build != nil && (filepath.Clean(s.Build.Context) != filepath.Clean(repoRoot) || s.Build.Dockerfile != "deploy/Dockerfile") {
			t.Errorf("%s builds %+v; want the repository root with deploy/Dockerfile", name, *s.Build)
		}
		for _, v := range s.Volumes {
			host, container, _ := strings.Cut(v, ":")
			container, _, _ = strings.Cut(container, ":")
			if !strings.HasPrefix(host, "./") {
				continue // a named volume
			}
			if _, err := os.Stat(host); err != nil {
				t.Errorf("%s mounts %s: %v", name, host, err)
			}
			mounts[name+":"+container] = host
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
	cfg, err := configfile.Load(path, configfile.Env{Getenv: func(k string) string { return env[k] }, ReadFile: filecap.Read})
	if err != nil {
		t.Fatalf("compose's strangler.yaml with the service's environment: %v", err)
	}
	if !strings.HasPrefix(string(cfg.Store), "postgres://") || cfg.Backfill == nil {
		t.Errorf("compose's facade should keep its state in PostgreSQL and have a backfill section")
	}
	if len(cfg.Warnings) > 0 || len(cfg.EncryptionKeys()) == 0 {
		t.Errorf("compose's strangler.yaml: warnings %v, %d store keys; its dual writes journal patients' bodies, which must be encrypted",
			cfg.Warnings, len(cfg.EncryptionKeys()))
	}

	// docker compose stop kills the facade stop_grace_period after
	// SIGTERM: after its whole drain.
	if got, err := time.ParseDuration(facade.StopGracePeriod); err != nil || got < drainNeeds(cfg) {
		t.Errorf("the strangler service's stop_grace_period is %q; %s need %v", facade.StopGracePeriod, drainSteps(cfg), drainNeeds(cfg))
	}

	// The healthcheck runs the image's binary (no shell in distroless) on
	// the admin listener's port.
	hc := facade.Healthcheck
	if hc == nil || len(hc.Test) < 3 || !slices.Equal(hc.Test[:3], []string{"CMD", "/strangler", "healthcheck"}) {
		t.Fatalf("the strangler service's healthcheck %+v does not run /strangler healthcheck", hc)
	}
	if got, want := healthcheckPort(t, hc.Test[3:], env), portOf(t, cfg.Admin.Listen); got != want {
		t.Errorf("the healthcheck asks port %d; compose's admin listener is on %d", got, want)
	}

	// Prometheus scrapes the facade's admin port and verify's metrics.
	var prom struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &prom)
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
	readYAML(t, "grafana/provisioning/dashboards/strangler.yaml", &provider)
	if len(provider.Providers) != 1 {
		t.Fatal("want one dashboard provider")
	}
	if host := mounts["grafana:"+provider.Providers[0].Options.Path]; filepath.Clean(host) != filepath.Clean("grafana/dashboards") {
		t.Errorf("grafana loads dashboards from %s, where compose mounts %q", provider.Providers[0].Options.Path, host)
	}
}
