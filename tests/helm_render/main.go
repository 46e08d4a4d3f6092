// Command helm_render renders a Helm chart's templates the way `helm template` does, with Go's
// text/template (Helm's engine) and the small set of Helm and sprig functions the Nentang
// chart is written against. It uses the standard library only, so it builds anywhere Go is.
//
// Input (a JSON file, or standard input with -input -, made by tests/test_helm_chart.py from the chart's YAML):
//
//	{"values": {...}, "chart": {"Name": ..., "Version": ..., "AppVersion": ...},
//	 "release": {"Name": ..., "Namespace": ..., "IsInstall": true, ...},
//	 "kubeVersion": "v1.33.0", "apiVersions": ["v1", "apps/v1", ...]}
//
// Output (stdout, JSON): {"manifests": [{"name": "nentang/templates/x.yaml", "content": ...}],
// "notes": "..."}. A template error (required, fail, a parse error, a missing function) goes
// to stderr, and the exit status is 1.
//
// Like Helm: values keep JSON's numbers (float64), files whose name starts with "_" are only
// parsed, NOTES.txt is rendered apart, and "<no value>" becomes "". With -strict a missing map
// key is an error (as `helm lint --strict`), which catches misspelt .Values paths.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

type input struct {
	Values      map[string]interface{} `json:"values"`
	Chart       map[string]interface{} `json:"chart"`
	Release     map[string]interface{} `json:"release"`
	KubeVersion string                 `json:"kubeVersion"`
	APIVersions []string               `json:"apiVersions"`
}

type manifest struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

type output struct {
	Manifests []manifest `json:"manifests"`
	Notes     string     `json:"notes"`
}

// KubeVersion mirrors .Capabilities.KubeVersion.
type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

// VersionSet mirrors .Capabilities.APIVersions.
type VersionSet []string

// Has reports whether the API version (or "group/version/Kind") is known.
func (v VersionSet) Has(apiVersion string) bool {
	for _, known := range v {
		if known == apiVersion {
			return true
		}
	}
	return false
}

// Capabilities mirrors .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
}

const recursionLimit = 1000

func main() {
	chartDir := flag.String("chart", "", "the chart's directory")
	inputFile := flag.String("input", "", "the JSON input file")
	strict := flag.Bool("strict", false, "a missing map key is an error")
	flag.Parse()
	if *chartDir == "" || *inputFile == "" {
		fmt.Fprintln(os.Stderr, "usage: helm_render -chart DIR -input FILE.json|- [-strict]")
		os.Exit(2)
	}
	out, err := render(*chartDir, *inputFile, *strict)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func readInput(path string) (*input, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var in input
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if in.Values == nil {
		in.Values = map[string]interface{}{}
	}
	return &in, nil
}

func capabilities(in *input) Capabilities {
	version := in.KubeVersion
	if version == "" {
		version = "v1.33.0"
	}
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	for len(parts) < 2 {
		parts = append(parts, "0")
	}
	return Capabilities{
		KubeVersion: KubeVersion{Version: version, Major: parts[0], Minor: parts[1], GitVersion: version},
		APIVersions: VersionSet(in.APIVersions),
	}
}

func render(chartDir, inputFile string, strict bool) (*output, error) {
	in, err := readInput(inputFile)
	if err != nil {
		return nil, err
	}
	chartName, _ := in.Chart["Name"].(string)
	if chartName == "" {
		return nil, errors.New("input: chart.Name is required")
	}
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)

	t := template.New("gotpl")
	if strict {
		t.Option("missingkey=error")
	} else {
		t.Option("missingkey=zero")
	}
	included := map[string]int{}
	funcs := functions()
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if included[name] > recursionLimit {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	t.Funcs(funcs)

	var names []string
	for _, file := range files {
		info, err := os.Stat(file)
		if err != nil || info.IsDir() {
			continue
		}
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		name := chartName + "/templates/" + filepath.Base(file)
		if _, err := t.New(name).Parse(string(text)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}

	caps := capabilities(in)
	out := &output{Manifests: []manifest{}}
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		data := map[string]interface{}{
			"Values":       in.Values,
			"Chart":        in.Chart,
			"Release":      in.Release,
			"Capabilities": caps,
			"Template":     map[string]interface{}{"Name": name, "BasePath": chartName + "/templates"},
			"Files":        map[string]interface{}{},
		}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			out.Notes = text
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		out.Manifests = append(out.Manifests, manifest{Name: name, Content: text})
	}
	return out, nil
}

func functions() template.FuncMap {
	return template.FuncMap{
		"required": func(warn string, val interface{}) (interface{}, error) {
			if val == nil {
				return val, errors.New(warn)
			}
			if s, ok := val.(string); ok && s == "" {
				return val, errors.New(warn)
			}
			return val, nil
		},
		"fail":   func(msg string) (string, error) { return "", errors.New(msg) },
		"toYaml": toYAML,
		"toJson": func(v interface{}) string {
			data, err := json.Marshal(v)
			if err != nil {
				return ""
			}
			return string(data)
		},
		"nindent": func(spaces int, v string) string {
			return "\n" + indent(spaces, v)
		},
		"indent": indent,
		"quote": func(values ...interface{}) string {
			out := make([]string, 0, len(values))
			for _, v := range values {
				if v != nil {
					out = append(out, fmt.Sprintf("%q", strval(v)))
				}
			}
			return strings.Join(out, " ")
		},
		"default": func(d interface{}, given ...interface{}) interface{} {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"empty": empty,
		"trunc": func(c int, s string) string {
			if c < 0 && len(s)+c > 0 {
				return s[len(s)+c:]
			}
			if c >= 0 && len(s) > c {
				return s[:c]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"contains":   func(substr, s string) bool { return strings.Contains(s, substr) },
		"replace": func(old, new, src string) string {
			return strings.Replace(src, old, new, -1)
		},
		"lower":    strings.ToLower,
		"int":      func(v interface{}) int { return int(toInt64(v)) },
		"int64":    toInt64,
		"toString": strval,
		"kindIs": func(kind string, v interface{}) bool {
			return reflect.ValueOf(v).Kind().String() == kind
		},
		"hasKey": func(d map[string]interface{}, key string) bool {
			_, ok := d[key]
			return ok
		},
		"dict": func(pairs ...interface{}) map[string]interface{} {
			d := map[string]interface{}{}
			for i := 0; i < len(pairs); i += 2 {
				var v interface{}
				if i+1 < len(pairs) {
					v = pairs[i+1]
				}
				d[strval(pairs[i])] = v
			}
			return d
		},
		"list": func(v ...interface{}) []interface{} { return v },
		"ternary": func(whenTrue, whenFalse interface{}, condition bool) interface{} {
			if condition {
				return whenTrue
			}
			return whenFalse
		},
		"join": func(sep string, v interface{}) string {
			var parts []string
			value := reflect.ValueOf(v)
			if value.Kind() == reflect.Slice || value.Kind() == reflect.Array {
				for i := 0; i < value.Len(); i++ {
					item := value.Index(i).Interface()
					if item != nil {
						parts = append(parts, strval(item))
					}
				}
			} else if v != nil {
				parts = append(parts, strval(v))
			}
			return strings.Join(parts, sep)
		},
		"add": func(values ...interface{}) int64 {
			var sum int64
			for _, v := range values {
				sum += toInt64(v)
			}
			return sum
		},
		"sub":    func(a, b interface{}) int64 { return toInt64(a) - toInt64(b) },
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	}
}

func indent(spaces int, v string) string {
	pad := strings.Repeat(" ", spaces)
	return pad + strings.Replace(v, "\n", "\n"+pad, -1)
}

// strval is sprig's: how quote, toString and dict keys print a value.
func strval(v interface{}) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprintf("%v", v)
	}
}

// empty is sprig's: nil, zero numbers, false, and empty strings, lists and maps.
func empty(given interface{}) bool {
	g := reflect.ValueOf(given)
	if !g.IsValid() {
		return true
	}
	switch g.Kind() {
	case reflect.Array, reflect.Slice, reflect.Map, reflect.String:
		return g.Len() == 0
	case reflect.Bool:
		return !g.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return g.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return g.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return g.Float() == 0
	case reflect.Struct:
		return false
	default:
		return g.IsNil()
	}
}

// toInt64 is sprig's (through cast): numbers truncate, numeric strings parse, the rest is 0.
func toInt64(v interface{}) int64 {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int64:
		return v
	case int32:
		return int64(v)
	case float64:
		return int64(v)
	case float32:
		return int64(v)
	case bool:
		if v {
			return 1
		}
		return 0
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 0, 64); err == nil {
			return n
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return int64(f)
		}
		return 0
	default:
		return 0
	}
}

