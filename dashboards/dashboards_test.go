// Package dashboards holds the Grafana and Datadog dashboards. Its tests
// decode them strictly and check every query against what the agent exports.
package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/flink-agent/flink-agent/dashboards/querycheck"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

var update = flag.Bool("update", false, "rewrite the chart's copies of the dashboards")

const (
	grafanaFile = "grafana/flink-agent.json"
	datadogFile = "datadog/flink-agent.json"
	// Helm cannot read outside the chart, so the chart carries a copy.
	chartCopy = "../charts/flink-agent/files/dashboards/flink-agent.json"
)

// The subset of Grafana's dashboard model these dashboards use. Unknown
// fields fail the decode, so a typo in a key is caught here and not by a
// panel that silently ignores it.
type grafanaDashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	Description   string `json:"description"`
	Tags          []string
	Editable      bool   `json:"editable"`
	GraphTooltip  int    `json:"graphTooltip"`
	Refresh       string `json:"refresh"`
	SchemaVersion int    `json:"schemaVersion"`
	Version       int    `json:"version"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Timezone    string `json:"timezone"`
	Links       []any  `json:"links"`
	Annotations struct {
		List []struct {
			BuiltIn    int               `json:"builtIn"`
			Datasource grafanaDatasource `json:"datasource"`
			Enable     bool              `json:"enable"`
			Hide       bool              `json:"hide"`
			IconColor  string            `json:"iconColor"`
			Name       string            `json:"name"`
			Type       string            `json:"type"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaVariable struct {
	Type       string             `json:"type"`
	Name       string             `json:"name"`
	Label      string             `json:"label"`
	Datasource *grafanaDatasource `json:"datasource"`
	Definition string             `json:"definition"`
	Query      string             `json:"query"`
	Refresh    int                `json:"refresh"`
	IncludeAll bool               `json:"includeAll"`
	Multi      bool               `json:"multi"`
	AllValue   string             `json:"allValue"`
	Sort       int                `json:"sort"`
	Hide       int                `json:"hide"`
	Regex      string             `json:"regex"`
	Current    map[string]any     `json:"current"`
	Options    []any              `json:"options"`
}

type grafanaPanel struct {
	Type            string             `json:"type"`
	Title           string             `json:"title"`
	Description     string             `json:"description"`
	ID              int                `json:"id"`
	Collapsed       bool               `json:"collapsed"`
	Datasource      *grafanaDatasource `json:"datasource"`
	GridPos         struct{ H, W, X, Y int }
	FieldConfig     map[string]any  `json:"fieldConfig"`
	Options         map[string]any  `json:"options"`
	Transformations []any           `json:"transformations"`
	Targets         []grafanaTarget `json:"targets"`
	Panels          []grafanaPanel  `json:"panels"`
}

type grafanaTarget struct {
	RefID        string            `json:"refId"`
	Datasource   grafanaDatasource `json:"datasource"`
	Expr         string            `json:"expr"`
	LegendFormat *string           `json:"legendFormat"`
	Instant      bool              `json:"instant"`
	Range        *bool             `json:"range"`
	Format       string            `json:"format"`
	QueryType    string            `json:"queryType"`
}

func readGrafana(t *testing.T) grafanaDashboard {
	t.Helper()
	raw, err := os.ReadFile(grafanaFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var d grafanaDashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", grafanaFile, err)
	}
	return d
}

func promTargets(d grafanaDashboard) map[string][]string {
	out := map[string][]string{} // panel title -> exprs
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Datasource.Type == "prometheus" {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
		}
	}
	return out
}

