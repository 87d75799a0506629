// Package configfile reads strangler's YAML configuration file into a
// config.Config: placeholders expanded, every field decoded at its line,
// then completed and validated by package config. It is the only package
// that links the YAML parser, so that what the request path imports for
// the parsed types (package config) does not.
package configfile

import (
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"

	"strangler/config"
	"strangler/internal/mysqldsn"
)

// Env is how configuration reads the outside world: the environment for
// ${VAR} and the file system for ${file:…}. Tests pass their own.
type Env struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// Load reads, expands, decodes and validates the file at path. A non-nil
// error is either an I/O error or config.Errors naming every problem
// found.
func Load(path string, env Env) (*config.Config, error) {
	data, err := env.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, env)
}

// Parse is Load for a file already read; name is used in error messages and
// to resolve relative ${file:…} paths.
func Parse(name string, data []byte, env Env) (*config.Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, config.Errors{syntaxError(name, err)}
	}
	d := &decoder{
		file:   name,
		expand: &expander{getenv: env.Getenv, readFile: env.ReadFile, dir: filepath.Dir(name)},
		pos:    map[string]config.Position{},
		failed: map[string]bool{},
	}
	cfg := &config.Config{File: name}
	if len(root.Content) == 0 {
		d.errorf(nil, "", "the file is empty; see the README for a starting point")
		return nil, d.errs
	}
	d.decode(root.Content[0], reflect.ValueOf(cfg).Elem(), "")
	return config.Complete(cfg, config.Decoded{
		File: name, Errs: d.errs, Pos: d.pos, Failed: d.failed, Files: d.expand.files,
		Getenv: env.Getenv, MySQLDriverDSN: mysqldsn.DriverDSN,
	})
}

// Print renders the effective configuration, defaults included, as YAML
// with secrets and URL passwords redacted.
func Print(c *config.Config) ([]byte, error) { return yaml.Marshal(c) }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a YAML syntax error; yaml.v3 reports them as
// "yaml: line N: …".
func syntaxError(name string, err error) config.Error {
	e := config.Error{File: name, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Column, e.Msg = 1, m[2]
	}
	return e
}
