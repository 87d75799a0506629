package config

import "go.yaml.in/yaml/v3"

// Print renders the effective configuration, defaults included, as YAML
// with secrets and URL passwords redacted.
func (c *Config) Print() ([]byte, error) { return yaml.Marshal(c) }
