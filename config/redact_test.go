package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strangler/config/configfile"
)

// password is what the cases below hide; it has characters that need
// escaping in a URL and in a key=value string.
const password = "Sup3r/S3cret&x"

// TestPasswordsNeverShow loads configurations that carry a password in
// every place a database or backend address can hold one, valid and not,
// and checks that neither config print nor the load error shows it.
func TestPasswordsNeverShow(t *testing.T) {
	esc := strings.NewReplacer("/", "%2F", "&", "%26").Replace(password)
	for _, c := range []struct {
		name string
		env  map[string]string
	}{
		{"the store's userinfo", map[string]string{"STORE": "postgres://app:" + esc + "@db:5432/strangler"}},
		{"the store's query", map[string]string{"STORE": "postgres://app@db:5432/strangler?sslmode=require&password=" + esc}},
		{"the store's sslpassword", map[string]string{"STORE": "postgres://app@db/strangler?sslpassword=" + esc}},
		{"an unescaped store password", map[string]string{"STORE": "postgres://app:" + password + "@db:5432/strangler"}},
		{"a key=value store", map[string]string{"STORE": "host=db user=app password='" + password + "' dbname=strangler"}},
		{"a MySQL DSN as the store", map[string]string{"STORE": "app:" + password + "@tcp(db:3306)/strangler"}},
		{"the backfill source's query", map[string]string{"SOURCE": "mysql://legacy@db:3306/legacy?password=" + esc}},
		{"the backfill target's query", map[string]string{"TARGET": "postgres://modern@db/modern?password=" + esc + "&sslmode=disable"}},
		{"the backfill source's userinfo", map[string]string{"SOURCE": "mysql://legacy:" + esc + "@db:3306/legacy"}},
		{"an unescaped backfill source password", map[string]string{"SOURCE": "mysql://legacy:" + password + "@db:3306/legacy"}},
		{"a backend URL's userinfo", map[string]string{"LEGACY": "http://svc:" + esc + "@legacy.internal"}},
		{"a backend URL's query", map[string]string{"LEGACY": "http://legacy.internal/?password=" + esc}},
		{"an unescaped backend password", map[string]string{"LEGACY": "http://svc:" + password + "@legacy.internal"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{
				"STORE":  "sqlite:strangler.db",
				"LEGACY": "http://legacy.internal:8080",
				"SOURCE": "mysql://legacy@db:3306/legacy",
				"TARGET": "postgres://modern@db:5432/modern",
			}
			for k, v := range c.env {
				env[k] = v
			}
			path := filepath.Join(t.TempDir(), "strangler.yaml")
			yaml := `store: "${STORE}"
backends:
  legacy: { url: "${LEGACY}" }
  modern: { url: "http://modern.internal:9090" }
backfill:
  source: "${SOURCE}"
  target: "${TARGET}"
  tables:
    - { name: patients, from: Patient, key: Id, to: patients, target_key: legacy_id, columns: { legacy_id: Id } }
`
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var shown string
			cfg, err := configfile.Load(path, testEnv(env))
			if err != nil {
				shown = err.Error()
			} else {
				out, err := configfile.Print(cfg)
				if err != nil {
					t.Fatal(err)
				}
				shown = string(out)
				if !strings.Contains(shown, "xxxxx") {
					t.Errorf("config print shows no mask:\n%s", shown)
				}
			}
			for _, form := range []string{password, esc, "Sup3r", "S3cret"} {
				if strings.Contains(shown, form) {
					t.Errorf("%q shows in:\n%s", form, shown)
				}
			}
		})
	}
}

// TestPlaceholderValuesNeverShowInErrors: a placeholder whose variable
// or file holds a value the field cannot take (a secret in the wrong
// place, the wrong variable) is refused naming the placeholder, never
// the value: the message goes to the reload log and to CI logs.
func TestPlaceholderValuesNeverShowInErrors(t *testing.T) {
	const secret = "S3cr3t-hunter2\"x"
	backends := "backends:\n  legacy: {url: \"http://l\"}\n  modern: {url: \"http://m\"}\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"a duration", "backends:\n  legacy: {url: \"http://l\", timeout: \"${SECRET}\"}\n  modern: {url: \"http://m\"}\n", `backends.legacy.timeout: invalid duration "${SECRET}"`},
		{"a boolean", "debug_headers: ${SECRET}\n" + backends, `debug_headers: want true or false, got "${SECRET}"`},
		{"a store", "store: ${SECRET}\n" + backends, `store: invalid store "${SECRET}"`},
		{"an address", "listen: \"${SECRET}\"\n" + backends, `listen: invalid address "${SECRET}"`},
		{"a role", "admin: {tokens: [{name: a, token: \"0123456789abcdef0\", role: \"${SECRET}\"}]}\n" + backends, `unknown role "${SECRET}"`},
		{"a token's name", "admin: {tokens: [{name: \"${SECRET}\", token: \"0123456789abcdef0\", role: admin}]}\n" + backends, `invalid name "${SECRET}"`},
		{"a size", "max_body: ${SECRET}\n" + backends, `max_body: invalid size "${SECRET}"`},
		{"part of a value", "listen: \"x${SECRET}\"\n" + backends, `listen: invalid address "x${SECRET}"`},
		{"a file's contents", "listen: \"${file:secret.txt}\"\n" + backends, `listen: invalid address "${file:secret.txt}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := configfile.Env{
				Getenv:   func(string) string { return secret },
				ReadFile: func(string, int64) ([]byte, error) { return []byte(secret), nil },
			}
			_, err := configfile.Parse("a.yaml", []byte(tc.doc), env)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the value: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want it to say %s", err, tc.want)
			}
		})
	}
}
