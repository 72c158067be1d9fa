package checkpointwatch

import (
	"fmt"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// DurationBuckets span 100 ms to 30 min: sub-second checkpoints of small
// jobs up to the largest timeouts in use.
var DurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800}

type metrics struct {
	duration      *prometheus.HistogramVec
	size          *prometheus.GaugeVec
	total         *prometheus.CounterVec
	failures      *prometheus.CounterVec
	throttled     *prometheus.CounterVec
	lastCompleted *prometheus.GaugeVec
	consecutive   *prometheus.GaugeVec
	until         *prometheus.GaugeVec
	interval      *prometheus.GaugeVec
	timeout       *prometheus.GaugeVec

	inProgress, oldest, stuck *prometheus.Desc
}

func newMetrics() *metrics {
	job := []string{"job_name"}
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flink_checkpoint_duration_seconds",
			Help:    "End-to-end duration of each completed checkpoint, observed once per checkpoint id.",
			Buckets: DurationBuckets,
		}, []string{"job_name", "kind"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_checkpoint_size_bytes",
			Help: "Size of the latest completed checkpoint: full state size, and what it persisted (incremental).",
		}, []string{"job_name", "type"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_checkpoints_total",
			Help: "Checkpoints that completed or failed, each counted once.",
		}, []string{"job_name", "kind", "status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_checkpoint_failures_total",
			Help: "Failed checkpoints by classified reason.",
		}, []string{"job_name", "reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_checkpoint_failures_s3_throttled_total",
			Help: "Failed checkpoints attributed to S3 throttling.",
		}, job),
		lastCompleted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_checkpoint_last_completed_timestamp_seconds",
			Help: "Completion time of the latest completed checkpoint.",
		}, job),
		consecutive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_checkpoint_consecutive_failures",
			Help: "Failures since the latest completed checkpoint that Flink counts against tolerable_failed_checkpoints.",
		}, job),
		until: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_checkpoint_failures_until_job_failure",
			Help: "Further counted checkpoint failures Flink tolerates before it fails the job (0: the next one fails it).",
		}, job),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_checkpoint_interval_seconds",
			Help: "Configured checkpoint interval (+Inf: no periodic checkpoints).",
		}, job),
		timeout: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_checkpoint_timeout_seconds",
			Help: "Configured checkpoint timeout.",
		}, job),
		inProgress: prometheus.NewDesc("flink_checkpoint_in_progress",
			"Checkpoints in progress.", job, nil),
		oldest: prometheus.NewDesc("flink_checkpoint_oldest_in_progress_age_seconds",
			"Age of the oldest in-progress checkpoint (0 when none).", job, nil),
		stuck: prometheus.NewDesc("flink_checkpoint_stuck",
			"1 while an in-progress checkpoint is older than the stuck ratio of the checkpoint timeout.", job, nil),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.size, m.total, m.failures, m.throttled, m.lastCompleted,
		m.consecutive, m.until, m.interval, m.timeout}
}

// deleteJob removes every series of a job name.
func (m *metrics) deleteJob(name string) {
	l := prometheus.Labels{"job_name": name}
	m.duration.DeletePartialMatch(l)
	m.size.DeletePartialMatch(l)
	m.total.DeletePartialMatch(l)
	m.failures.DeletePartialMatch(l)
	m.throttled.DeletePartialMatch(l)
	m.lastCompleted.DeletePartialMatch(l)
	m.consecutive.DeletePartialMatch(l)
	m.until.DeletePartialMatch(l)
	m.interval.DeletePartialMatch(l)
	m.timeout.DeletePartialMatch(l)
}

