package testbed

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// StatsdExporter is a real DogStatsD receiver: prometheus/statsd_exporter
// parses the DogStatsD tag format and serves what it received on /metrics.
type StatsdExporter struct {
	Proc       *Proc
	UDPAddr    string // where to send DogStatsD
	MetricsURL string
}

// StartStatsdExporter starts statsd_exporter on free loopback ports.
func StartStatsdExporter(ctx context.Context, dir string) (*StatsdExporter, error) {
	bin, err := Tool("statsd_exporter")
	if err != nil {
		return nil, err
	}
	udp, err := FreeUDPPort()
	if err != nil {
		return nil, err
	}
	web, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &StatsdExporter{UDPAddr: Addr(udp), MetricsURL: "http://" + Addr(web) + "/metrics"}
	s.Proc, err = StartProc("statsd_exporter", dir, nil, bin,
		"--statsd.listen-udp="+s.UDPAddr,
		"--statsd.listen-tcp=",
		"--statsd.listen-unixgram=",
		"--web.listen-address="+Addr(web),
		"--statsd.parse-dogstatsd-tags",
		"--log.level=warn",
	)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := WaitFor(wctx, s.Proc, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := s.Metrics(ctx)
		return err
	}); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Metrics reads and parses the exporter's /metrics.
func (s *StatsdExporter) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("statsd_exporter /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Stop stops the exporter.
func (s *StatsdExporter) Stop() { _ = s.Proc.Stop(5 * time.Second) }

// LabelsOf returns a metric's labels as a map.
func LabelsOf(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}
