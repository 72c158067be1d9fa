// Package logscan turns Flink log events into signals that dashboards only
// show late, if at all: S3 throttling (per bucket and component, with a
// Datadog event when a burst starts), the checkpoint lifecycle from the
// JobManager log (fed to checkpointwatch within a second of the line being
// written), and the attribution of failed checkpoints to S3 throttling.
//
// A Scanner is a logevent.Observer. It runs on the shipper's reader
// goroutine for every event, so the common case (an event that is neither
// throttling nor a lifecycle line) is a few bytes.Contains calls and no
// allocation; parsing and state only happen for the rare events that match.
package logscan

import (
	"bytes"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/excerpt"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
)

// CheckpointSink receives the checkpoint lifecycle seen in the JobManager
// log. *checkpointwatch.Watch implements it: it counts a checkpoint seen
// both here and over REST once.
type CheckpointSink interface {
	ObserveLogJobName(jobID, name string)
	ObserveLogTriggered(jobID string, cpID int64, t time.Time, savepoint bool)
	ObserveLogCompleted(jobID string, cpID int64, t time.Time, bytes int64, duration time.Duration)
	ObserveLogFailed(jobID string, cpID int64, t time.Time, reason checkpointwatch.Reason, message string, s3Throttled bool)
	MarkThrottled(jobID string, cpID int64)
}

// JobEventSink, when the CheckpointSink also implements it, receives the
// job-level lines: state switches and global failures (among them "Exceeded
// checkpoint tolerable failure threshold").
type JobEventSink interface {
	ObserveLogJobState(jobID, name, from, to string, t time.Time)
	ObserveLogGlobalFailure(message string, toleranceExceeded bool, t time.Time)
}

// LineSink, when the CheckpointSink also implements it, receives every
// checkpoint lifecycle line with its sub-second time, counted or not
// (traces show them as span events): task is the declining task and where
// it ran, message Flink's failure message.
type LineSink interface {
	ObserveLogLine(jobID string, cpID int64, line checkpointwatch.LogLine, t time.Time, task, message string)
}

// TaskManagerSink receives the TaskManagers the JobManager log says were
// lost, each once, however many lines say so (the JobMaster and the
// ResourceManager both do).
type TaskManagerSink interface {
	ObserveTaskManagerLost(id string, reason LossReason, t time.Time)
}

// Options configure a Scanner.
type Options struct {
	// Registerer receives the scanner's metrics; required, never the
	// default registry.
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client // nil: DogStatsD disabled
	Logger     *slog.Logger
	Identity   identity.Identity
	// Checkpoints receives lifecycle events; nil: they are only parsed.
	Checkpoints CheckpointSink
	// TaskManagers receives lost TaskManagers; nil: they are only parsed.
	TaskManagers TaskManagerSink
	// ThrottleWindow (logs.throttle_window): throttling and a failed
	// checkpoint of the same component at most this far apart are related;
	// a burst ends after this long without throttling. Default 2m.
	ThrottleWindow time.Duration
	// MaxBuckets bounds the bucket label's values; later buckets are
	// counted as "other". Default 20.
	MaxBuckets int
	// Clock is time.Now outside tests.
	Clock func() time.Time
}

// OtherBucket is the bucket label once MaxBuckets buckets are known.
const OtherBucket = "other"

const (
	maxRecentFailures = 64  // failures kept for attribution by time window
	maxNamedJobs      = 256 // job names remembered from job-state lines
	maxEventMessage   = 300 // characters of the exception line in events and pages
	maxLostTMs        = 256 // lost TaskManager ids remembered, so that each is reported once
)

