package testbed

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSpeedUpRules(t *testing.T) {
	src, err := os.ReadFile("../alerts/flink-agent.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := SpeedUpRules(src, 30)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				For    string            `yaml:"for"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(out, &rf); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			got[r.Alert] = [2]string{r.For, r.Expr}
			if r.Labels["severity"] == "" {
				t.Errorf("%s lost its labels", r.Alert)
			}
		}
	}
	for alert, want := range map[string][2]string{
		"FlinkCheckpointFailing": {"2s", "max by (cluster, namespace, job_name) (flink_checkpoint_consecutive_failures) >= 2"},
		"FlinkCheckpointStuck":   {"", ""},
		"FlinkS3Throttling":      {"20s", "sum by (cluster, namespace, bucket) (increase(flink_s3_throttle_events_total[10s])) > 0"},
		"FlinkCheckpointSlow":    {"30s", "[1m]"},
		"FlinkAgentDown":         {"10s", `up{job="flink-agent"} == 0`},
	} {
		g, ok := got[alert]
		if !ok {
			t.Errorf("%s missing", alert)
			continue
		}
		if g[0] != want[0] || !strings.Contains(g[1], want[1]) {
			t.Errorf("%s: for %q expr %q, want for %q and an expr containing %q", alert, g[0], g[1], want[0], want[1])
		}
	}

	// The real promtool accepts the result.
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(MustTool(t, "promtool"), "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the sped-up rules: %v\n%s", err, b)
	}

	if _, err := SpeedUpRules([]byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n"), 30); err == nil {
		t.Error("a rule that does not parse was accepted")
	}
}

func TestPatchAlertmanager(t *testing.T) {
	src, err := os.ReadFile("../alerts/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	out, err := PatchAlertmanager(src, AlertmanagerPatch{SpeedUp: 30, PagerDutyURL: "http://127.0.0.1:1/v2/enqueue", RoutingKeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		Route struct {
			GroupWait      string `yaml:"group_wait"`
			GroupInterval  string `yaml:"group_interval"`
			RepeatInterval string `yaml:"repeat_interval"`
			Routes         []struct {
				RepeatInterval string `yaml:"repeat_interval"`
			} `yaml:"routes"`
		} `yaml:"route"`
		Receivers []struct {
			Name             string           `yaml:"name"`
			PagerdutyConfigs []map[string]any `yaml:"pagerduty_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(out, &am); err != nil {
		t.Fatal(err)
	}
	r := am.Route
	if r.GroupWait != "1s" || r.GroupInterval != "10s" || r.RepeatInterval != "8m" || r.Routes[0].RepeatInterval != "24m" {
		t.Errorf("route timings %+v", r)
	}
	n := 0
	for _, rc := range am.Receivers {
		for _, pd := range rc.PagerdutyConfigs {
			n++
			if pd["url"] != "http://127.0.0.1:1/v2/enqueue" || pd["routing_key_file"] != key || pd["send_resolved"] != true {
				t.Errorf("receiver %s: %v", rc.Name, pd)
			}
		}
	}
	if n == 0 {
		t.Fatal("no pagerduty_configs")
	}
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(MustTool(t, "amtool"), "check-config", f).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config on the patched configuration: %v\n%s", err, b)
	}

	if _, err := PatchAlertmanager([]byte("route:\n  receiver: a\nreceivers:\n- name: a\n"), AlertmanagerPatch{PagerDutyURL: "http://x"}); err == nil {
		t.Error("a configuration without pagerduty_configs was patched")
	}
}
