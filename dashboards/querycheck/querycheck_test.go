package querycheck

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
)

// The checks must catch what they exist for; these cases prove they do.

var fams = map[string]Family{
	"flink_checkpoint_duration_seconds": {Name: "flink_checkpoint_duration_seconds", Labels: []string{"job_name", "kind"}},
	"flink_checkpoint_failures_total":   {Name: "flink_checkpoint_failures_total", Labels: []string{"job_name", "reason"}},
}

func TestCheckPromQL(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string // substrings of the problems, in order; none = clean
	}{
		{`histogram_quantile(0.9, sum by (le) (rate(flink_checkpoint_duration_seconds_bucket{kind="checkpoint", cluster=~"$cluster"}[$__rate_interval])))`, nil},
		{`sum(flink_checkpoint_duration_seconds_count) / sum(flink_checkpoint_duration_seconds_sum)`, nil},
		{`up{job="flink-agent"} == 0`, nil},
		{`rate(flink_checkpoint_failure_total[5m])`, []string{`"flink_checkpoint_failure_total" is not exported`}},
		{`flink_checkpoint_failures_total{kind="checkpoint"}`, []string{`has no label "kind"`}},
		{`flink_checkpoint_failures_total_bucket`, []string{`not exported`}},
		{`{job_name="x"}`, []string{"no metric name"}},
		{`sum(rate(flink_checkpoint_failures_total[5m]`, []string{"does not parse"}},
		{`vector(1)`, []string{"selects no metric"}},
	} {
		_, problems := CheckPromQL(fams, tc.expr)
		if len(problems) != len(tc.want) {
			t.Errorf("%s: problems %q, want %d matching %q", tc.expr, problems, len(tc.want), tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(problems[i], w) {
				t.Errorf("%s: problem %q does not say %q", tc.expr, problems[i], w)
			}
		}
	}
}

func TestCheckDatadogQuery(t *testing.T) {
	vars := map[string]string{"cluster": "cluster", "job_name": "job_name"}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{`p90:flink.checkpoint.duration{$cluster,$job_name,kind:checkpoint} by {job_name}`, nil},
		{`sum(last_15m):sum:flink.checkpoint.failed{kind:checkpoint} by {cluster,job_name}.as_count() >= 2`, nil},
		{`p90:flink.checkpoint.size{*}`, []string{"percentiles need a distribution"}},
		{`sum:flink.checkpoint.stuck{*}.as_count()`, []string{"is a gauge"}},
		{`avg:flink.checkpoint.durations{*}`, []string{"not in dogstatsd.Catalog()"}},
		{`sum:flink.s3.throttle{*} by {job_name}`, []string{`has no tag "job_name"`}},
		{`avg:flink.up{$nope}`, []string{"unknown template variable $nope"}},
		{`query1 / 1000`, []string{"references no metric"}},
	} {
		_, problems := CheckDatadogQuery(tc.q, vars)
		if len(problems) != len(tc.want) {
			t.Errorf("%s: problems %q, want %q", tc.q, problems, tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(problems[i], w) {
				t.Errorf("%s: problem %q does not say %q", tc.q, problems[i], w)
			}
		}
	}
}

func TestUnparsedFields(t *testing.T) {
	good := `{"title":"t","layout_type":"ordered","widgets":[{"definition":{"type":"note","content":"hi"}}]}`
	for _, tc := range []struct {
		name, json string
		want       string // substring of a finding; "" = strict
	}{
		{"clean", good, ""},
		{"unknown top-level field", strings.Replace(good, `"title"`, `"colour":"red","title"`, 1), "unknown field(s) colour"},
		{"unknown nested field", strings.Replace(good, `"content":"hi"`, `"content":"hi","size":3`, 1), "unknown field(s) size"},
		{"unknown widget type", strings.Replace(good, `"type":"note"`, `"type":"sticky_note"`, 1), "did not decode"},
		{"invalid enum", strings.Replace(good, `"ordered"`, `"chaotic"`, 1), "did not decode"},
	} {
		var d datadogV1.Dashboard
		if err := json.Unmarshal([]byte(tc.json), &d); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := UnparsedFields(&d)
		if tc.want == "" {
			if len(got) != 0 {
				t.Errorf("%s: findings %q on strict JSON", tc.name, got)
			}
			continue
		}
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("%s: findings %q, want one saying %q", tc.name, got, tc.want)
		}
	}
}
