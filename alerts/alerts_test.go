// Package alerts holds the Prometheus rules, their promtool unit tests, the
// Alertmanager example and the Datadog monitors. Its tests run promtool and
// amtool on them and check every metric against what the agent exports.
package alerts

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/flink-agent/flink-agent/dashboards/querycheck"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/testbed"
)

var update = flag.Bool("update", false, "rewrite the chart's copy of the rules")

const (
	rulesFile   = "flink-agent.rules.yml"
	testsFile   = "tests/flink-agent.rules.test.yml"
	amFile      = "alertmanager.yml"
	monitorsDir = "datadog"
	// Helm cannot read outside the chart, so the chart carries a copy.
	chartCopy = "../charts/flink-agent/files/flink-agent.rules.yml"
	runbooks  = "../docs/runbooks"
	// The placeholder every Datadog monitor pages; replace it with the
	// name of your PagerDuty service in Datadog's PagerDuty integration.
	pagerDutyHandle = "@pagerduty-flink-oncall"
	runbookBase     = "https://github.com/flink-agent/flink-agent/blob/main/docs/runbooks/"
)

// The alerts the issue names, in the rules file's order.
var wantAlerts = []string{
	"FlinkCheckpointFailing", "FlinkCheckpointStuck", "FlinkCheckpointSlow", "FlinkNoRecentCheckpoint",
	"FlinkCheckpointNearTolerableLimit", "FlinkS3Throttling", "FlinkS3EntropyInjectionDisabled",
	"FlinkJobRestarting", "FlinkJobNotProgressing", "FlinkSourceBacklogGrowing", "FlinkNoTaskManagers", "FlinkTaskManagerLost", "FlinkAgentDown", "FlinkAgentLokiLagging", "FlinkAgentLokiRejecting",
	"FlinkOperatorReconcileFailing",
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func readRules(t *testing.T) []rule {
	t.Helper()
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(raw, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var rules []rule
	for _, g := range rf.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func run(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testbed.MustTool(t, tool), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := run(t, "promtool", "check", "rules", rulesFile)
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(wantAlerts)); !strings.Contains(out, want) {
		t.Errorf("promtool check rules said %q, want %q", out, want)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out, err := run(t, "promtool", "test", "rules", testsFile)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules %s: %s", testsFile, strings.TrimSpace(out))
}

// TestPromtoolTestsHaveTeeth breaks a threshold in a copy of the rules and
// expects the unit tests to notice.
func TestPromtoolTestsHaveTeeth(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(testsFile)
	if err != nil {
		t.Fatal(err)
	}
	const from, to = "(flink_checkpoint_consecutive_failures) >= 2", "(flink_checkpoint_consecutive_failures) >= 4"
	if !bytes.Contains(rules, []byte(from)) {
		t.Fatalf("%s no longer contains %q: update this test", rulesFile, from)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, rulesFile), bytes.Replace(rules, []byte(from), []byte(to), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.yml"), bytes.Replace(tests, []byte("../"+rulesFile), []byte(rulesFile), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "promtool", "test", "rules", filepath.Join(dir, "t.yml"))
	if err == nil || !strings.Contains(out, "FlinkCheckpointFailing") {
		t.Fatalf("promtool test rules passed with a broken FlinkCheckpointFailing threshold:\n%s", out)
	}
}

type promtoolTests struct {
	RuleFiles          []string `json:"rule_files"`
	EvaluationInterval string   `json:"evaluation_interval"`
	Tests              []struct {
		Name        string `json:"name"`
		Interval    string `json:"interval"`
		InputSeries []struct {
			Series string `json:"series"`
			Values string `json:"values"`
		} `json:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `json:"eval_time"`
			Alertname string `json:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `json:"exp_labels"`
				ExpAnnotations map[string]string `json:"exp_annotations"`
			} `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertIsTestedBothWays: for every alert, an evaluation where it
// fires, and a series that does not fire it (an evaluation with no alert, or
// an input series no expected alert stands for).
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	raw, err := os.ReadFile(testsFile)
	if err != nil {
		t.Fatal(err)
	}
	var pt promtoolTests
	if err := yaml.UnmarshalStrict(raw, &pt); err != nil {
		t.Fatalf("%s: %v", testsFile, err)
	}
	p := parser.NewParser(parser.Options{})
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range pt.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) == 0 {
				quiet[at.Alertname] = true
				continue
			}
			fires[at.Alertname] = true
			for _, in := range tc.InputSeries {
				lbls, err := p.ParseMetric(in.Series)
				if err != nil {
					t.Fatalf("%s: %v", in.Series, err)
				}
				stands := false
				for _, ea := range at.ExpAlerts {
					match := true
					for k, v := range ea.ExpLabels {
						if k != "severity" && lbls.Get(k) != v {
							match = false
						}
					}
					stands = stands || match
				}
				if !stands {
					quiet[at.Alertname] = true
				}
			}
		}
	}
	for _, a := range wantAlerts {
		if !fires[a] {
			t.Errorf("%s: no promtool test where it fires", a)
		}
		if !quiet[a] {
			t.Errorf("%s: no promtool test with a series that does not fire it", a)
		}
	}
}

var runbookURL = regexp.MustCompile(`^` + regexp.QuoteMeta(runbookBase) + `([a-z0-9-]+\.md)$`)

func TestRulesShape(t *testing.T) {
	rules := readRules(t)
	var names []string
	for _, r := range rules {
		names = append(names, r.Alert)
		if s := r.Labels["severity"]; s != "page" && s != "warning" && s != "info" {
			t.Errorf("%s: severity %q, want page, warning or info", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		m := runbookURL.FindStringSubmatch(r.Annotations["runbook_url"])
		if m == nil {
			t.Errorf("%s: runbook_url %q is not under %s", r.Alert, r.Annotations["runbook_url"], runbookBase)
			continue
		}
		doc, err := os.ReadFile(filepath.Join(runbooks, m[1]))
		if err != nil {
			t.Errorf("%s: runbook: %v", r.Alert, err)
		} else if !bytes.Contains(doc, []byte("# "+r.Alert)) {
			t.Errorf("%s: %s has no heading naming the alert", r.Alert, m[1])
		}
	}
	if !slices.Equal(names, wantAlerts) {
		t.Errorf("alerts %v\nwant     %v", names, wantAlerts)
	}
	// Alertmanager pages on severity="page": the checkpoint failures that
	// lose state must page.
	for _, r := range rules {
		if slices.Contains([]string{"FlinkCheckpointFailing", "FlinkCheckpointStuck", "FlinkNoRecentCheckpoint"}, r.Alert) && r.Labels["severity"] != "page" {
			t.Errorf("%s: severity %q, want page", r.Alert, r.Labels["severity"])
		}
	}
}

// TestRulesUseExportedMetrics is the consistency check: every metric and
// label a rule selects is one the agent exports (or Prometheus's own `up`).
func TestRulesUseExportedMetrics(t *testing.T) {
	fams, err := querycheck.AgentFamilies()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	defer func() {
		t.Logf("%d metric references in %d rules checked against %d exported families", n, len(wantAlerts), len(fams))
	}()
	for _, r := range readRules(t) {
		names, problems := querycheck.CheckPromQL(fams, r.Expr)
		n += len(names)
		for _, p := range problems {
			t.Errorf("%s: %s", r.Alert, p)
		}
		if len(names) == 0 {
			t.Errorf("%s selects no metric", r.Alert)
		}
	}
}

func TestAmtoolCheckConfig(t *testing.T) {
	out, err := run(t, "amtool", "check-config", amFile)
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}

	// The route that pages: severity="page" → PagerDuty Events API v2 with
	// the routing key read from a file.
	raw, err := os.ReadFile(amFile)
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		Route struct {
			Routes []struct {
				Receiver string   `json:"receiver"`
				Matchers []string `json:"matchers"`
			} `json:"routes"`
		} `json:"route"`
		Receivers []struct {
			Name             string           `json:"name"`
			PagerdutyConfigs []map[string]any `json:"pagerduty_configs"`
		} `json:"receivers"`
	}
	if err := yaml.Unmarshal(raw, &am); err != nil {
		t.Fatal(err)
	}
	pager := ""
	for _, r := range am.Route.Routes {
		if slices.Contains(r.Matchers, `severity="page"`) {
			pager = r.Receiver
		}
	}
	found := false
	for _, rc := range am.Receivers {
		if rc.Name != pager {
			continue
		}
		for _, pd := range rc.PagerdutyConfigs {
			found = true
			if pd["routing_key_file"] == nil || pd["routing_key"] != nil || pd["service_key"] != nil || pd["service_key_file"] != nil {
				t.Errorf("receiver %s: %v, want routing_key_file only (Events API v2, key from a Secret)", rc.Name, pd)
			}
		}
	}
	if !found {
		t.Errorf("severity=\"page\" routes to %q, which has no pagerduty_configs", pager)
	}

	// amtool must reject what Alertmanager would: a misspelt key.
	dir := t.TempDir()
	bad := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(bad, bytes.Replace(raw, []byte("routing_key_file:"), []byte("routing_keyfile:"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "amtool", "check-config", bad); err == nil {
		t.Errorf("amtool check-config accepted a misspelt routing_key_file:\n%s", out)
	}
}

// TestDatadogMonitors decodes each monitor strictly into datadogV1.Monitor
// and checks its query against the DogStatsD catalog and its paging.
func TestDatadogMonitors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(monitorsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("monitors %v, want checkpoint failures, stuck checkpoints and S3 throttling", files)
	}
	watched := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m datadogV1.Monitor
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, u := range querycheck.UnparsedFields(&m) {
			t.Errorf("%s: %s", f, u)
		}
		var orig, back any
		_ = json.Unmarshal(raw, &orig)
		again, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(again, &back)
		a, _ := json.Marshal(orig)
		b, _ := json.Marshal(back)
		if !bytes.Equal(a, b) {
			t.Errorf("%s changes when re-encoded by datadogV1.Monitor:\n%s\n%s", f, a, b)
		}
		if m.Type != datadogV1.MONITORTYPE_QUERY_ALERT {
			t.Errorf("%s: type %q, want query alert", f, m.Type)
		}
		names, problems := querycheck.CheckDatadogQuery(m.Query, nil)
		for _, p := range problems {
			t.Errorf("%s: %s", f, p)
		}
		for _, n := range names {
			watched[n] = true
		}
		msg := m.GetMessage()
		// The handle in both blocks: PagerDuty opens the incident on alert
		// and resolves it on recovery; warnings never page.
		for _, block := range []string{"{{#is_alert}}" + pagerDutyHandle + "{{/is_alert}}", "{{#is_alert_recovery}}" + pagerDutyHandle + "{{/is_alert_recovery}}"} {
			if !strings.Contains(msg, block) {
				t.Errorf("%s: message lacks %s", f, block)
			}
		}
		if n := strings.Count(msg, "@pagerduty-"); n != strings.Count(msg, pagerDutyHandle) {
			t.Errorf("%s: a @pagerduty- handle other than the placeholder %s", f, pagerDutyHandle)
		}
		if !strings.Contains(msg, runbookBase) {
			t.Errorf("%s: message links no runbook", f)
		}
	}
	for _, want := range []dogstatsd.Metric{dogstatsd.CheckpointFailed.Metric, dogstatsd.CheckpointStuck.Metric, dogstatsd.S3Throttle.Metric} {
		if !watched[want.Name] {
			t.Errorf("no monitor watches %s", want.Name)
		}
	}
}

// TestChartCopy keeps the chart's copy identical to the canonical rules.
func TestChartCopy(t *testing.T) {
	querycheck.KeepCopy(t, rulesFile, chartCopy, *update, "go test ./alerts -run TestChartCopy -update")
}
