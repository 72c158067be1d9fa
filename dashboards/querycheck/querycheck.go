// Package querycheck holds what the dashboard, alert and chart tests share:
// the metric families the agent really exports (read from its registry and
// from the DogStatsD catalog), the metric names and label matchers used by
// PromQL and Datadog queries, and a strictness check for Datadog API types.
//
// It exists so that no dashboard goes blank and no alert watches nothing:
// a renamed metric fails a test instead of a 3 a.m. page that never comes.
package querycheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flink-agent/flink-agent/internal/agent"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// Family is one exported Prometheus metric family.
type Family struct {
	Name   string
	Labels []string // variable and constant labels
}

// TargetLabels are added by the scrape, not by the agent: the PodMonitor's
// target labels, cluster/namespace from the agent's identity (constant labels
// that RegisterMetrics, without an identity, does not set), and the
// relabelled job and component.
var TargetLabels = []string{"cluster", "namespace", "pod", "container", "instance", "job", "component", "endpoint"}

// Synthetic are the series Prometheus itself writes for every target.
var Synthetic = map[string]Family{
	"up": {Name: "up"},
}

// recorder is a prometheus.Registerer that only reads descriptors.
type recorder struct {
	descs []*prometheus.Desc
	empty int // collectors that describe nothing (unchecked collectors)
}

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	n := 0
	for d := range ch {
		r.descs = append(r.descs, d)
		n++
	}
	if n == 0 {
		r.empty++
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

var (
	descName     = regexp.MustCompile(`^Desc\{fqName: "((?:[^"\\]|\\.)*)"`)
	descConst    = regexp.MustCompile(`constLabels: \{(.*)\}, variableLabels: \{([^}]*)\}\}$`)
	constLabelNm = regexp.MustCompile(`(?:^|,)([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// AgentFamilies registers the agent's metrics (agent.RegisterMetrics) on a
// recording Registerer and returns every family by name. Desc has no
// accessors, so its String form is parsed.
func AgentFamilies() (map[string]Family, error) {
	r := &recorder{}
	if err := agent.RegisterMetrics(r); err != nil {
		return nil, fmt.Errorf("agent.RegisterMetrics: %w", err)
	}
	if r.empty > 0 {
		return nil, fmt.Errorf("agent.RegisterMetrics registered %d collector(s) that describe no metric: their names cannot be checked", r.empty)
	}
	fams := map[string]Family{}
	for _, d := range r.descs {
		s := d.String()
		m := descName.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("cannot read the name from %s", s)
		}
		f := Family{Name: m[1]}
		if c := descConst.FindStringSubmatch(s); c != nil {
			for _, cm := range constLabelNm.FindAllStringSubmatch(c[1], -1) {
				f.Labels = append(f.Labels, cm[1])
			}
			for _, v := range strings.Split(c[2], ",") {
				v = strings.TrimSuffix(strings.TrimPrefix(v, "c("), ")")
				if v != "" {
					f.Labels = append(f.Labels, v)
				}
			}
		}
		fams[f.Name] = f
	}
	return fams, nil
}

// Lookup resolves a name used in a query to its family: the family itself
// (the agent's, Prometheus's own, or the Flink Kubernetes Operator's),
// or a histogram/summary family for its _bucket, _sum and _count series.
// Descriptors carry no metric type, so a family named *_total (a counter, by
// the naming rules the agent follows) is never taken as a histogram.
func Lookup(fams map[string]Family, name string) (Family, bool) {
	if f, ok := fams[name]; ok {
		return f, true
	}
	if f, ok := Synthetic[name]; ok {
		return f, true
	}
	if f, ok := Operator[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := fams[base]; ok && !strings.HasSuffix(base, "_total") {
				if suffix == "_bucket" {
					f.Labels = append(slices.Clone(f.Labels), "le")
				}
				return f, true
			}
		}
	}
	return Family{}, false
}

var grafanaRange = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)

// ParsePromQL parses a PromQL expression. Grafana's range variables
// ($__rate_interval, $__interval, $__range) are replaced by a duration first;
// other variables only appear inside quoted matcher values and parse as is.
func ParsePromQL(expr string) (parser.Expr, error) {
	expr = grafanaRange.ReplaceAllString(expr, "5m")
	return parser.NewParser(parser.Options{}).ParseExpr(expr)
}

// Selectors returns every vector selector in expr.
func Selectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// CheckPromQL reports every problem with expr: a parse error, a selector
// without a metric name, a metric the agent does not export, or a matcher on
// a label the metric does not have. It returns the metric names used.
func CheckPromQL(fams map[string]Family, expr string) (names []string, problems []string) {
	e, err := ParsePromQL(expr)
	if err != nil {
		return nil, []string{fmt.Sprintf("does not parse: %v", err)}
	}
	sels := Selectors(e)
	if len(sels) == 0 {
		problems = append(problems, "selects no metric")
	}
	for _, vs := range sels {
		ps, name := checkMatchers(fams, vs.LabelMatchers)
		problems = append(problems, ps...)
		if name != "" {
			names = append(names, name)
		}
	}
	return names, problems
}

func checkMatchers(fams map[string]Family, ms []*labels.Matcher) (problems []string, name string) {
	for _, m := range ms {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	if name == "" {
		return []string{fmt.Sprintf("selector %v has no metric name", ms)}, ""
	}
	f, ok := Lookup(fams, name)
	if !ok {
		return []string{fmt.Sprintf("metric %q is not exported by the agent", name)}, name
	}
	allowed := append(slices.Clone(f.Labels), TargetLabels...)
	for _, m := range ms {
		if m.Name != model.MetricNameLabel && !slices.Contains(allowed, m.Name) {
			problems = append(problems, fmt.Sprintf("metric %q has no label %q (labels: %s)", name, m.Name, strings.Join(f.Labels, ", ")))
		}
	}
	return problems, name
}

// CheckSelector checks a bare selector such as label_values()'s first
// argument.
func CheckSelector(fams map[string]Family, sel string) (name string, problems []string) {
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
	if err != nil {
		return "", []string{fmt.Sprintf("selector %q does not parse: %v", sel, err)}
	}
	problems, name = checkMatchers(fams, ms)
	return name, problems
}

// ---------------------------------------------------------------- Datadog

// DatadogCatalog indexes dogstatsd.Catalog() by name.
func DatadogCatalog() map[string]dogstatsd.Metric {
	c := map[string]dogstatsd.Metric{}
	for _, m := range dogstatsd.Catalog() {
		c[m.Name] = m
	}
	return c
}

// DatadogGlobalTags are on every point the agent sends (identity tags).
var DatadogGlobalTags = []string{"cluster", "namespace", "pod", "component"}

var helpTag = regexp.MustCompile(`\b([a-z][a-z0-9_]*):`)

// DatadogTags are the tags a catalogued metric carries: the global ones and
// those its Help lists ("(job_name:, reason:)"), as the catalog documents.
func DatadogTags(m dogstatsd.Metric) []string {
	tags := slices.Clone(DatadogGlobalTags)
	for _, t := range helpTag.FindAllStringSubmatch(m.Help, -1) {
		tags = append(tags, t[1])
	}
	return tags
}

// A Datadog metric query: aggregator:metric{scope} [by {tags}] [.fn()].
var ddQuery = regexp.MustCompile(`(?:^|[^A-Za-z0-9_.])(avg|sum|min|max|count|p\d{1,2}(?:\.\d+)?):([A-Za-z][A-Za-z0-9_.]*)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?((?:\.[a-z_]+\(\))*)`)

// DatadogMetric is one metric reference inside a Datadog query.
type DatadogMetric struct {
	Aggregator, Name string
	Scope, By        []string
	Functions        string
}

// ParseDatadogQuery finds every metric reference in a Datadog metric query
// or monitor query.
func ParseDatadogQuery(q string) []DatadogMetric {
	var out []DatadogMetric
	for _, m := range ddQuery.FindAllStringSubmatch(q, -1) {
		dm := DatadogMetric{Aggregator: m[1], Name: m[2], Functions: m[5]}
		for _, s := range strings.Split(m[3], ",") {
			if s = strings.TrimSpace(s); s != "" {
				dm.Scope = append(dm.Scope, s)
			}
		}
		for _, s := range strings.Split(m[4], ",") {
			if s = strings.TrimSpace(s); s != "" {
				dm.By = append(dm.By, s)
			}
		}
		out = append(out, dm)
	}
	return out
}

// CheckDatadogQuery reports what is wrong with a Datadog query: no metric,
// a metric not in the catalog, a percentile aggregator on a metric that is
// not a distribution, .as_count() on a gauge, a tag the metric does not
// carry. templateVars maps $name to the tag key it filters.
func CheckDatadogQuery(q string, templateVars map[string]string) (names []string, problems []string) {
	cat := DatadogCatalog()
	refs := ParseDatadogQuery(q)
	if len(refs) == 0 {
		return nil, []string{fmt.Sprintf("query %q references no metric", q)}
	}
	for _, r := range refs {
		names = append(names, r.Name)
		m, ok := cat[r.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %q is not in dogstatsd.Catalog()", r.Name))
			continue
		}
		if strings.HasPrefix(r.Aggregator, "p") && m.Kind != dogstatsd.Distribution {
			problems = append(problems, fmt.Sprintf("%s:%s: percentiles need a distribution, %s is a %s", r.Aggregator, r.Name, r.Name, m.Kind))
		}
		if strings.Contains(r.Functions, ".as_count()") && m.Kind == dogstatsd.Gauge {
			problems = append(problems, fmt.Sprintf("%s.as_count(): %s is a gauge", r.Name, r.Name))
		}
		tags := DatadogTags(m)
		var used []string
		for _, s := range r.Scope {
			switch {
			case s == "*":
			case strings.HasPrefix(s, "$"):
				key, ok := templateVars[strings.TrimPrefix(s, "$")]
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: unknown template variable %s", r.Name, s))
					continue
				}
				used = append(used, key)
			default:
				key, _, _ := strings.Cut(strings.TrimPrefix(s, "!"), ":")
				used = append(used, key)
			}
		}
		used = append(used, r.By...)
		for _, t := range used {
			if !slices.Contains(tags, t) {
				problems = append(problems, fmt.Sprintf("%s has no tag %q (tags: %s)", r.Name, t, strings.Join(tags, ", ")))
			}
		}
	}
	return names, problems
}

// UnparsedFields walks a decoded datadog-api-client-go value and returns the
// path of every UnparsedObject that is set and every AdditionalProperties
// that is not empty. The generated types accept anything: unknown fields land
// in AdditionalProperties, invalid enums and failed oneOf matches in
// UnparsedObject. Empty means the JSON decoded strictly.
func UnparsedFields(v any) []string {
	var out []string
	walk(reflect.ValueOf(v), "$", &out, map[uintptr]bool{})
	sort.Strings(out)
	return out
}

func walk(v reflect.Value, path string, out *[]string, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		walk(v.Elem(), path, out, seen)
	case reflect.Interface:
		if !v.IsNil() {
			walk(v.Elem(), path, out, seen)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f, fv := t.Field(i), v.Field(i)
			switch f.Name {
			case "UnparsedObject":
				if !isEmpty(fv) {
					*out = append(*out, fmt.Sprintf("%s (%s): did not decode: %v", path, t.Name(), describe(fv)))
				}
				continue
			case "AdditionalProperties":
				if fv.Len() > 0 {
					keys := fv.MapKeys()
					names := make([]string, len(keys))
					for i, k := range keys {
						names[i] = k.String()
					}
					sort.Strings(names)
					*out = append(*out, fmt.Sprintf("%s (%s): unknown field(s) %s", path, t.Name(), strings.Join(names, ", ")))
				}
				continue
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
				name = tag
			}
			walk(fv, path+"."+name, out, seen)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out, seen)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			walk(iter.Value(), fmt.Sprintf("%s[%v]", path, iter.Key()), out, seen)
		}
	}
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Map, reflect.Slice:
		return v.Len() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return v.IsZero()
}

func describe(v reflect.Value) string {
	if v.CanInterface() {
		s := fmt.Sprintf("%v", v.Interface())
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return s
	}
	return v.Type().String()
}

// KeepCopy fails t unless copyPath is byte-identical to canonical; with
// update it rewrites the copy first. Helm reads only files inside the chart,
// so the chart carries copies of the canonical rules and dashboards.
func KeepCopy(t interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
	Errorf(string, ...any)
}, canonical, copyPath string, update bool, howToUpdate string) {
	t.Helper()
	want, err := os.ReadFile(canonical)
	if err != nil {
		t.Fatal(err)
	}
	if update {
		if err := os.MkdirAll(filepath.Dir(copyPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(copyPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatalf("%v (run `%s`)", err, howToUpdate)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s: run `%s`", copyPath, canonical, howToUpdate)
	}
}