// Scanner is the log event observer. Its methods are safe for concurrent
// use; the shipper calls Observe from one goroutine.
type Scanner struct {
	log        *slog.Logger
	sd         *dogstatsd.Client
	id         identity.Identity
	sink       CheckpointSink
	jobSink    JobEventSink
	lineSink   LineSink
	tmSink     TaskManagerSink
	window     time.Duration
	maxBuckets int
	clock      func() time.Time

	throttles  *prometheus.CounterVec
	unrecogniz *prometheus.CounterVec
	lostTM     *prometheus.CounterVec // nil on a TaskManager's sidecar

	mu            sync.Mutex
	buckets       map[string]*burst    // by bucket label value
	lastThrottle  map[string]time.Time // by component
	recent        []failure            // ring of recent failures
	recentNext    int
	current       ThrottleStatus // the cluster-wide burst, for paging
	jobNames      map[string]string
	lastFailure   map[string]string // by job id: Flink's failure message
	loggedOnce    map[string]bool
	checkpointDir map[string]string // by component: the bucket its start-up configuration names
	lostTMs       map[string]bool   // ids reported lost, at most maxLostTMs
	lostOrder     []string          // lostTMs in report order, oldest first
}

type burst struct {
	start, last time.Time
	count       int64
}

type failure struct {
	jobID     string
	id        int64
	t         time.Time
	component string
	throttled bool
}

// New creates a Scanner and registers its metrics.
func New(o Options) (*Scanner, error) {
	if o.Registerer == nil {
		return nil, fmt.Errorf("logscan: Options.Registerer is required")
	}
	s := &Scanner{
		log:           o.Logger,
		sd:            o.Statsd,
		id:            o.Identity,
		sink:          o.Checkpoints,
		tmSink:        o.TaskManagers,
		window:        o.ThrottleWindow,
		maxBuckets:    o.MaxBuckets,
		clock:         o.Clock,
		buckets:       map[string]*burst{},
		lastThrottle:  map[string]time.Time{},
		jobNames:      map[string]string{},
		lastFailure:   map[string]string{},
		loggedOnce:    map[string]bool{},
		lostTMs:       map[string]bool{},
		checkpointDir: map[string]string{},
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_s3_throttle_events_total",
			Help: "S3 throttling occurrences in the Flink logs (one per log event, stack trace included), by bucket and component.",
		}, []string{"bucket", "component"}),
		unrecogniz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_logscan_unrecognized_lines_total",
			Help: "Log lines that carry a checkpoint lifecycle phrase in a form the agent does not parse (Flink changed its wording).",
		}, []string{"pattern"}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.window <= 0 {
		return nil, fmt.Errorf("logscan: ThrottleWindow (logs.throttle_window) must be positive")
	}
	if s.maxBuckets <= 0 {
		s.maxBuckets = 20
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if w, ok := o.Checkpoints.(*checkpointwatch.Watch); ok && w == nil {
		s.sink = nil // TaskManager sidecars have no watch: a nil *Watch means none
	}
	if js, ok := s.sink.(JobEventSink); ok {
		s.jobSink = js
	}
	if ls, ok := s.sink.(LineSink); ok {
		s.lineSink = ls
	}
	for _, c := range []prometheus.Collector{s.throttles, s.unrecogniz} {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("logscan metrics: %w", err)
		}
	}
	// Only the JobManager's log says when a TaskManager was lost.
	if o.Identity.Component != "taskmanager" {
		s.lostTM = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricTaskManagersLost,
			Help: "TaskManagers the JobManager lost, each counted once, by reason from its log: heartbeat_timeout, unreachable, oom_killed, terminated.",
		}, []string{"reason"})
		for _, r := range LossReasons() {
			s.lostTM.WithLabelValues(string(r)) // at 0, so that the first loss is an increase
		}
		if err := o.Registerer.Register(s.lostTM); err != nil {
			return nil, fmt.Errorf("logscan metrics: %w", err)
		}
	}
	return s, nil
}

// Observe implements logevent.Observer.
func (s *Scanner) Observe(ev *logevent.Event) {
	s.Scan(ev.Time, ev.Line, ev.Component)
}

