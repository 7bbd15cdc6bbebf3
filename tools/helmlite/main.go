// helmlite renders and lints a Helm 3 chart where no helm binary can be installed.
//
// It uses the engine Helm 3 uses (Go text/template with the sprig v3 function library) and follows
// Helm's documented behaviour for what this project's chart needs: values.yaml deep-merged with -f
// files and -set assignments, the .Release / .Chart / .Values / .Capabilities / .Template objects,
// include, tpl, required, toYaml, fromYaml, toJson, fromJson, lookup (always empty, as in
// `helm template`), templates whose name starts with "_" defined but not rendered, NOTES.txt not
// rendered, "<no value>" printed as an empty string, manifests in Helm's install order, and the
// chart's kubeVersion constraint checked against the stated Kubernetes version.
//
// Not supported: subcharts and dependencies, .Files, hooks, values.schema.json validation (the
// project checks the schema in test/unit/helm-schema.test.ts). Where a real helm is on PATH, use it.
//
//	helmlite [-name REL] [-namespace NS] [-kube-version V] [-f values.yaml]... [-set k=v]... CHART
//	helmlite -lint [-strict] [-f values.yaml]... [-set k=v]... CHART
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v2"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.27.0", "Kubernetes version the render assumes")
	lint := flag.Bool("lint", false, "lint the chart instead of printing the rendered manifests")
	strict := flag.Bool("strict", false, "with -lint: a missing value is an error, as with `helm lint --strict`")
	var files, sets listFlag
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	flag.Var(&sets, "set", "value assignment a.b=c (repeatable; wins over files)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helmlite [-lint [-strict]] [-name REL] [-namespace NS] [-f FILE]... [-set k=v]... CHART")
		os.Exit(2)
	}
	chart, err := loadChart(flag.Arg(0))
	if err == nil {
		var values map[string]interface{}
		values, err = chart.values(files, sets)
		if err == nil {
			r := renderer{chart: chart, release: *name, namespace: *namespace, kube: *kubeVersion}
			if *lint {
				err = r.lint(values, *strict)
			} else {
				var out string
				out, err = r.render(values)
				fmt.Print(out)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

// ---- chart ----

type chart struct {
	dir       string
	meta      map[string]interface{}
	defaults  map[string]interface{}
	templates map[string]string // name (chart/templates/file) -> text
}

func loadChart(dir string) (*chart, error) {
	c := &chart{dir: dir, templates: map[string]string{}}
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	if c.meta, err = parseYamlMap(raw); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	if raw, err = os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if c.defaults, err = parseYamlMap(raw); err != nil {
			return nil, fmt.Errorf("values.yaml: %w", err)
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "charts")); err == nil {
		return nil, errors.New("subcharts (charts/) are not supported")
	}
	chartName, _ := c.meta["name"].(string)
	tdir := filepath.Join(dir, "templates")
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		text, err := os.ReadFile(p)
		c.templates[filepath.ToSlash(filepath.Join(chartName, rel))] = string(text)
		return err
	})
	return c, err
}

func (c *chart) name() string { s, _ := c.meta["name"].(string); return s }

// values: values.yaml, then each -f file, then each -set, deep-merged (maps merge, anything else replaces).
func (c *chart) values(files, sets []string) (map[string]interface{}, error) {
	out := deepCopy(c.defaults)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := parseYamlMap(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = mergeMaps(out, m)
	}
	for _, s := range sets {
		m, err := parseSet(s)
		if err != nil {
			return nil, fmt.Errorf("-set %s: %w", s, err)
		}
		out = mergeMaps(out, m)
	}
	return out, nil
}

// parseYamlMap reads YAML the way Helm does: through JSON, so numbers are float64 and keys strings.
func parseYamlMap(raw []byte) (map[string]interface{}, error) {
	var v interface{}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	v, err := jsonRoundTrip(v)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return map[string]interface{}{}, nil
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return nil, errors.New("not a map")
	}
	return m, nil
}

func jsonRoundTrip(v interface{}) (interface{}, error) {
	b, err := json.Marshal(stringKeys(v))
	if err != nil {
		return nil, err
	}
	var out interface{}
	err = json.Unmarshal(b, &out)
	return out, err
}

func stringKeys(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = stringKeys(x)
		}
		return m
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = stringKeys(x)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(t))
		for i, x := range t {
			l[i] = stringKeys(x)
		}
		return l
	}
	return v
}

func deepCopy(m map[string]interface{}) map[string]interface{} {
	c, _ := stringKeys(m).(map[string]interface{})
	if c == nil {
		c = map[string]interface{}{}
	}
	return c
}

// mergeMaps: b over a. A null in b deletes the key, as in Helm.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := deepCopy(a)
	for k, v := range b {
		if v == nil {
			delete(out, k)
			continue
		}
		if bm, ok := v.(map[string]interface{}); ok {
			if am, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = stringKeys(v)
	}
	return out
}

var indexedKey = regexp.MustCompile(`^([^\[\]]+)\[(\d+)\]$`)

