package agent

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors/version"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"

	"github.com/flink-agent/flink-agent/collector"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/httpclient"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/internal/otlp"
	"github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/internal/sink/tracesink"
	"github.com/flink-agent/flink-agent/logscan"
	"github.com/flink-agent/flink-agent/operatorlog"
	"github.com/flink-agent/flink-agent/pager"
	"github.com/flink-agent/flink-agent/shipper"
)

// build constructs every component that cfg enables, registering their
// metrics on reg; nothing runs yet.
func build(cfg config.Config, d Deps, reg prometheus.Registerer, st *status) (*assembled, error) {
	log := d.Logger
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
	a := &assembled{id: id, statsd: sd, settled: make(chan struct{})}

	// Ready once the first scrape or tail pass has happened, whichever
	// comes first.
	var readyOnce sync.Once
	ready := func() { readyOnce.Do(st.setReady) }

	// Checkpoint traces: one more sink of the watch, and the details it
	// samples are fetched by the collector.
	var extra []cw.Sink
	var sample func(cw.JobRef, cw.Checkpoint) cw.Detail
	if cfg.Traces.Enabled() {
		ts, err := buildTraces(cfg, d, id, wreg, a)
		if err != nil {
			return nil, err
		}
		extra, sample = append(extra, ts), ts.Sample
	}

	// The watch is fed by the REST scrape and by the JobManager's log lines;
	// its events go to the Prometheus, DogStatsD and Datadog event sinks
	// (and traces).
	watch, err := sink.Watch(sink.Options{
		Registerer: wreg, Statsd: sd, Identity: id, Logger: log.With("part", "checkpointwatch"),
		StuckRatio: cfg.Flink.StuckRatio, NameGrace: cfg.Flink.JobNameGrace.D(), NoREST: cfg.Flink.RestURL == "",
		Extra: extra,
	})
	if err != nil {
		return nil, err
	}

	if cfg.Flink.RestURL != "" {
		col, err := collector.New(collector.Options{
			Flink: cfg.Flink, Registerer: wreg, Statsd: sd,
			Logger: log.With("part", "collector"), Watch: watch,
			OnScrape:      func(bool) { ready() },
			UserAgent:     "flink-agent/" + d.Version,
			SampleDetails: sample, DetailBudget: cfg.Traces.MaxDetailRequestsPerScrape,
		})
		if err != nil {
			return nil, err
		}
		a.add("collector", col.Run)
		lint, err := collector.NewConfigLint(col, collector.ConfigLintOptions{
			Interval: cfg.Flink.ConfigLintInterval.D(), Registerer: wreg, Statsd: sd,
			Logger: log.With("part", "configlint"),
		})
		if err != nil {
			return nil, err
		}
		a.add("configlint", lint.Run)
	}

	// The log scanner sees every event after grouping and redaction: S3
	// throttling, and checkpoint lifecycle lines fed to the watch.
	scan, err := logscan.New(logscan.Options{
		Registerer: wreg, Statsd: sd, Logger: log.With("part", "logscan"), Identity: id,
		Checkpoints: watch, ThrottleWindow: cfg.Logs.ThrottleWindow.D(),
	})
	if err != nil {
		return nil, err
	}
	// The Flink Kubernetes Operator's troubles, when this agent tails the
	// operator's log (Flink's own events are skipped at once).
	op, err := operatorlog.New(operatorlog.Options{
		Registerer: wreg, Statsd: sd, Identity: id,
	})
	if err != nil {
		return nil, err
	}
	if len(cfg.Logs.Paths) > 0 {
		// The Loki connection (TLS, credentials, proxy, timeout) is
		// prometheus/common's HTTP client, as the Flink REST one is.
		var lokiClient *http.Client
		if cfg.Loki.URL != "" {
			if lokiClient, err = httpclient.Loki(cfg.Loki, "flink-agent/"+d.Version); err != nil {
				return nil, err
			}
		}
		// A JobManager's log lines become checkpoint metrics within
		// 250 ms; a TaskManager's agent only ships, and wakes less often.
		cadence := shipper.CadenceShipping
		if cfg.Flink.RestURL != "" || id.Component == identity.JobManager {
			cadence = shipper.CadenceCheckpoints
		}
		sh, err := shipper.New(shipper.Options{
			Logs: cfg.Logs, Loki: cfg.Loki, Identity: id, Registerer: wreg, Statsd: sd,
			Logger: log.With("part", "shipper"), Observers: []logevent.Observer{scan, op},
			DrainTimeout: drainTimeout(cfg.Shutdown.Timeout.D()),
			OnFirstPass:  ready,
			OnFirstAck:   a.settle,
			UserAgent:    "flink-agent/" + d.Version,
			HTTPClient:   lokiClient,
			ReadCadence:  cadence,
		})
		if err != nil {
			return nil, err
		}
		a.add("shipper", sh.Run)
		st.addCheck("shipper", sh.Healthy)
	}

	// Direct paging, beside the primary path (alert rules → Alertmanager
	// or Datadog → PagerDuty). It reads the watch's typed job states, the
	// ones the flink_checkpoint_* series show.
	if cfg.PagerDuty.RoutingKeyFile != "" {
		pg, err := pager.New(pager.Options{
			PagerDuty: cfg.PagerDuty, Identity: id,
			Jobs:       pager.JobsFromWatch(watch.Statuses, scan.LastFailure),
			Throttle:   scan.Throttling,
			Registerer: wreg, Logger: log.With("part", "pager"),
		})
		if err != nil {
			return nil, err
		}
		a.add("pager", pg.Run)
	}
	return a, nil
}

