package agent

import (
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// buildWith constructs every component on reg. dryRun builds them for
// RegisterMetrics only: nothing will run.
func buildWith(cfg config.Config, d Deps, reg prometheus.Registerer, st *status, dryRun bool) (*assembled, error) {
	id := d.Identity.Infer(existingLogFiles(cfg.Logs.Paths))
	// cluster and namespace go on every series (the pod comes from the
	// scrape target, the component from per-metric labels).
	wreg := prometheus.WrapRegistererWith(id.PromLabels(), reg)
	if err := wreg.Register(version.NewCollector("flink_agent")); err != nil {
		return nil, err
	}
	sd, err := dogstatsd.New(cfg.DogStatsD.Address, append(id.Tags(), cfg.DogStatsD.Tags...), cfg.DogStatsD.Events)
	if err != nil {
		return nil, err
	}
	a := &assembled{id: id, statsd: sd}
	return a, nil
}

// existingLogFiles expands the globs once, to infer the component from
// Flink's log file names when FLINK_COMPONENT is unset.
func existingLogFiles(globs []string) []string {
	var files []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	return files
}
