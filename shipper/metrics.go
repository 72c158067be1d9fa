package shipper

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Batch results for flink_agent_loki_batches_total.
const (
	resultSuccess  = "success"  // acknowledged by Loki
	resultRetry    = "retry"    // failed attempt that will be retried (429, 5xx, network)
	resultRejected = "rejected" // 400: permanent, counted and skipped
	resultDropped  = "dropped"  // loki.max_retries exhausted
)

type metrics struct {
	lines      *prometheus.CounterVec
	exceptions *prometheus.CounterVec
	tailFiles  prometheus.Gauge
	tailBytes  prometheus.Counter
	sent       prometheus.Counter
	batches    *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	buffered   prometheus.Gauge
	lag        prometheus.Gauge
	redactions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_log_lines_total",
			Help: "Log events read from Flink's log files (a stack trace is one event), by level.",
		}, []string{"component", "level"}),
		exceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_log_exceptions_total",
			Help: "Log events carrying a stack trace, by top-level exception class (at most 100 classes, then \"other\").",
		}, []string{"component", "exception"}),
		tailFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flink_agent_tail_files",
			Help: "Log files open for reading.",
		}),
		tailBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flink_agent_tail_bytes_total",
			Help: "Bytes read from log files.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flink_agent_loki_entries_sent_total",
			Help: "Log entries acknowledged by Loki.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_loki_batches_total",
			Help: "Push attempts by result: success, retry (429, 5xx, network; retried), rejected (400; skipped), dropped (loki.max_retries exhausted).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_loki_entries_rejected_total",
			Help: "Log entries Loki rejected permanently (400), by reason.",
		}, []string{"reason"}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flink_agent_loki_buffered_bytes",
			Help: "Bytes of log entries held in memory until Loki acknowledges them (bounded by logs.max_buffer_bytes).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flink_agent_loki_lag_seconds",
			Help: "Age of the oldest log entry read but not yet acknowledged by Loki (0 when none).",
		}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_redactions_total",
			Help: "Secrets removed from log events before shipping, by rule.",
		}, []string{"rule"}),
	}
	for _, c := range []prometheus.Collector{m.lines, m.exceptions, m.tailFiles, m.tailBytes, m.sent,
		m.batches, m.rejected, m.buffered, m.lag, m.redactions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{resultSuccess, resultRetry, resultRejected, resultDropped} {
		m.batches.WithLabelValues(r)
	}
	return m, nil
}