// ObserveHeader acts on the one-line lifecycle records — a checkpoint
// triggered or completed — as soon as their line is read, instead of after
// the multiline idle flush. Everything else, failures included (their cause
// chain decides the S3 attribution), waits for Observe; the watch counts a
// checkpoint once however often it is reported.
func (s *Scanner) ObserveHeader(ev *logevent.Event) {
	h := firstLine(ev.Line)
	if s.lostTM != nil && ev.Component != "taskmanager" && mayBeTaskManagerLoss(h) {
		s.taskManagerLoss(ev.Time, h)
	}
	if !mayBeLifecycle(h) || s.sink == nil {
		return
	}
	var lc Lifecycle
	kind, _, ok := parseLifecycle(h, &lc)
	if !ok || (kind != KindTriggered && kind != KindCompleted) {
		return // a piece of a long line, or not one-line: Observe decides
	}
	t := ev.Time
	if now := s.clock(); t.IsZero() || t.After(now) {
		t = now
	}
	s.onLifecycle(t, &lc, ev.Component, false)
}

var _ logevent.HeaderObserver = (*Scanner)(nil)

// Scan analyses one event: its text (lines joined by '\n'), its time (the
// log line's) and the component whose log it is from. line is not retained.
func (s *Scanner) Scan(t time.Time, line []byte, component string) {
	var th Throttle
	throttled := detectThrottle(line, &th)
	h := firstLine(line)
	// Only the JobManager logs lost TaskManagers.
	if s.lostTM != nil && component != "taskmanager" && mayBeTaskManagerLoss(h) {
		s.taskManagerLoss(t, h)
	}
	lifecycle := mayBeLifecycle(h)
	cpDir, setsCPDir := checkpointDirBucket(h)
	if !throttled && !lifecycle && !setsCPDir {
		return
	}
	if component == "" {
		component = s.id.Component
		if component == "" {
			component = "unknown"
		}
	}
	if setsCPDir {
		s.mu.Lock()
		s.checkpointDir[component] = string(cpDir)
		s.mu.Unlock()
	}
	if now := s.clock(); t.IsZero() || t.After(now) {
		// A time zone mismatch must not put events in the future, where
		// they would keep a burst active.
		t = now
	}
	if throttled {
		s.onThrottle(t, line, component, &th)
	}
	if lifecycle {
		var lc Lifecycle
		kind, pattern, ok := parseLifecycle(line, &lc)
		if !ok {
			s.unrecognized(pattern, h)
			return
		}
		if kind != KindNone {
			s.onLifecycle(t, &lc, component, throttled)
		}
	}
}

// taskManagerLoss reports a lost TaskManager to the sink the first time a
// line says so.
func (s *Scanner) taskManagerLoss(t time.Time, h []byte) {
	l, ok := parseTaskManagerLoss(h)
	if !ok {
		return
	}
	if now := s.clock(); t.IsZero() || t.After(now) {
		t = now
	}
	s.mu.Lock()
	seen := s.lostTMs[l.ID]
	if !seen {
		s.lostTMs[l.ID] = true
		s.lostOrder = append(s.lostOrder, l.ID)
		if len(s.lostOrder) > maxLostTMs {
			delete(s.lostTMs, s.lostOrder[0])
			s.lostOrder = s.lostOrder[1:]
		}
	}
	s.mu.Unlock()
	if seen {
		return
	}
	s.lostTM.WithLabelValues(string(l.Reason)).Inc()
	tag := dogstatsd.Tag("reason", string(l.Reason))
	s.sd.Count(dogstatsd.TaskManagersLost, 1, tag)
	s.lostEvent(t, l, h, tag)
	if s.tmSink != nil {
		s.tmSink.ObserveTaskManagerLost(l.ID, l.Reason, t)
	}
}

// lostEvent announces a lost TaskManager as a Datadog event; replayed old
// lines (the agent catching up) only count.
func (s *Scanner) lostEvent(t time.Time, l TaskManagerLoss, h []byte, tag string) {
	if !s.sd.Enabled() || s.clock().Sub(t) > s.window {
		return
	}
	msg := h
	if i := bytes.Index(h, []byte(" - ")); i >= 0 {
		msg = h[i+3:]
	}
	key := "flink-agent:taskmanager-lost"
	if s.id.Cluster != "" {
		key += ":" + s.id.Cluster
	}
	s.sd.Event(&statsd.Event{
		Title: "Flink TaskManager lost: " + l.ID,
		Text: fmt.Sprintf("JobManager log: %s\n\nReason: %s. Its tasks fail over; the job restarts once a replacement registers. "+
			"Look for the TaskManager's own last log lines, its pod's events (OOMKilled, eviction, node lost) and GC pauses.",
			excerpt.Bytes(string(msg), maxEventMessage), l.Reason),
		Timestamp:      t,
		AggregationKey: key,
		Priority:       statsd.Normal,
		SourceTypeName: "flink",
		AlertType:      statsd.Warning,
		Tags:           []string{tag},
	})
}

