package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/flink-agent/flink-agent/dashboards/querycheck"
)

// After the alert run, every dashboard query must show data from it. A
// panel (or one query of it) that can legitimately be empty after a run is
// listed here with the reason; everything else must return at least one
// series (PromQL) or entry (LogQL), and every DogStatsD metric the Datadog
// dashboard and monitors use must have reached statsd_exporter.
//
// Adding a panel: make the run produce its data (the scenarios in
// e2e_test.go, or savepointAndRestart), or add it below with the reason a
// healthy run can leave it empty. A listed panel that no longer exists
// fails the test, so the list stays true.
var mayBeEmpty = []emptyOK{
	// {Row: "row title"} (every panel of the row) or {Panel: "title"},
	// optionally with RefID: "B" (that query only), and the Reason.
	{Row: "Flink Kubernetes Operator", Reason: noOperator},
	{Panel: "Loki rejected entries", Reason: lokiRejectsNothing},
	{Panel: "Unparsed input", Reason: "the agent understands every REST answer and log line of the Flink it is tested against; " +
		"the panel shows data only when Flink changes a format (driven with malformed input in collector/ and logscan/)"},
}

// datadogMayBeAbsent lists DogStatsD metrics of the Datadog dashboard and
// monitors that a run can legitimately not send, with the reason.
var datadogMayBeAbsent = map[string]string{
	"flink.agent.loki.entries_rejected":       lokiRejectsNothing,
	"flink.operator.deployment_failures":      noOperator,
	"flink.operator.jobmanager_unrecoverable": noOperator,
	"flink.operator.reconcile_errors":         noOperator,
	"flink.operator.rollback_failures":        noOperator,
	"flink.operator.snapshot_failures":        noOperator,
	"flink.taskmanagers.lost": "sent only when the JobManager loses a TaskManager; the alert run loses none " +
		"(compat/ kills one with SIGKILL and checks flink_taskmanagers_lost_total and its reason)",
}

const noOperator = "no Flink Kubernetes Operator runs in this test bed: these come from the operator's own metrics " +
	"and from an agent beside the operator's pod reading its log (operatorlog)"

const lokiRejectsNothing = "Loki rejects entries only when they are too old, too long or over a limit; it accepts the fresh Flink logs " +
	"of the run (rejections are driven in the shipper's push fault-injection tests)"

type emptyOK struct {
	Row, Panel, RefID, Reason string
}

func (e emptyOK) covers(q dashQuery) bool {
	if e.Row != "" {
		return q.row == e.Row
	}
	return q.panel == e.Panel && (e.RefID == "" || e.RefID == q.refID)
}

func emptyReason(q dashQuery) (string, bool) {
	for _, e := range mayBeEmpty {
		if e.covers(q) {
			return e.Reason, true
		}
	}
	return "", false
}

const grafanaDashboard = "../dashboards/grafana/flink-agent.json"

type dashPanel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
	} `json:"datasource"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			Type string `json:"type"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // inside collapsed rows
}

type dashQuery struct {
	row, panel, refID, datasource, expr string
}

