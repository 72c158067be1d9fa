package testbed

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// AlertingOptions configures StartAlerting.
type AlertingOptions struct {
	// RulesFile and AlertmanagerFile are the repo's alerts/flink-agent.rules.yml
	// and alerts/alertmanager.yml; they are run as they are, but for
	// SpeedUp and the PagerDuty endpoint.
	RulesFile, AlertmanagerFile string
	// SpeedUp divides every duration of the rules and the routes (see
	// SpeedUpRules, PatchAlertmanager); 0 or 1 runs them as written.
	SpeedUp float64
	// PagerDutyURL is the Events API v2 endpoint Alertmanager pages;
	// RoutingKey goes into the file its routing_key_file names.
	PagerDutyURL, RoutingKey string
	// Targets are the agents to scrape, job "flink-agent", honoring their
	// cluster and namespace labels as the chart's PodMonitor does.
	Targets        []ScrapeTarget
	ScrapeInterval time.Duration // also the rule evaluation interval; default 1s
	// Ports, 127.0.0.1 only; 0 picks free ones.
	PrometheusPort, AlertmanagerPort int
}

// Alerting is a Prometheus evaluating the repo's rules and sending to an
// Alertmanager running the repo's configuration.
type Alerting struct {
	Prometheus   *Prometheus
	Alertmanager *Alertmanager
	Rules        []byte // the rules as Prometheus evaluates them
}

// PodMonitorTarget is a scrape target with the labels the chart's
// PodMonitor gives a flink-agent sidecar.
func PodMonitorTarget(addr, namespace, pod, component string) ScrapeTarget {
	return ScrapeTarget{Addr: addr, Labels: map[string]string{
		"namespace": namespace, "pod": pod, "container": "flink-agent", "endpoint": "agent-metrics", "component": component,
	}}
}

// StartAlerting starts Alertmanager and Prometheus under dir, returning
// once both are ready. On error nothing is left running.
func StartAlerting(ctx context.Context, dir string, o AlertingOptions) (*Alerting, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	amSrc, err := os.ReadFile(o.AlertmanagerFile)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "pagerduty-routing-key")
	if err := os.WriteFile(keyFile, []byte(o.RoutingKey), 0o600); err != nil {
		return nil, err
	}
	amCfg, err := PatchAlertmanager(amSrc, AlertmanagerPatch{SpeedUp: o.SpeedUp, PagerDutyURL: o.PagerDutyURL, RoutingKeyFile: keyFile})
	if err != nil {
		return nil, err
	}
	rulesSrc, err := os.ReadFile(o.RulesFile)
	if err != nil {
		return nil, err
	}
	a := &Alerting{Rules: rulesSrc}
	if o.SpeedUp > 1 {
		if a.Rules, err = SpeedUpRules(rulesSrc, o.SpeedUp); err != nil {
			return nil, err
		}
	}
	rules := filepath.Join(dir, filepath.Base(o.RulesFile))
	if err := os.WriteFile(rules, a.Rules, 0o644); err != nil {
		return nil, err
	}
	if a.Alertmanager, err = StartAlertmanager(ctx, filepath.Join(dir, "alertmanager"), amCfg, o.AlertmanagerPort); err != nil {
		return nil, err
	}
	if a.Prometheus, err = StartPrometheus(ctx, filepath.Join(dir, "prometheus"), PrometheusOptions{
		Targets:            o.Targets,
		HonorLabels:        true,
		ScrapeInterval:     o.ScrapeInterval,
		EvaluationInterval: o.ScrapeInterval,
		RuleFiles:          []string{rules},
		Alertmanagers:      []string{a.Alertmanager.Addr()},
		Port:               o.PrometheusPort,
	}); err != nil {
		a.Alertmanager.Stop()
		return nil, err
	}
	return a, nil
}

// Stop stops Prometheus, then Alertmanager.
func (a *Alerting) Stop() {
	a.Prometheus.Stop()
	a.Alertmanager.Stop()
}
