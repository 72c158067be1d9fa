package shipper

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/labelvalue"
	"github.com/flink-agent/flink-agent/shipper/internal/multiline"
	"github.com/flink-agent/flink-agent/shipper/internal/tail"
)

// Batch results for flink_agent_loki_batches_total.
const (
	resultSuccess  = "success"  // acknowledged by Loki
	resultRetry    = "retry"    // failed attempt that will be retried (429, 5xx, network)
	resultRejected = "rejected" // 400: permanent, counted and skipped
	resultDropped  = "dropped"  // loki.max_retries exhausted
)

const maxExceptions = 100 // distinct exception label values per component

// metrics are the shipper's metrics, Prometheus and DogStatsD. The reader
// counts lines and exceptions locally and adds them every 500 ms (flush);
// the sender's outcomes arrive as loki.Observer calls.
type metrics struct {
	lines      *prometheus.CounterVec
	exceptions *prometheus.CounterVec
	tailFiles  prometheus.Gauge
	tailBytes  prometheus.Counter
	refused    *prometheus.CounterVec
	sent       prometheus.Counter
	batches    *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	buffered   prometheus.GaugeFunc
	lag        prometheus.GaugeFunc
	// batches' children, looked up once: one push a second should not
	// hash label values.
	batchOK, batchRetry, batchRejected, batchDropped prometheus.Counter
	redactions                                       *prometheus.CounterVec

	statsd *dogstatsd.Client // nil: disabled
	id     identity.Identity

	// The reader's counts, by component.
	comps       []string
	compIdx     map[string]int
	lineCounts  []int64 // [comp*NumLevels+level], not yet added to the metrics
	lineMetrics []prometheus.Counter
	excs        []map[string]*excCount
}

type excCount struct {
	prom    prometheus.Counter
	pending int64
	tag     string
}

// newMetrics registers the shipper's metrics; lag and buffered are read
// when they are collected (a ticker would wake the agent every second).
func newMetrics(reg prometheus.Registerer, sd *dogstatsd.Client, id identity.Identity, lag, buffered func() float64) (*metrics, error) {
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
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_tail_refused_files_total",
			Help: "Files matching logs.paths that were not read, once per file: not_regular_file (FIFO, socket, device), outside_log_directories (a symlink whose target lies outside the globs' directories), unreadable (permission denied).",
		}, []string{"reason"}),
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
		buffered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flink_agent_loki_buffered_bytes",
			Help: "Bytes of log entries held in memory until Loki acknowledges them (bounded by logs.max_buffer_bytes).",
		}, buffered),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flink_agent_loki_lag_seconds",
			Help: "Age of the oldest log entry read but not yet acknowledged by Loki (0 when none).",
		}, lag),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_redactions_total",
			Help: "Secrets removed from log events before shipping, by rule.",
		}, []string{"rule"}),
		statsd:  sd,
		id:      id,
		compIdx: map[string]int{},
	}
	for _, c := range []prometheus.Collector{m.lines, m.exceptions, m.tailFiles, m.tailBytes, m.refused, m.sent,
		m.batches, m.rejected, m.buffered, m.lag, m.redactions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.batchOK, m.batchRetry = m.batches.WithLabelValues(resultSuccess), m.batches.WithLabelValues(resultRetry)
	m.batchRejected, m.batchDropped = m.batches.WithLabelValues(resultRejected), m.batches.WithLabelValues(resultDropped)
	for _, r := range []string{tail.ReasonNotRegular, tail.ReasonOutside, tail.ReasonUnreadable} {
		m.refused.WithLabelValues(r)
	}
	return m, nil
}

// Refused counts a file the tailer did not admit (tail.Observer).
func (m *metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// registerProgress exports when the reader last made progress.
func registerProgress(reg prometheus.Registerer, tl *tail.Tailer) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flink_agent_tail_last_progress_timestamp_seconds",
		Help: "When the log reader last read data, found nothing left to read, or waited for memory; /healthz fails when this is older than logs.stall_timeout while files have unread bytes.",
	}, func() float64 { return float64(tl.LastProgress().UnixNano()) / 1e9 }))
}

