package config

import (
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Env is how configuration reads the outside world: the environment for
// ${VAR} and the file system for ${file:…}. Tests pass their own.
type Env struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// Load reads, expands, decodes and validates the file at path. A non-nil
// error is either an I/O error or Errors naming every problem found.
func Load(path string, env Env) (*Config, error) {
	data, err := env.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, env)
}

// Parse is Load for a file already read; name is used in error messages and
// to resolve relative ${file:…} paths.
func Parse(name string, data []byte, env Env) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	d := &decoder{
		file:   name,
		expand: &expander{getenv: env.Getenv, readFile: env.ReadFile, dir: filepath.Dir(name)},
		pos:    map[string]position{},
		failed: map[string]bool{},
	}
	cfg := &Config{File: name}
	if len(root.Content) == 0 {
		d.errorf(nil, "", "the file is empty; see the README for a starting point")
		return nil, d.errs
	}
	d.decode(root.Content[0], reflect.ValueOf(cfg).Elem(), "")
	cfg.applyDefaults()
	cfg.StateSnapshot = snapshotPath(cfg.StateSnapshot, cfg.Store, env.Getenv)
	d.validate(cfg)
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	cfg.Warnings = d.warnings
	cfg.Sources = append([]string{name}, d.expand.files...)
	// Certificates and CA bundles are watched too: a renewed one is
	// picked up like any other change.
	for _, t := range []*TLS{cfg.TLS, cfg.Admin.TLS} {
		if t != nil {
			cfg.Sources = append(cfg.Sources, t.files()...)
		}
	}
	for _, u := range []Upstream{cfg.Backends.Legacy, cfg.Backends.Modern} {
		if u.TLS != nil && u.TLS.CA != "" {
			cfg.Sources = append(cfg.Sources, u.TLS.CA)
		}
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a YAML syntax error; yaml.v3 reports them as
// "yaml: line N: …".
func syntaxError(name string, err error) Error {
	e := Error{File: name, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Column, e.Msg = 1, m[2]
	}
	return e
}