func TestGrafanaStructure(t *testing.T) {
	d := readGrafana(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]grafanaVariable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("datasource variable: %+v, want a prometheus datasource variable", v)
	}
	if v := vars["loki_datasource"]; v.Type != "datasource" || v.Query != "loki" {
		t.Errorf("loki_datasource variable: %+v, want a loki datasource variable", v)
	}
	for _, name := range []string{"cluster", "namespace", "job_name", "pod"} {
		v, ok := vars[name]
		if !ok || v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("template variable %q: %+v, want a query variable on ${datasource}", name, v)
		}
	}

	ids := map[int]string{}
	var cells [][4]int
	for _, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, other, p.Title)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, c := range cells {
			if g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H {
				t.Errorf("panel %q at %+v overlaps another panel", p.Title, g)
			}
		}
		cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || (p.Datasource.UID != "${datasource}" && p.Datasource.UID != "${loki_datasource}") {
			t.Errorf("panel %q: datasource %+v, want ${datasource} or ${loki_datasource} (dashboards are provisioned into other Grafanas)", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != *p.Datasource {
				t.Errorf("panel %q target %s: datasource %+v differs from the panel's", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
}

var rangeSel = regexp.MustCompile(`\[([^\]]*)\]`)

// TestGrafanaCoversTheIssue checks the panels the dashboards issue lists.
func TestGrafanaCoversTheIssue(t *testing.T) {
	d := readGrafana(t)
	used := map[string]bool{}
	var all []string
	for title, exprs := range promTargets(d) {
		for _, e := range exprs {
			all = append(all, e)
			// Ranges follow the scrape interval ($__rate_interval), or the
			// dashboard's range for totals over it.
			for _, m := range rangeSel.FindAllStringSubmatch(e, -1) {
				if m[1] != "$__rate_interval" && m[1] != "$__range" {
					t.Errorf("panel %q: range [%s], want [$__rate_interval]: %s", title, m[1], e)
				}
			}
			pe, err := querycheck.ParsePromQL(e)
			if err != nil {
				t.Errorf("panel %q: %v: %s", title, err, e)
				continue
			}
			for _, vs := range querycheck.Selectors(pe) {
				used[vs.Name] = true
			}
		}
	}
	for _, want := range []string{
		"flink_checkpoint_duration_seconds_bucket", "flink_checkpoint_interval_seconds", "flink_checkpoint_failures_total",
		"flink_checkpoint_failures_s3_throttled_total", "flink_checkpoint_in_progress", "flink_checkpoint_stuck",
		"flink_checkpoint_oldest_in_progress_age_seconds", "flink_checkpoint_size_bytes",
		"flink_checkpoint_last_completed_timestamp_seconds", "flink_s3_throttle_events_total",
		"flink_job_restarts_total", "flink_job_uptime_seconds", "flink_vertex_backpressure_ratio", "flink_vertex_busy_ratio",
		"flink_jvm_heap_used_bytes", "flink_jvm_heap_max_bytes", "flink_jvm_gc_time_seconds_total",
		"flink_agent_loki_lag_seconds", "flink_agent_loki_entries_rejected_total", "flink_agent_redactions_total",
	} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
	for _, q := range []string{"0.5", "0.9", "0.99"} {
		if !slices.ContainsFunc(all, func(e string) bool {
			return strings.Contains(e, "histogram_quantile("+q+",") && strings.Contains(e, "flink_checkpoint_duration_seconds_bucket")
		}) {
			t.Errorf("no histogram_quantile(%s, …) over flink_checkpoint_duration_seconds_bucket", q)
		}
	}
	var logs *grafanaPanel
	for i := range d.Panels {
		if d.Panels[i].Type == "logs" {
			logs = &d.Panels[i]
		}
	}
	if logs == nil {
		t.Fatal("no Loki logs panel")
	}
	e := logs.Targets[0].Expr
	if !strings.Contains(e, `pod=~"$pod"`) {
		t.Errorf("logs panel query %q: want the selected pod's events", e)
	}
	// level is structured metadata with the shipper's level names
	// (shipper/parse.go: trace … fatal, lower case); Loki anchors regexes.
	m := regexp.MustCompile(`\| level=~"([^"]+)"`).FindStringSubmatch(e)
	if m == nil {
		t.Fatalf("logs panel query %q filters no level", e)
	}
	re := regexp.MustCompile("^(?:" + m[1] + ")$")
	for level, want := range map[string]bool{"warn": true, "error": true, "fatal": true, "info": false, "debug": false, "trace": false} {
		if re.MatchString(level) != want {
			t.Errorf("logs panel level filter %q on %q: match %t, want %t", m[1], level, !want, want)
		}
	}
}

// Loki stream labels the shipper sets (level, logger and thread are
// structured metadata, filtered after the selector).
var lokiLabels = []string{"cluster", "namespace", "pod", "component", "container", "filename"}

var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// TestGrafanaUsesExportedMetrics is the consistency check: every metric and
// label a panel or variable queries is one the agent exports.
func TestGrafanaUsesExportedMetrics(t *testing.T) {
	fams, err := querycheck.AgentFamilies()
	if err != nil {
		t.Fatal(err)
	}
	d := readGrafana(t)
	n := 0
	for title, exprs := range promTargets(d) {
		for _, e := range exprs {
			names, problems := querycheck.CheckPromQL(fams, e)
			n += len(names)
			for _, p := range problems {
				t.Errorf("panel %q: %s\n\t%s", title, p, e)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Query)
		if m == nil {
			t.Errorf("variable %q: query %q is not label_values(selector, label)", v.Name, v.Query)
			continue
		}
		name, problems := querycheck.CheckSelector(fams, m[1])
		for _, p := range problems {
			t.Errorf("variable %q: %s", v.Name, p)
		}
		if f, ok := querycheck.Lookup(fams, name); ok && !slices.Contains(append(f.Labels, querycheck.TargetLabels...), m[2]) {
			t.Errorf("variable %q: %s has no label %q", v.Name, name, m[2])
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Datasource.Type != "loki" {
				continue
			}
			sel := tg.Expr[:strings.Index(tg.Expr, "}")+1]
			ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
			if err != nil {
				t.Errorf("panel %q: stream selector %q: %v", p.Title, sel, err)
				continue
			}
			for _, m := range ms {
				if !slices.Contains(lokiLabels, m.Name) {
					t.Errorf("panel %q: %q is not a Loki stream label of the shipper (%v)", p.Title, m.Name, lokiLabels)
				}
				// Loki refuses a selector whose matchers all match "".
				if m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp && !m.Matches("") {
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no metric found in the dashboard: the test checks nothing")
	}
	t.Logf("%d metric references in %s checked against %d exported families", n, grafanaFile, len(fams))
}

// ---------------------------------------------------------------- Datadog

func readDatadog(t *testing.T) (datadogV1.Dashboard, any) {
	t.Helper()
	raw, err := os.ReadFile(datadogFile)
	if err != nil {
		t.Fatal(err)
	}
	var d datadogV1.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", datadogFile, err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	return d, generic
}

// TestDatadogStrict decodes the dashboard into datadog-api-client-go's types
// and fails on anything they did not understand, then checks that encoding
// it again gives the same document (nothing dropped or reshaped).
func TestDatadogStrict(t *testing.T) {
	d, generic := readDatadog(t)
	for _, f := range querycheck.UnparsedFields(&d) {
		t.Error(f)
	}
	again, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	var back any
	if err := json.Unmarshal(again, &back); err != nil {
		t.Fatal(err)
	}
	a, _ := json.MarshalIndent(generic, "", " ")
	b, _ := json.MarshalIndent(back, "", " ")
	if !bytes.Equal(a, b) {
		t.Errorf("the dashboard changes when re-encoded by datadogV1.Dashboard:\n%s", firstDiff(string(a), string(b)))
	}
	if d.LayoutType != datadogV1.DASHBOARDLAYOUTTYPE_ORDERED {
		t.Errorf("layout_type %q", d.LayoutType)
	}
	var tv []string
	for _, v := range d.TemplateVariables {
		tv = append(tv, v.Name)
	}
	if !slices.Equal(tv, []string{"cluster", "namespace", "job_name"}) {
		t.Errorf("template variables %v, want cluster, namespace, job_name", tv)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  file:       %s\n  re-encoded: %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths differ: %d vs %d lines", len(al), len(bl))
}

// ddQueries finds every metric query in a Datadog document: "q" strings and
// formula queries on the metrics data source; and the service checks of
// check_status widgets.
func ddQueries(v any, queries, checks *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if q, ok := x["q"].(string); ok {
			*queries = append(*queries, q)
		}
		if x["data_source"] == "metrics" {
			if q, ok := x["query"].(string); ok {
				*queries = append(*queries, q)
			}
		}
		if x["type"] == "check_status" {
			if c, ok := x["check"].(string); ok {
				*checks = append(*checks, c)
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ddQueries(x[k], queries, checks)
		}
	case []any:
		for _, e := range x {
			ddQueries(e, queries, checks)
		}
	}
}

// TestDatadogUsesCatalogMetrics is the consistency check for Datadog: every
// metric a widget queries is in dogstatsd.Catalog(), with the tags the
// catalog documents, and percentiles only on distributions.
func TestDatadogUsesCatalogMetrics(t *testing.T) {
	d, generic := readDatadog(t)
	vars := map[string]string{}
	for _, v := range d.TemplateVariables {
		vars[v.Name] = v.GetPrefix()
	}
	var queries, checks []string
	ddQueries(generic, &queries, &checks)
	if len(queries) < 20 {
		t.Fatalf("found only %d metric queries in %s: the walk is broken", len(queries), datadogFile)
	}
	used := map[string]bool{}
	for _, q := range queries {
		names, problems := querycheck.CheckDatadogQuery(q, vars)
		for _, p := range problems {
			t.Errorf("%s\n\t%s", p, q)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	t.Logf("%d Datadog queries (%d metrics) checked against dogstatsd.Catalog()", len(queries), len(used))
	for _, c := range checks {
		if c != dogstatsd.ServiceCheckCanComplete {
			t.Errorf("check_status widget on %q: the agent sends only %q", c, dogstatsd.ServiceCheckCanComplete)
		}
	}
	// The same story as the Grafana dashboard.
	for _, m := range []dogstatsd.Metric{
		dogstatsd.CheckpointDuration.Metric, dogstatsd.CheckpointFailed.Metric, dogstatsd.CheckpointFailedS3Throttled.Metric,
		dogstatsd.CheckpointInProgress.Metric, dogstatsd.CheckpointStuck.Metric, dogstatsd.CheckpointSize.Metric,
		dogstatsd.CheckpointLastCompletedAge.Metric, dogstatsd.S3Throttle.Metric, dogstatsd.JobRestarts.Metric,
		dogstatsd.JobUptime.Metric, dogstatsd.VertexBackpressureRatio.Metric, dogstatsd.VertexBusyRatio.Metric,
		dogstatsd.JVMHeapUsed.Metric, dogstatsd.JVMGCTime.Metric, dogstatsd.AgentLokiLag.Metric, dogstatsd.AgentLokiEntriesRejected.Metric,
	} {
		if !used[m.Name] {
			t.Errorf("no widget shows %s", m.Name)
		}
	}
}

// TestChartCopy keeps the chart's copy identical to the canonical dashboard.
func TestChartCopy(t *testing.T) {
	querycheck.KeepCopy(t, grafanaFile, chartCopy, *update, "go test ./dashboards -run TestChartCopy -update")
}