// dashboardQueries returns every query of every panel, rows' included.
func dashboardQueries(t *testing.T) []dashQuery {
	t.Helper()
	raw, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	// An expanded row is followed by its panels; a collapsed one holds them.
	var out []dashQuery
	row := ""
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				row = p.Title
			}
			for _, tg := range p.Targets {
				out = append(out, dashQuery{row, p.Title, tg.RefID, tg.Datasource.Type, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// interpolate substitutes Grafana's variables as Grafana does for a single
// selected value; an unknown variable is an error.
func interpolate(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %v", unknown)
	}
	return out, nil
}

// panelVars are the dashboard's variables set to the test bed's cluster,
// namespace, job and pod, and Grafana's interval variables for a range
// query with the given step (scrape interval 1 s).
func panelVars(job string, from, to time.Time, step time.Duration) map[string]string {
	rate := max(step+time.Second, 4*time.Second) // Grafana's $__rate_interval
	return map[string]string{
		"cluster": cluster, "namespace": namespace, "job_name": job, "pod": jmPod,
		"__rate_interval": model.Duration(rate).String(),
		"__interval":      model.Duration(step).String(),
		"__range":         model.Duration(to.Sub(from).Round(time.Second)).String(),
	}
}

// checkGrafanaPanels evaluates every PromQL panel query on the real
// Prometheus over the run.
func checkGrafanaPanels(t *testing.T, ctx context.Context, b *bed, from, to time.Time) {
	const step = 5 * time.Second
	checkListed(t, dashboardQueries(t))
	checkPanels(t, b, "prometheus", from, to, step, func(expr string) (string, error) {
		v, _, _, err := b.prom.API.QueryRange(ctx, expr, v1.Range{Start: from, End: to, Step: step})
		if m, ok := v.(model.Matrix); ok && len(m) > 0 {
			return fmt.Sprintf("%d series", len(m)), err
		}
		return "", err
	})
	checkVariables(t, ctx, b, from, to)
}

// checkLokiPanels runs every LogQL panel query on the real Loki.
func checkLokiPanels(t *testing.T, ctx context.Context, b *bed, from, to time.Time) {
	checkPanels(t, b, "loki", from, to, 5*time.Second, func(expr string) (string, error) {
		streams, err := b.loki.Query(ctx, expr, from, to, 100)
		n := 0
		for _, s := range streams {
			n += len(s.Entries)
		}
		if n == 0 {
			return "", err
		}
		return fmt.Sprintf("%d entries (first: %.100q)", n, streams[0].Entries[0].Line), err
	})
}

// checkPanels runs run on every query of the datasource's panels, with the
// variables substituted; run describes the data found, "" when none.
func checkPanels(t *testing.T, b *bed, datasource string, from, to time.Time, step time.Duration, run func(expr string) (string, error)) {
	t.Helper()
	// The throttled job had every kind of event: failures, attributed
	// throttling, a savepoint, a restart.
	vars := panelVars(b.jobs["throttled"].Name, from, to, step)
	n := 0
	for _, q := range dashboardQueries(t) {
		if q.datasource != datasource {
			continue
		}
		n++
		expr, err := interpolate(q.expr, vars)
		if err != nil {
			t.Errorf("panel %q %s: %v", q.panel, q.refID, err)
			continue
		}
		found, err := run(expr)
		if err != nil {
			t.Errorf("panel %q %s: %s rejects %s: %v", q.panel, q.refID, datasource, expr, err)
			continue
		}
		reason, listed := emptyReason(q)
		switch {
		case found != "":
			t.Logf("panel %-48q %s: %s", q.panel, q.refID, found)
		case listed:
			t.Logf("panel %-48q %s: empty, allowed: %s", q.panel, q.refID, reason)
		default:
			t.Errorf("panel %q %s: no data over the run: %s", q.panel, q.refID, expr)
		}
	}
	if n == 0 {
		t.Fatalf("no %s panel found: the check checks nothing", datasource)
	}
}

// checkVariables runs the dashboard's label_values() variables: each must
// offer the test bed's value.
func checkVariables(t *testing.T, ctx context.Context, b *bed, from, to time.Time) {
	raw, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name, Type, Query string
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cluster": cluster, "namespace": namespace, "job_name": b.jobs["throttled"].Name, "pod": jmPod}
	re := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := re.FindStringSubmatch(v.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query)
			continue
		}
		sel, err := interpolate(m[1], map[string]string{"cluster": cluster, "namespace": namespace, "job_name": want["job_name"], "pod": jmPod})
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		vals, _, _, err := b.prom.API.LabelValues(ctx, m[2], []string{sel}, from, to)
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		if w, ok := want[v.Name]; ok && !slices.Contains(vals, model.LabelValue(w)) {
			t.Errorf("variable %s offers %v, not %q", v.Name, vals, w)
		} else {
			t.Logf("variable %s: %v", v.Name, vals)
		}
	}
}

// checkListed fails for a listed panel the dashboard no longer has.
func checkListed(t *testing.T, qs []dashQuery) {
	for _, e := range mayBeEmpty {
		if !slices.ContainsFunc(qs, e.covers) {
			t.Errorf("mayBeEmpty lists %+v, which the dashboard does not have", e)
		}
	}
}

// checkDatadogMetrics: every DogStatsD metric the Datadog dashboard and
// monitors query has reached the real statsd_exporter.
func checkDatadogMetrics(t *testing.T, ctx context.Context, b *bed) {
	files, err := filepath.Glob("../alerts/datadog/*.json")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../dashboards/datadog/flink-agent.json")
	used := map[string][]string{} // metric → files
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range jsonStrings(doc) {
			for _, m := range querycheck.ParseDatadogQuery(s) {
				if !slices.Contains(used[m.Name], filepath.Base(f)) {
					used[m.Name] = append(used[m.Name], filepath.Base(f))
				}
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metrics in %v: the walk is broken", len(used), files)
	}
	mfs, err := b.statsd.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sortedKeys(used) {
		prom := strings.ReplaceAll(name, ".", "_") // statsd_exporter's default mapping
		mf, ok := mfs[prom]
		reason, listed := datadogMayBeAbsent[name]
		switch {
		case ok:
			t.Logf("%-44s in statsd_exporter as %s (%d series; used by %s)", name, prom, len(mf.GetMetric()), strings.Join(used[name], ", "))
		case listed:
			t.Logf("%-44s absent, allowed: %s", name, reason)
		default:
			t.Errorf("%s (used by %s) never reached statsd_exporter", name, strings.Join(used[name], ", "))
		}
	}
	for name := range datadogMayBeAbsent {
		if _, ok := used[name]; !ok {
			t.Errorf("datadogMayBeAbsent lists %s, which no dashboard or monitor uses", name)
		}
	}
}

// jsonStrings returns every string value in a decoded JSON document.
func jsonStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		var out []string
		for _, k := range sortedKeys(x) {
			out = append(out, jsonStrings(x[k])...)
		}
		return out
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}
