package testbed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"gopkg.in/yaml.v3"
)

// ScrapeTarget is one /metrics endpoint with the target labels a
// prometheus-operator PodMonitor would give it (namespace, pod, container,
// endpoint, …).
type ScrapeTarget struct {
	Addr   string // host:port
	Labels map[string]string
}

// PrometheusOptions configures StartPrometheus.
type PrometheusOptions struct {
	// JobName is the scrape job; default "flink-agent", the job label the
	// chart's PodMonitor sets and the alert rules select.
	JobName string
	Targets []ScrapeTarget
	// HonorLabels keeps the targets' own cluster and namespace labels, as
	// the chart's PodMonitor does.
	HonorLabels        bool
	ScrapeInterval     time.Duration // default 1s
	EvaluationInterval time.Duration // default 1s
	RuleFiles          []string
	Alertmanagers      []string // host:port of each Alertmanager
	// Port to listen on, 127.0.0.1 only; 0 picks a free one.
	Port int
}

// Prometheus is a real Prometheus server (built by `scripts/tools.sh
// promtools`) with its TSDB under Dir, listening on loopback only.
type Prometheus struct {
	Proc *Proc
	Dir  string
	URL  string // http://127.0.0.1:port
	API  v1.API
}

type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles []string `yaml:"rule_files,omitempty"`
	Alerting  *struct {
		Alertmanagers []promStatic `yaml:"alertmanagers"`
	} `yaml:"alerting,omitempty"`
	ScrapeConfigs []promScrape `yaml:"scrape_configs"`
}

type promStatic struct {
	StaticConfigs []promTargets `yaml:"static_configs"`
}

type promTargets struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels,omitempty"`
}

type promScrape struct {
	JobName       string        `yaml:"job_name"`
	HonorLabels   bool          `yaml:"honor_labels"`
	StaticConfigs []promTargets `yaml:"static_configs"`
}

// StartPrometheus writes a configuration with the options' static targets,
// rule files and Alertmanagers into dir and starts Prometheus on it,
// returning once it is ready.
func StartPrometheus(ctx context.Context, dir string, o PrometheusOptions) (*Prometheus, error) {
	bin, err := Tool("prometheus")
	if err != nil {
		return nil, err
	}
	if o.JobName == "" {
		o.JobName = "flink-agent"
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.EvaluationInterval <= 0 {
		o.EvaluationInterval = time.Second
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	var c promConfig
	c.Global.ScrapeInterval = o.ScrapeInterval.String()
	c.Global.ScrapeTimeout = o.ScrapeInterval.String()
	c.Global.EvaluationInterval = o.EvaluationInterval.String()
	for _, f := range o.RuleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		c.RuleFiles = append(c.RuleFiles, abs)
	}
	if len(o.Alertmanagers) > 0 {
		c.Alerting = &struct {
			Alertmanagers []promStatic `yaml:"alertmanagers"`
		}{[]promStatic{{StaticConfigs: []promTargets{{Targets: o.Alertmanagers}}}}}
	}
	sc := promScrape{JobName: o.JobName, HonorLabels: o.HonorLabels}
	for _, t := range o.Targets {
		sc.StaticConfigs = append(sc.StaticConfigs, promTargets{Targets: []string{t.Addr}, Labels: t.Labels})
	}
	c.ScrapeConfigs = []promScrape{sc}
	raw, err := yaml.Marshal(&c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, raw, 0o644); err != nil {
		return nil, err
	}

	p := &Prometheus{Dir: dir, URL: "http://" + Addr(o.Port)}
	p.Proc, err = StartProc("prometheus", dir, nil, bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+Addr(o.Port),
		"--web.external-url="+p.URL+"/",
		"--log.level=warn",
	)
	if err != nil {
		return nil, err
	}
	client, err := api.NewClient(api.Config{Address: p.URL})
	if err != nil {
		p.Stop()
		return nil, err
	}
	p.API = v1.NewAPI(client)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := WaitFor(wctx, p.Proc, 100*time.Millisecond, func(ctx context.Context) error {
		return getOK(ctx, p.URL+"/-/ready")
	}); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Addr is the host:port Prometheus listens on.
func (p *Prometheus) Addr() string { return p.URL[len("http://"):] }

// Stop stops Prometheus.
func (p *Prometheus) Stop() { _ = p.Proc.Stop(10 * time.Second) }

func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