// parseSet reads `a.b=c,d.e[0]=f` like Helm's --set: integers become int64, true/false booleans,
// null deletes, {x,y} a list; `\,` and `\.` escape.
func parseSet(s string) (map[string]interface{}, error) {
	out := map[string]interface{}{}
	for _, assignment := range splitUnescaped(s, ',', true) {
		eq := strings.IndexByte(assignment, '=')
		if eq < 0 {
			return nil, fmt.Errorf("key %q has no value", assignment)
		}
		path := splitUnescaped(assignment[:eq], '.', false)
		for i := range path {
			path[i] = unescape(path[i])
		}
		if err := setPath(out, path, typedValue(assignment[eq+1:])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// splitUnescaped splits at sep outside {…} (when braces) and not preceded by a backslash; escapes stay
// in the parts (unescape removes them at the end).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var parts []string
	start, depth := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case braces && s[i] == '{':
			depth++
		case braces && s[i] == '}':
			depth--
		case s[i] == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func typedValue(v string) interface{} {
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		var l []interface{}
		for _, x := range splitUnescaped(v[1:len(v)-1], ',', false) {
			l = append(l, typedValue(x))
		}
		return l
	}
	v = unescape(v)
	switch v {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && (v == "0" || !strings.HasPrefix(v, "0")) {
		return n
	}
	return v
}

func setPath(m map[string]interface{}, path []string, v interface{}) error {
	key := path[0]
	idx := -1
	if g := indexedKey.FindStringSubmatch(key); g != nil {
		key = g[1]
		idx, _ = strconv.Atoi(g[2])
	}
	last := len(path) == 1
	if idx < 0 {
		if last {
			m[key] = v
			return nil
		}
		child, ok := m[key].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			m[key] = child
		}
		return setPath(child, path[1:], v)
	}
	list, _ := m[key].([]interface{})
	for len(list) <= idx {
		list = append(list, nil)
	}
	if last {
		list[idx] = v
	} else {
		child, ok := list[idx].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			list[idx] = child
		}
		if err := setPath(child, path[1:], v); err != nil {
			return err
		}
	}
	m[key] = list
	return nil
}

// ---- rendering ----

type renderer struct {
	chart     *chart
	release   string
	namespace string
	kube      string
}

type kubeVersion struct{ Version, Major, Minor, GitVersion string }

type apiVersions []string

// Has reports whether an API group/version (or group/version/Kind) is served; helmlite states a
// plain cluster of its Kubernetes version: the built-in groups only.
func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v || strings.HasPrefix(v, x+"/") {
			return true
		}
	}
	return false
}

var builtinAPIs = apiVersions{"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1", "coordination.k8s.io/v1",
	"apiextensions.k8s.io/v1", "admissionregistration.k8s.io/v1", "scheduling.k8s.io/v1", "discovery.k8s.io/v1"}

func (r *renderer) top(values map[string]interface{}) map[string]interface{} {
	v, err := semver.NewVersion(r.kube)
	kv := kubeVersion{Version: r.kube, GitVersion: r.kube}
	if err == nil {
		kv.Major, kv.Minor = strconv.FormatUint(v.Major(), 10), strconv.FormatUint(v.Minor(), 10)
	}
	meta := map[string]interface{}{}
	for k, x := range r.chart.meta {
		meta[strings.ToUpper(k[:1])+k[1:]] = x // Helm exposes Chart.yaml fields capitalised
	}
	return map[string]interface{}{
		"Values": values,
		"Chart":  meta,
		"Release": map[string]interface{}{
			"Name": r.release, "Namespace": r.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": kv, "APIVersions": builtinAPIs,
			"HelmVersion": map[string]interface{}{"Version": "v3-compatible (helmlite)"},
		},
		"Template": map[string]interface{}{"BasePath": r.chart.name() + "/templates"},
	}
}