func (s *Scanner) unrecognized(pattern string, h []byte) {
	s.unrecogniz.WithLabelValues(pattern).Inc()
	s.mu.Lock()
	first := !s.loggedOnce[pattern]
	s.loggedOnce[pattern] = true
	s.mu.Unlock()
	if first {
		s.log.Warn("checkpoint log line in an unknown form; further ones are only counted",
			"pattern", pattern, "line", excerpt.Bytes(string(h), 400))
	}
}

func (s *Scanner) onThrottle(t time.Time, ev []byte, component string, th *Throttle) {
	msg := throttleMessage(ev)
	s.mu.Lock()
	named := th.Bucket
	if d := s.checkpointDir[component]; th.CheckpointIO && d != "" {
		named = []byte(d)
	}
	bucket := s.bucketLabel(named)
	b := s.buckets[bucket]
	starts := b == nil || t.Sub(b.last) > s.window
	if b == nil {
		b = &burst{}
		s.buckets[bucket] = b
	}
	if starts {
		b.start, b.count = t, 0
	}
	if t.After(b.last) {
		b.last = t
	}
	b.count++
	if last := s.lastThrottle[component]; t.After(last) {
		s.lastThrottle[component] = t
	}
	c := &s.current
	if c.Last.IsZero() || t.Sub(c.Last) > s.window {
		*c = ThrottleStatus{Since: t, Buckets: map[string]int64{}}
	}
	if t.After(c.Last) {
		c.Last = t
	}
	c.Events++
	c.Buckets[bucket]++
	c.LastMessage, c.LastOperation, c.LastComponent = msg, th.Operation, component
	marks := s.attributeLate(t, component)
	s.mu.Unlock()

	s.throttles.WithLabelValues(bucket, component).Inc()
	tags := []string{dogstatsd.Tag("bucket", bucket)}
	if component != s.id.Component {
		// The client's global tags already carry the agent's own component.
		tags = append(tags, dogstatsd.Tag("component", component))
	}
	if th.Operation != "" {
		tags = append(tags, dogstatsd.Tag("operation", th.Operation))
	}
	s.sd.Count(dogstatsd.S3Throttle, 1, tags...)
	// Replayed old lines (the agent catching up) are counted, but they do
	// not announce a burst that is long over.
	if starts && s.clock().Sub(t) <= s.window {
		s.burstEvent(t, bucket, component, th, msg, tags)
	}
	for _, f := range marks {
		s.sink.MarkThrottled(f.jobID, f.id)
	}
}

// bucketLabel caps the bucket label's values. Called with s.mu held.
func (s *Scanner) bucketLabel(b []byte) string {
	if len(b) == 0 {
		return UnknownBucket
	}
	if _, ok := s.buckets[string(b)]; ok {
		return string(b)
	}
	if len(s.buckets) >= s.maxBuckets {
		return OtherBucket
	}
	return string(b)
}

// attributeLate marks the component's recent unattributed failures that
// happened within the window before t. Called with s.mu held.
func (s *Scanner) attributeLate(t time.Time, component string) []failure {
	if s.sink == nil {
		return nil
	}
	var marks []failure
	for i := range s.recent {
		f := &s.recent[i]
		if f.throttled || f.component != component || f.t.After(t) || t.Sub(f.t) > s.window {
			continue
		}
		f.throttled = true
		marks = append(marks, *f)
	}
	return marks
}

