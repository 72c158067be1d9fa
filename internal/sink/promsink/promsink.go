// Package promsink turns checkpointwatch's events into the flink_checkpoint_*
// Prometheus series, and reads the watch's live state when /metrics is
// scraped for the in-progress gauges.
package promsink

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
)

// durationBuckets span 100 ms to 30 min: sub-second checkpoints of small
// jobs up to the largest timeouts in use.
var durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800}

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
	exceptions    *prometheus.CounterVec

	inProgress, oldest, stuck *prometheus.Desc
}

func newMetrics() *metrics {
	job := []string{"job_name"}
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flink_checkpoint_duration_seconds",
			Help:    "End-to-end duration of each completed checkpoint, observed once per checkpoint id.",
			Buckets: durationBuckets,
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
		exceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_job_exceptions_total",
			Help: "New entries of the job's exception history, read when it restarted, by root exception class (at most 100 classes, then \"other\").",
		}, []string{"job_name", "exception"}),
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
		m.consecutive, m.until, m.interval, m.timeout, m.exceptions}
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
	m.exceptions.DeletePartialMatch(l)
}

// carry adds the counters and copies the gauges of job name from to job
// name to. Histograms cannot take past observations: durations observed
// under from stay with it.
func (m *metrics) carry(from, to string) {
	for _, v := range []*prometheus.CounterVec{m.total, m.failures, m.throttled, m.exceptions} {
		for _, c := range seriesOf(v, from) {
			v.With(relabel(c, to)).Add(c.GetCounter().GetValue())
		}
	}
	for _, v := range []*prometheus.GaugeVec{m.size, m.lastCompleted, m.consecutive, m.until, m.interval, m.timeout} {
		for _, g := range seriesOf(v, from) {
			v.With(relabel(g, to)).Set(g.GetGauge().GetValue())
		}
	}
}

// seriesOf reads a vector's series of one job name.
func seriesOf(c prometheus.Collector, name string) []*dto.Metric {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for pm := range ch {
		var m dto.Metric
		if pm.Write(&m) != nil {
			continue
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "job_name" && l.GetValue() == name {
				out = append(out, &m)
				break
			}
		}
	}
	return out
}