func (r *renderer) funcs(t **template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env") // Helm removes these two: a render must not depend on the machine
	delete(f, "expandenv")
	includes := map[string]int{}
	f["include"] = func(name string, data interface{}) (string, error) {
		if includes[name] > 1000 {
			return "", fmt.Errorf("include %q: too deep (recursion?)", name)
		}
		includes[name]++
		defer func() { includes[name]-- }()
		var b bytes.Buffer
		err := (*t).ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		c, err := (*t).Clone()
		if err != nil {
			return "", err
		}
		p, err := c.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = p.Execute(&b, data)
		return strings.ReplaceAll(b.String(), "<no value>", ""), err
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["toYaml"] = func(v interface{}) string {
		b, err := yaml.Marshal(jsonNormal(v))
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m, err := parseYamlMap([]byte(s))
		if err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	f["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	f["lookup"] = func(string, string, string, string) map[string]interface{} { return map[string]interface{}{} }
	return f
}

// jsonNormal gives toYaml Helm's output: values pass through JSON and back through YAML first, as
// sigs.k8s.io/yaml does (keys sorted; a float read from values prints as the number YAML reads back).
func jsonNormal(v interface{}) interface{} {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out yaml.MapSlice
	if yaml.Unmarshal(b, &out) == nil && (len(b) > 0 && b[0] == '{') {
		return out
	}
	var any interface{}
	_ = yaml.Unmarshal(b, &any)
	return any
}

func (r *renderer) parse(strict bool) (*template.Template, []string, error) {
	var t *template.Template
	t = template.New("chart")
	if strict {
		t.Option("missingkey=error")
	} else {
		t.Option("missingkey=zero")
	}
	t.Funcs(r.funcs(&t))
	names := make([]string, 0, len(r.chart.templates))
	for n := range r.chart.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	var rendered []string
	for _, n := range names {
		if _, err := t.New(n).Parse(r.chart.templates[n]); err != nil {
			return nil, nil, err
		}
		base := filepath.Base(n)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" {
			continue
		}
		rendered = append(rendered, n)
	}
	return t, rendered, nil
}

type manifest struct {
	source, text, kind string
}

func (r *renderer) manifests(values map[string]interface{}, strict bool) ([]manifest, error) {
	if c, ok := r.chart.meta["kubeVersion"].(string); ok && c != "" {
		con, err := semver.NewConstraint(c)
		if err != nil {
			return nil, fmt.Errorf("Chart.yaml kubeVersion: %w", err)
		}
		if v, err := semver.NewVersion(r.kube); err != nil || !con.Check(v) {
			return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, r.kube)
		}
	}
	t, names, err := r.parse(strict)
	if err != nil {
		return nil, err
	}
	top := r.top(values)
	var out []manifest
	for _, n := range names {
		top["Template"].(map[string]interface{})["Name"] = n
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, n, top); err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(b.String(), "<no value>", "")
		for _, doc := range splitDocuments(text) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			out = append(out, manifest{source: n, text: doc, kind: kindOf(doc)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return installRank(out[i].kind) < installRank(out[j].kind) })
	return out, nil
}

func (r *renderer) render(values map[string]interface{}) (string, error) {
	ms, err := r.manifests(values, false)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.source, strings.Trim(m.text, "\n"))
	}
	return b.String(), nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func splitDocuments(s string) []string { return docSeparator.Split(s, -1) }

var commentLine = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(s string) string { return commentLine.ReplaceAllString(s, "") }

func kindOf(doc string) string {
	var head struct{ Kind string }
	_ = yaml.Unmarshal([]byte(doc), &head)
	return head.Kind
}

// Helm's install order (pkg/releaseutil InstallOrder); unknown kinds go last.
var installOrder = []string{"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
	"StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"}

func installRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

// ---- lint ----

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func (r *renderer) lint(values map[string]interface{}, strict bool) error {
	var problems []string
	add := func(format string, a ...interface{}) { problems = append(problems, fmt.Sprintf(format, a...)) }
	meta := r.chart.meta
	if meta["apiVersion"] != "v2" {
		add("Chart.yaml: apiVersion must be v2, got %v", meta["apiVersion"])
	}
	if n, _ := meta["name"].(string); n == "" || !dns1123.MatchString(n) {
		add("Chart.yaml: name %q is not a valid chart name", n)
	} else if base := filepath.Base(filepath.Clean(r.chart.dir)); base != n {
		add("Chart.yaml: name %q must match the chart directory %q", n, base)
	}
	if v, _ := meta["version"].(string); v == "" {
		add("Chart.yaml: version is required")
	} else if _, err := semver.StrictNewVersion(v); err != nil {
		add("Chart.yaml: version %q is not SemVer 2", v)
	}
	if t, _ := meta["type"].(string); t != "" && t != "application" && t != "library" {
		add("Chart.yaml: type %q is neither application nor library", t)
	}
	if _, ok := r.chart.templates[r.chart.name()+"/templates/NOTES.txt"]; !ok && strict {
		add("templates/NOTES.txt is missing")
	}
	ms, err := r.manifests(values, strict)
	if err != nil {
		add("render: %v", err)
	}
	seen := map[string]string{}
	for _, m := range ms {
		var obj map[string]interface{}
		if err := yaml.Unmarshal([]byte(m.text), &obj); err != nil {
			add("%s: not valid YAML: %v", m.source, err)
			continue
		}
		md, _ := stringKeys(obj["metadata"]).(map[string]interface{})
		name, _ := md["name"].(string)
		switch {
		case obj["apiVersion"] == nil || obj["apiVersion"] == "":
			add("%s: a document has no apiVersion", m.source)
		case m.kind == "":
			add("%s: a document has no kind", m.source)
		case name == "":
			add("%s: %s has no metadata.name", m.source, m.kind)
		case len(name) > 253 || !dns1123.MatchString(name):
			add("%s: %s name %q is not a valid DNS-1123 name", m.source, m.kind, name)
		}
		id := fmt.Sprintf("%v/%s/%s", obj["apiVersion"], m.kind, name)
		if prev, dup := seen[id]; dup {
			add("%s: %s is also rendered by %s", m.source, id, prev)
		}
		seen[id] = m.source
	}
	if len(problems) > 0 {
		return fmt.Errorf("lint: %d problem(s)\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	fmt.Printf("==> Linting %s\n1 chart(s) linted, 0 chart(s) failed\n", r.chart.dir)
	return nil
}