func (s *Scanner) burstEvent(t time.Time, bucket, component string, th *Throttle, msg string, tags []string) {
	if !s.sd.Enabled() {
		return
	}
	var text strings.Builder
	fmt.Fprintf(&text, "%s log: %s", component, msg)
	if th.Operation != "" {
		fmt.Fprintf(&text, "\nOperation: %s", th.Operation)
	}
	fmt.Fprintf(&text, "\nClient: %s\n\nS3 is rejecting requests for exceeding its request rate. Further occurrences are counted in flink.s3.throttle; "+
		"the next event is sent after %s without throttling. If checkpoints write to this bucket, check s3.entropy.key (entropy injection).",
		th.Form, s.window)
	key := "flink-agent:s3-throttle:" + bucket
	if s.id.Cluster != "" {
		key = "flink-agent:s3-throttle:" + s.id.Cluster + ":" + bucket
	}
	s.sd.Event(&statsd.Event{
		Title:          "S3 throttling on bucket " + bucket,
		Text:           text.String(),
		Timestamp:      t,
		AggregationKey: key,
		Priority:       statsd.Normal,
		SourceTypeName: "flink",
		AlertType:      statsd.Warning,
		Tags:           tags,
	})
}

func (s *Scanner) onLifecycle(t time.Time, lc *Lifecycle, component string, eventThrottled bool) {
	if s.sink == nil {
		switch lc.Kind {
		case KindJobState:
			s.rememberName(lc.JobID, lc.JobName)
		case KindExpired, KindDeclined, KindFailed, KindDiscarded:
			s.mu.Lock()
			s.rememberFailure(lc.JobID, lc.Message)
			s.mu.Unlock()
		}
		return
	}
	s.observeLine(t, lc)
	switch lc.Kind {
	case KindTriggered:
		tt := lc.TriggerTime
		if tt.IsZero() {
			tt = t
		}
		s.sink.ObserveLogTriggered(lc.JobID, lc.CheckpointID, tt, lc.Savepoint)
	case KindCompleted:
		s.sink.ObserveLogCompleted(lc.JobID, lc.CheckpointID, t, lc.StateBytes, lc.Duration)
	case KindExpired, KindDeclined, KindFailed, KindDiscarded:
		if lc.CheckpointID < 0 {
			return // a trigger failure before an id was assigned: REST has no entry either
		}
		s.onFailure(t, lc, component, eventThrottled)
	case KindJobState:
		s.rememberName(lc.JobID, lc.JobName)
		s.sink.ObserveLogJobName(lc.JobID, lc.JobName)
		if s.jobSink != nil {
			s.jobSink.ObserveLogJobState(lc.JobID, lc.JobName, lc.From, lc.To, t)
		}
	case KindGlobalFailure:
		if s.jobSink != nil {
			s.jobSink.ObserveLogGlobalFailure(lc.Message, lc.ToleranceExceeded, t)
		}
	}
}

// observeLine hands a checkpoint's lifecycle line to the line sink.
func (s *Scanner) observeLine(t time.Time, lc *Lifecycle) {
	if s.lineSink == nil || lc.CheckpointID < 0 {
		return
	}
	var line checkpointwatch.LogLine
	task := ""
	switch lc.Kind {
	case KindTriggered:
		line = checkpointwatch.LogTriggered
		if !lc.TriggerTime.IsZero() {
			t = lc.TriggerTime
		}
	case KindCompleted:
		line = checkpointwatch.LogCompleted
	case KindDeclined:
		line, task = checkpointwatch.LogDeclined, lc.Task
		if lc.Location != "" {
			task += " at " + lc.Location
		}
	case KindExpired:
		line = checkpointwatch.LogExpired
	case KindFailed, KindDiscarded:
		line = checkpointwatch.LogFailed
	default:
		return
	}
	s.lineSink.ObserveLogLine(lc.JobID, lc.CheckpointID, line, t, task, lc.Message)
}

