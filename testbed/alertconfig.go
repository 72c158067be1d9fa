package testbed

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// The test bed runs the repo's own alert rules and Alertmanager
// configuration, not copies: these transforms make a test-time version of
// those files in which time runs faster (every duration divided by a
// factor) and paging goes to a local endpoint.

// SpeedUpRules divides every duration of a Prometheus rule file by factor:
// `for`, `keep_firing_for`, and in each expression the range-vector windows
// and subquery ranges and steps. The expressions are re-printed from their
// parsed form. Durations are rounded to whole seconds, at least 1s.
func SpeedUpRules(src []byte, factor float64) ([]byte, error) {
	if factor < 1 {
		return nil, fmt.Errorf("speed-up factor %v: want >= 1", factor)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	groups := mapValue(root(&doc), "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil, errors.New("rule file: no groups")
	}
	p := parser.NewParser(parser.Options{})
	for _, g := range groups.Content {
		if n := mapValue(g, "interval"); n != nil {
			if err := scaleNode(n, factor); err != nil {
				return nil, fmt.Errorf("interval: %w", err)
			}
		}
		rules := mapValue(g, "rules")
		if rules == nil {
			continue
		}
		for _, r := range rules.Content {
			name := ""
			if n := mapValue(r, "alert"); n != nil {
				name = n.Value
			} else if n := mapValue(r, "record"); n != nil {
				name = n.Value
			}
			for _, k := range []string{"for", "keep_firing_for"} {
				if n := mapValue(r, k); n != nil {
					if err := scaleNode(n, factor); err != nil {
						return nil, fmt.Errorf("%s: %s: %w", name, k, err)
					}
				}
			}
			n := mapValue(r, "expr")
			if n == nil {
				return nil, fmt.Errorf("%s: no expr", name)
			}
			e, err := p.ParseExpr(n.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
				switch x := node.(type) {
				case *parser.MatrixSelector:
					x.Range = scale(x.Range, factor)
				case *parser.SubqueryExpr:
					x.Range = scale(x.Range, factor)
					if x.Step > 0 {
						x.Step = scale(x.Step, factor)
					}
				}
				return nil
			})
			n.Value, n.Style = e.String(), 0
		}
	}
	return yaml.Marshal(&doc)
}

// AlertmanagerPatch says how PatchAlertmanager changes a configuration.
type AlertmanagerPatch struct {
	// SpeedUp divides group_wait, group_interval and repeat_interval of
	// every route by this factor (0 or 1: unchanged).
	SpeedUp float64
	// PagerDutyURL replaces every pagerduty_config's url (the Events API
	// endpoint), RoutingKeyFile its routing_key_file.
	PagerDutyURL   string
	RoutingKeyFile string
}

// PatchAlertmanager applies p to an Alertmanager configuration. It fails
// when the configuration has no pagerduty_configs to patch.
func PatchAlertmanager(src []byte, p AlertmanagerPatch) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	top := root(&doc)
	if p.SpeedUp > 1 {
		var walk func(route *yaml.Node) error
		walk = func(route *yaml.Node) error {
			for _, k := range []string{"group_wait", "group_interval", "repeat_interval"} {
				if n := mapValue(route, k); n != nil {
					if err := scaleNode(n, p.SpeedUp); err != nil {
						return fmt.Errorf("route %s: %w", k, err)
					}
				}
			}
			if rs := mapValue(route, "routes"); rs != nil {
				for _, r := range rs.Content {
					if err := walk(r); err != nil {
						return err
					}
				}
			}
			return nil
		}
		route := mapValue(top, "route")
		if route == nil {
			return nil, errors.New("alertmanager config: no route")
		}
		if err := walk(route); err != nil {
			return nil, err
		}
	}
	patched := 0
	if rs := mapValue(top, "receivers"); rs != nil {
		for _, r := range rs.Content {
			pds := mapValue(r, "pagerduty_configs")
			if pds == nil {
				continue
			}
			for _, pd := range pds.Content {
				if p.PagerDutyURL != "" {
					setMapValue(pd, "url", p.PagerDutyURL)
				}
				if p.RoutingKeyFile != "" {
					setMapValue(pd, "routing_key_file", p.RoutingKeyFile)
				}
				patched++
			}
		}
	}
	if patched == 0 && (p.PagerDutyURL != "" || p.RoutingKeyFile != "") {
		return nil, errors.New("alertmanager config: no pagerduty_configs to point at the test endpoint")
	}
	return yaml.Marshal(&doc)
}

// RunbookURLs maps each alert of a Prometheus rules file to its
// runbook_url annotation.
func RunbookURLs(rules []byte) (map[string]string, error) {
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &rf); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Annotations["runbook_url"]
		}
	}
	return out, nil
}

func scale(d time.Duration, factor float64) time.Duration {
	s := math.Round(d.Seconds() / factor)
	return time.Duration(max(s, 1)) * time.Second
}

func scaleNode(n *yaml.Node, factor float64) error {
	d, err := model.ParseDuration(n.Value)
	if err != nil {
		return err
	}
	n.Value = model.Duration(scale(time.Duration(d), factor)).String()
	return nil
}

func root(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}

// mapValue returns the value node of key in a mapping node, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key, value string) {
	if n := mapValue(m, key); n != nil {
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", value, 0
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}