// component returns the index of a component name in the counts.
func (m *metrics) component(name string) int {
	if i, ok := m.compIdx[name]; ok {
		return i
	}
	i := len(m.comps)
	m.comps = append(m.comps, name)
	m.compIdx[name] = i
	for l := multiline.Level(0); l < multiline.NumLevels; l++ {
		m.lineCounts = append(m.lineCounts, 0)
		m.lineMetrics = append(m.lineMetrics, m.lines.WithLabelValues(name, l.String()))
	}
	m.excs = append(m.excs, map[string]*excCount{})
	return i
}

// countLine counts one event of component comp.
func (m *metrics) countLine(comp int, level multiline.Level) {
	m.lineCounts[comp*int(multiline.NumLevels)+int(level)]++
}

// countException counts one event's top-level exception class.
func (m *metrics) countException(comp int, class []byte) {
	if len(class) > labelvalue.Max {
		class = []byte(labelvalue.Cap(string(class))) // the label, and the map key
	}
	c := m.excs[comp]
	e, ok := c[string(class)]
	if !ok {
		name := string(class)
		if len(c) >= maxExceptions {
			name = "other"
			e, ok = c[name]
		}
		if !ok {
			e = &excCount{prom: m.exceptions.WithLabelValues(m.comps[comp], name), tag: dogstatsd.Tag("exception", name)}
			c[name] = e
		}
	}
	e.prom.Inc()
	e.pending++
}

// flush adds the reader's counts to the metrics.
func (m *metrics) flush(tailBytes int64, openFiles int) {
	if tailBytes > 0 {
		m.tailBytes.Add(float64(tailBytes))
	}
	n := int(multiline.NumLevels)
	for i, c := range m.lineCounts {
		if c == 0 {
			continue
		}
		m.lineCounts[i] = 0
		m.lineMetrics[i].Add(float64(c))
		if m.statsd.Enabled() {
			comp := m.comps[i/n]
			tags := []string{"level:" + multiline.Level(i%n).String()}
			if m.id.Component == "" && comp != "" {
				tags = append(tags, dogstatsd.Tag("component", comp))
			}
			m.statsd.Count(dogstatsd.LogLines, c, tags...)
		}
	}
	for ci, c := range m.excs {
		for _, e := range c {
			if e.pending == 0 {
				continue
			}
			if m.statsd.Enabled() {
				tags := []string{e.tag}
				if comp := m.comps[ci]; m.id.Component == "" && comp != "" {
					tags = append(tags, dogstatsd.Tag("component", comp))
				}
				m.statsd.Count(dogstatsd.LogExceptions, e.pending, tags...)
			}
			e.pending = 0
		}
	}
	m.tailFiles.Set(float64(openFiles))
}

// The sender's outcomes (loki.Observer).

func (m *metrics) Delivered(n int) {
	m.batchOK.Inc()
	m.sent.Add(float64(n))
}

func (m *metrics) Retrying(string) { m.batchRetry.Inc() }

func (m *metrics) Rejected(reason string, rejected, n int) {
	m.batchRejected.Inc()
	m.rejected.WithLabelValues(reason).Add(float64(rejected))
	m.sent.Add(float64(n - rejected))
	m.statsd.Count(dogstatsd.AgentLokiEntriesRejected, int64(rejected), dogstatsd.Tag("reason", reason))
}

func (m *metrics) Dropped(n int) {
	m.batchDropped.Inc()
	m.rejected.WithLabelValues("retries_exhausted").Add(float64(n))
	m.statsd.Count(dogstatsd.AgentLokiEntriesRejected, int64(n), dogstatsd.Tag("reason", "retries_exhausted"))
}