func (s *Scanner) onFailure(t time.Time, lc *Lifecycle, component string, eventThrottled bool) {
	s.mu.Lock()
	s.rememberFailure(lc.JobID, lc.Message)
	throttled := eventThrottled
	if last, ok := s.lastThrottle[component]; ok && !throttled && !last.After(t) && t.Sub(last) <= s.window {
		throttled = true
	}
	for i := range s.recent {
		f := &s.recent[i]
		if f.jobID != lc.JobID || f.id != lc.CheckpointID {
			continue
		}
		// Another line about a failure already reported: only a new
		// attribution is news.
		mark := throttled && !f.throttled
		f.throttled = f.throttled || throttled
		s.mu.Unlock()
		if mark {
			s.sink.MarkThrottled(lc.JobID, lc.CheckpointID)
		}
		return
	}
	f := failure{jobID: lc.JobID, id: lc.CheckpointID, t: t, component: component, throttled: throttled}
	if len(s.recent) < maxRecentFailures {
		s.recent = append(s.recent, f)
	} else {
		s.recent[s.recentNext] = f
		s.recentNext = (s.recentNext + 1) % maxRecentFailures
	}
	s.mu.Unlock()
	var reason checkpointwatch.Reason // empty: the watch classifies the message
	if lc.Kind == KindExpired {
		reason = checkpointwatch.ReasonExpired
	}
	s.sink.ObserveLogFailed(lc.JobID, lc.CheckpointID, t, reason, lc.Message, throttled)
}

func (s *Scanner) rememberName(jobID, name string) {
	if name == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobNames[jobID]; !ok && len(s.jobNames) >= maxNamedJobs {
		return
	}
	s.jobNames[jobID] = name
}

// rememberFailure keeps the latest failure message per job. Called with
// s.mu held.
func (s *Scanner) rememberFailure(jobID, msg string) {
	if msg == "" {
		return
	}
	if _, ok := s.lastFailure[jobID]; !ok && len(s.lastFailure) >= maxNamedJobs {
		return
	}
	s.lastFailure[jobID] = msg
}

// LastFailure returns the latest checkpoint failure message the log showed
// for a job, by job id or by the name its state lines gave it.
func (s *Scanner) LastFailure(job string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.lastFailure[job]; ok {
		return m
	}
	for id, name := range s.jobNames {
		if name == job {
			return s.lastFailure[id]
		}
	}
	return ""
}

// ThrottleStatus describes the current (or latest) burst of S3 throttling
// across buckets and components: occurrences no more than the throttle
// window apart.
type ThrottleStatus struct {
	// Active: the latest occurrence is within the throttle window of now.
	Active bool
	// Since is the first occurrence of the burst, Last the latest.
	Since, Last time.Time
	Events      int64
	// Buckets counts the burst's occurrences per bucket label.
	Buckets       map[string]int64
	LastMessage   string // the exception line, shortened
	LastOperation string
	LastComponent string
}

// Throttling reports the current burst; the zero value when there was none.
func (s *Scanner) Throttling() ThrottleStatus {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.current
	if c.Last.IsZero() {
		return ThrottleStatus{}
	}
	c.Buckets = make(map[string]int64, len(s.current.Buckets))
	for k, v := range s.current.Buckets {
		c.Buckets[k] = v
	}
	c.Active = now.Sub(c.Last) <= s.window
	return c
}

// BucketList renders a burst's buckets, most affected first.
func (t ThrottleStatus) BucketList() []string {
	bs := make([]string, 0, len(t.Buckets))
	for b := range t.Buckets {
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool {
		if t.Buckets[bs[i]] != t.Buckets[bs[j]] {
			return t.Buckets[bs[i]] > t.Buckets[bs[j]]
		}
		return bs[i] < bs[j]
	})
	return bs
}

// throttleMessage is the event's first line that carries the throttling
// exception, without "Caused by: " and indentation, shortened.
func throttleMessage(ev []byte) string {
	for rest := ev; len(rest) > 0; {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if isFrame(l) {
			continue
		}
		var f throttleFlags
		f.scan(l)
		if f.slow || f.reduce || f.s3a || f.tooMany {
			s := strings.TrimSpace(string(l))
			s = strings.TrimPrefix(s, "Caused by: ")
			s = strings.TrimPrefix(s, "Suppressed: ")
			return excerpt.Bytes(s, maxEventMessage)
		}
	}
	return excerpt.Bytes(strings.TrimSpace(string(firstLine(ev))), maxEventMessage)
}
