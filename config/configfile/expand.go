package configfile

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"strangler/config"
	"strangler/internal/filecap"
	"strangler/internal/human"
)

// expander replaces ${VAR}, ${VAR:-default} and ${file:/path} in values;
// $$ stands for a literal $.
type expander struct {
	// getenv reads the environment; an empty value counts as unset, so
	// ${VAR:-} is how a file says empty is fine.
	getenv   func(string) string
	readFile func(string, int64) ([]byte, error)
	// dir resolves relative ${file:…} paths against the config file's folder.
	dir string
	// files records every file read, so a reload can watch them.
	files []string
	// read holds what each file read gave: a file named twice is read
	// once, so one load sees one version of it.
	read map[string]string
	// produced counts the bytes placeholders gave, up to maxExpanded.
	produced int
}

// maxExpanded bounds the bytes placeholders add to a file's values, over
// all of them: a value with a ${file:…} of a few MiB, aliased thousands
// of times or written thousands of times in one value, would otherwise
// build gigabytes of text. It is the bound on the file itself.
const maxExpanded = filecap.Limit

// errExpandedTooMuch is reported once, where the bound is passed; the
// values after it fail without another message.
var errExpandedTooMuch = fmt.Errorf("placeholders give the values more than %s in all, the most a configuration holds; read large files directly, not through ${file:…}", human.Bytes(maxExpanded))

// errPastBound fails a value after errExpandedTooMuch was reported.
var errPastBound = errors.New("past the bound on placeholders")

func (x *expander) expand(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	if name, ok := strings.CutPrefix(s, "$"); ok && config.IsParamName(name) {
		// A shell's or Compose's $VAR is not expanded here: the value
		// would be the text "$OPS_TOKEN", an admin token known to
		// anyone reading the file.
		return "", fmt.Errorf("is the text %s, which is not expanded: write ${%s} for the variable, or $%s for the text", s, name, s)
	}
	if x.produced > maxExpanded {
		return "", errPastBound
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("placeholder %q is not closed with }", s[i:])
		}
		if strings.Contains(s[i+2:i+end], "${") {
			// ${A:-${B}} would end at the first }: A's default the
			// text "${B" and a } after it, so a token read as the
			// literal "${B}", which anyone reading the file knows.
			return "", fmt.Errorf("placeholder %q holds another; placeholders do not nest: write ${VAR}, ${VAR:-text} or ${file:/path}", s[i:])
		}
		v, err := x.resolve(s[i+2 : i+end])
		if err != nil {
			return "", err
		}
		if x.produced += len(v); x.produced > maxExpanded {
			return "", errExpandedTooMuch
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func (x *expander) resolve(expr string) (string, error) {
	if path, ok := strings.CutPrefix(expr, "file:"); ok {
		return x.file(path)
	}
	name, def, hasDefault := strings.Cut(expr, ":-")
	if !config.IsParamName(name) {
		return "", fmt.Errorf("invalid placeholder ${%s}; write ${VAR}, ${VAR:-default} or ${file:/path}", expr)
	}
	if v := x.getenv(name); v != "" {
		return v, nil
	}
	if hasDefault {
		return def, nil
	}
	return "", fmt.Errorf("environment variable %s is not set or empty; set it or write ${%s:-default}", name, name)
}

func (x *expander) file(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("placeholder ${file:} names no file")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(x.dir, path)
	}
	if s, ok := x.read[path]; ok {
		return s, nil
	}
	data, err := x.readFile(path, filecap.Limit)
	if err != nil {
		return "", fmt.Errorf("placeholder ${file:%s}: %w", path, err)
	}
	x.files = append(x.files, path)
	// Secret files usually end in a newline that is not part of the secret.
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	if x.read == nil {
		x.read = map[string]string{}
	}
	x.read[path] = s
	return s, nil
}