// toYAML is Helm's toYaml: the value through JSON (so keys sort and numbers print as JSON
// does), written as block YAML without the final newline. Strings that plain YAML could read
// as something else are double-quoted (JSON escaping is valid YAML).
func toYAML(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree interface{}
	if err := dec.Decode(&tree); err != nil {
		return ""
	}
	var b strings.Builder
	writeNode(&b, tree, 0)
	return strings.TrimSuffix(b.String(), "\n")
}

func writeNode(b *strings.Builder, v interface{}, level int) {
	pad := strings.Repeat(" ", level)
	switch v := v.(type) {
	case map[string]interface{}:
		if len(v) == 0 {
			b.WriteString(pad + "{}\n")
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(pad + scalar(k) + ":")
			writeValue(b, v[k], level, level+2)
		}
	case []interface{}:
		if len(v) == 0 {
			b.WriteString(pad + "[]\n")
			return
		}
		for _, item := range v {
			switch item := item.(type) {
			case map[string]interface{}:
				if len(item) == 0 {
					b.WriteString(pad + "- {}\n")
					continue
				}
				var inner strings.Builder
				writeNode(&inner, item, level+2)
				b.WriteString(pad + "- " + strings.TrimPrefix(inner.String(), pad+"  "))
			case []interface{}:
				if len(item) == 0 {
					b.WriteString(pad + "- []\n")
					continue
				}
				b.WriteString(pad + "-\n")
				writeNode(b, item, level+2)
			default:
				b.WriteString(pad + "- " + scalar(item) + "\n")
			}
		}
	default:
		b.WriteString(pad + scalar(v) + "\n")
	}
}

// writeValue writes a mapping's value after "key:"; lists sit at the key's own indentation,
// as Helm's toYaml writes them.
func writeValue(b *strings.Builder, v interface{}, keyLevel, childLevel int) {
	switch v := v.(type) {
	case map[string]interface{}:
		if len(v) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteString("\n")
		writeNode(b, v, childLevel)
	case []interface{}:
		if len(v) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		writeNode(b, v, keyLevel)
	default:
		b.WriteString(" " + scalar(v) + "\n")
	}
}

var plainWords = map[string]bool{
	"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true, "~": true,
}

func scalar(v interface{}) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case string:
		if isPlain(v) {
			return v
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSuffix(buf.String(), "\n")
	default:
		return fmt.Sprintf("%v", v)
	}
}

func isPlain(s string) bool {
	if s == "" || plainWords[strings.ToLower(s)] {
		return false
	}
	first := s[0]
	if !(first >= 'a' && first <= 'z' || first >= 'A' && first <= 'Z' || first == '_' || first == '/') {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '.' || r == '/'
		if !ok {
			return false
		}
	}
	return true
}