// buildTraces builds the OTLP exporter and the traces sink, and adds the
// component that runs them: on shutdown it exports what ended and flushes
// the queue within the drain time.
func buildTraces(cfg config.Config, d Deps, id identity.Identity, reg prometheus.Registerer, a *assembled) (*tracesink.Sink, error) {
	t := cfg.Traces
	log := d.Logger.With("part", "traces")
	// A checkpoint the log saw end waits for REST's view (and the details
	// the collector fetches) this long; without REST, nothing will come.
	wait := 2*cfg.Flink.ScrapeInterval.D() + cfg.Flink.ScrapeTimeout.D()
	if cfg.Flink.RestURL == "" {
		wait = time.Second
	}
	var ts *tracesink.Sink
	tp, err := otlp.New(otlp.Options{
		Traces: t, Identity: id, Version: d.Version, IDGenerator: tracesink.IDGenerator(),
		Registerer: reg, Logger: log, UserAgent: "flink-agent/" + d.Version,
		OnExported: func(spans []sdktrace.ReadOnlySpan) { ts.Exported(spans) },
	})
	if err != nil {
		return nil, err
	}
	ts, err = tracesink.New(tracesink.Options{
		Tracer:      tp.Tracer("github.com/flink-agent/flink-agent/internal/sink/tracesink", trace.WithInstrumentationVersion(d.Version)),
		SampleRatio: t.SampleRatio, SlowRatio: t.SlowRatio, SlowestSubtasks: t.SlowestSubtasks,
		StateFile: tracesState(cfg.Logs), Wait: wait, Registerer: reg, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("exporting checkpoint traces", "protocol", t.Protocol(), "endpoint", t.URL(), "sample_ratio", t.SampleRatio)
	a.add("traces", func(ctx context.Context) error {
		err := ts.Run(ctx)
		sctx, cancel := context.WithTimeout(context.Background(), drainTimeout(cfg.Shutdown.Timeout.D()))
		defer cancel()
		if serr := tp.Shutdown(sctx); serr != nil {
			log.Debug("traces shutdown", "err", serr)
		}
		ts.Save()
		return err
	})
	return ts, nil
}

// tracesState is where the exported checkpoint ids are kept: beside the log
// positions, which decide what the log replays after a restart. Without log
// files nothing is replayed, and nothing needs keeping.
func tracesState(l config.Logs) string {
	if len(l.Paths) == 0 || l.PositionsFile == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(l.PositionsFile), "traces-exported.json")
}

// drainTimeout leaves a second of the shutdown budget for saving positions
// and closing connections after the last push.
func drainTimeout(shutdown time.Duration) time.Duration {
	return max(shutdown-time.Second, shutdown/2)
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