func relabel(m *dto.Metric, name string) prometheus.Labels {
	l := prometheus.Labels{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	l["job_name"] = name
	return l
}

// Sink is the Prometheus sink. Its Handle is called in decision order.
type Sink struct {
	m      *metrics
	status func() []cw.JobStatus
	series map[string]*series // by job name
}

// New registers the checkpoint metrics on reg. status, when set, is the
// watch's Statuses: the in-progress gauges are computed from it when
// /metrics is read, so an aging checkpoint is seen between two scrapes.
func New(reg prometheus.Registerer, status func() []cw.JobStatus) (*Sink, error) {
	s := &Sink{m: newMetrics(), status: status, series: map[string]*series{}}
	cs := s.m.collectors()
	if status != nil {
		cs = append(cs, liveCollector{s})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// series are the children a job name updates for each checkpoint, looked
// up once per name rather than per event.
type series struct {
	completed [2]prometheus.Counter // by kind: checkpoint, savepoint
	failed    [2]prometheus.Counter
	duration  [2]prometheus.Observer
	failures  map[cw.Reason]prometheus.Counter
	throttled prometheus.Counter
}

var kinds = [2]string{"checkpoint", "savepoint"}

func kindIndex(savepoint bool) int {
	if savepoint {
		return 1
	}
	return 0
}

// of returns the series of a job name, creating its counters at zero, so
// that the first failure is an increase that rate() and increase() see.
func (s *Sink) of(name string) *series {
	if sr := s.series[name]; sr != nil {
		return sr
	}
	m := s.m
	sr := &series{failures: make(map[cw.Reason]prometheus.Counter, len(cw.Reasons()))}
	for i, k := range kinds {
		sr.completed[i] = m.total.WithLabelValues(name, k, "completed")
		sr.failed[i] = m.total.WithLabelValues(name, k, "failed")
	}
	// The savepoint histogram appears with the first savepoint.
	sr.duration[0] = m.duration.WithLabelValues(name, kinds[0])
	for _, r := range cw.Reasons() {
		sr.failures[r] = m.failures.WithLabelValues(name, string(r))
	}
	sr.throttled = m.throttled.WithLabelValues(name)
	m.consecutive.WithLabelValues(name)
	s.series[name] = sr
	return sr
}

func (s *Sink) retire(name string) {
	delete(s.series, name)
	s.m.deleteJob(name)
}

// Handle updates the series an event changes.
func (s *Sink) Handle(ev cw.Event) {
	switch e := ev.(type) {
	case cw.JobNamed:
		s.of(e.Job.Name)
		if e.PreviousProvisional {
			// The job id stood in for the name: its counts move to the
			// name, so every checkpoint is counted once across the change.
			s.m.carry(e.Previous, e.Job.Name)
		}
		if e.PreviousRetired {
			s.retire(e.Previous)
		}
	case cw.JobGone:
		if e.NameRetired {
			s.retire(e.Job.Name)
		}
	case cw.CheckpointCompleted:
		sr := s.of(e.Job.Name)
		k := kindIndex(e.Checkpoint.Savepoint)
		sr.completed[k].Inc()
		if d := e.Checkpoint.Duration; d >= 0 {
			if sr.duration[k] == nil {
				sr.duration[k] = s.m.duration.WithLabelValues(e.Job.Name, kinds[k])
			}
			sr.duration[k].Observe(d.Seconds())
		}
	case cw.CheckpointFailed:
		sr := s.of(e.Job.Name)
		sr.failed[kindIndex(e.Checkpoint.Savepoint)].Inc()
		sr.failures[e.Reason].Inc()
		if e.Throttled {
			sr.throttled.Inc()
		}
	case cw.ThrottlingAttributed:
		s.of(e.Job.Name).throttled.Inc()
	case cw.CheckpointsUncounted:
		sr := s.of(e.Job.Name)
		if e.Status == cw.Completed {
			sr.completed[0].Add(float64(e.N))
		} else {
			sr.failed[0].Add(float64(e.N))
			sr.failures[cw.ReasonOther].Add(float64(e.N))
		}
	case cw.LatestCompleted:
		cp := e.Checkpoint
		s.m.size.WithLabelValues(e.Job.Name, "full").Set(float64(cp.StateSize))
		if cp.CheckpointedSize >= 0 {
			s.m.size.WithLabelValues(e.Job.Name, "incremental").Set(float64(cp.CheckpointedSize))
		}
		if t := completedAt(cp); !t.IsZero() {
			s.m.lastCompleted.WithLabelValues(e.Job.Name).Set(float64(t.UnixMilli()) / 1e3)
		}
	case cw.JobRestarted:
		for _, x := range e.Exceptions {
			s.m.exceptions.WithLabelValues(e.Job.Name, x.Label).Inc()
		}
	case cw.JobState:
		n := e.Job.Name
		s.m.consecutive.WithLabelValues(n).Set(float64(e.Consecutive))
		if e.HasConfig && e.Config.Enabled {
			s.m.until.WithLabelValues(n).Set(float64(e.Until))
			if e.Config.Interval > 0 {
				s.m.interval.WithLabelValues(n).Set(e.Config.Interval.Seconds())
			} else {
				// No periodic checkpoints: nothing is ever "slower than the interval".
				s.m.interval.WithLabelValues(n).Set(math.Inf(1))
			}
			s.m.timeout.WithLabelValues(n).Set(e.Config.Timeout.Seconds())
		}
	}
}

// completedAt is a completed checkpoint's completion time (its trigger time
// when Flink gave none).
func completedAt(cp cw.Checkpoint) time.Time {
	if !cp.Ack.IsZero() {
		return cp.Ack
	}
	return cp.Trigger
}

// liveCollector computes the in-progress gauges when /metrics is read.
type liveCollector struct{ s *Sink }

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.s.m.inProgress
	ch <- c.s.m.oldest
	ch <- c.s.m.stuck
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	type agg struct {
		n      int
		oldest time.Duration
		stuck  bool
	}
	by := map[string]*agg{}
	for _, j := range c.s.status() {
		if j.Job.Name == "" {
			continue // not published yet: waiting for its name
		}
		a := by[j.Job.Name]
		if a == nil {
			a = &agg{}
			by[j.Job.Name] = a
		}
		a.n += j.InProgress
		a.oldest = max(a.oldest, j.OldestInProgress)
		a.stuck = a.stuck || j.Stuck
	}
	m := c.s.m
	for name, a := range by {
		ch <- prometheus.MustNewConstMetric(m.inProgress, prometheus.GaugeValue, float64(a.n), name)
		ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, a.oldest.Seconds(), name)
		ch <- prometheus.MustNewConstMetric(m.stuck, prometheus.GaugeValue, b2f(a.stuck), name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