// liveCollector computes the in-progress gauges when /metrics is read, so an
// aging checkpoint is seen between two REST scrapes.
type liveCollector struct{ w *Watch }

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.w.m.inProgress
	ch <- c.w.m.oldest
	ch <- c.w.m.stuck
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	type agg struct {
		n      int
		oldest time.Duration
		stuck  bool
	}
	by := map[string]*agg{}
	now := w.clock()
	for _, j := range w.jobs {
		if j.name == "" || !j.known {
			continue
		}
		n, oldest, stuck := w.inflightState(j, now)
		a := by[j.name]
		if a == nil {
			a = &agg{}
			by[j.name] = a
		}
		a.n += n
		a.oldest = max(a.oldest, oldest)
		a.stuck = a.stuck || stuck
	}
	for name, a := range by {
		ch <- prometheus.MustNewConstMetric(w.m.inProgress, prometheus.GaugeValue, float64(a.n), name)
		ch <- prometheus.MustNewConstMetric(w.m.oldest, prometheus.GaugeValue, a.oldest.Seconds(), name)
		ch <- prometheus.MustNewConstMetric(w.m.stuck, prometheus.GaugeValue, b2f(a.stuck), name)
	}
}

// event sends the Datadog event for one failed checkpoint, with Flink's raw
// failure message.
func (w *Watch) event(j *job, cp Checkpoint, reason Reason, throttled bool, details string) {
	if !w.sd.Enabled() {
		return
	}
	var text strings.Builder
	msg := cp.FailureMessage
	if msg == "" {
		msg = "(Flink gave no failure message)"
	}
	text.WriteString(msg)
	if throttled {
		text.WriteString("\n\nAttributed to S3 throttling.")
	}
	if details != "" {
		text.WriteString("\n\n")
		text.WriteString(details)
	}
	fmt.Fprintf(&text, "\n\njob_id %s, checkpoint %d, %d consecutive counted failures", j.id, cp.ID, j.consecutive)
	if j.hasCfg && j.cfg.Enabled {
		fmt.Fprintf(&text, ", %d more tolerated before Flink fails the job", failuresUntil(j.cfg, j.consecutive))
	}
	body := text.String()
	if len(body) > eventTextMax {
		body = body[:eventTextMax] + "…"
	}
	ts := cp.Failure
	if ts.IsZero() {
		ts = w.clock()
	}
	w.sd.Event(&statsd.Event{
		Title:          fmt.Sprintf("Flink checkpoint %d of %s failed: %s", cp.ID, j.name, reason),
		Text:           body,
		Timestamp:      ts,
		AggregationKey: w.eventKey(j.name),
		Priority:       statsd.Normal,
		SourceTypeName: "flink",
		AlertType:      statsd.Error,
		Tags: []string{dogstatsd.Tag("job_name", j.name), dogstatsd.Tag("job_id", j.id),
			dogstatsd.Tag("reason", string(reason)), dogstatsd.Tag("kind", kindOf(cp.Savepoint))},
	})
}

// serviceCheck sends flink.checkpoint.can_complete: CRITICAL while a
// checkpoint is stuck or the next counted failure fails the job after
// failures already began, WARNING while failures accumulate, OK otherwise.
func (w *Watch) serviceCheck(j *job, stuck bool, now time.Time) {
	st, msg := statsd.Ok, "checkpoints complete"
	until := -1
	if j.hasCfg && j.cfg.Enabled {
		until = failuresUntil(j.cfg, j.consecutive)
	}
	switch {
	case stuck:
		st, msg = statsd.Critical, fmt.Sprintf("a checkpoint is in progress for longer than %.0f%% of the timeout", w.stuckRatio*100)
	case j.consecutive > 0 && until >= 0 && until <= 1:
		st, msg = statsd.Critical, fmt.Sprintf("%d consecutive checkpoint failures; Flink fails the job after %d more", j.consecutive, until)
	case j.consecutive > 0:
		st, msg = statsd.Warn, fmt.Sprintf("%d consecutive checkpoint failures", j.consecutive)
	}
	w.sd.ServiceCheck(&statsd.ServiceCheck{
		Name:      dogstatsd.ServiceCheckCanComplete,
		Status:    st,
		Timestamp: now,
		Message:   msg,
		Tags:      []string{dogstatsd.Tag("job_name", j.name)},
	})
}
