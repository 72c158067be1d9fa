// Package checkpointwatch is the per-job checkpoint state machine. It is fed
// by the REST collector (every scrape) and by the JobManager log (sub-second
// lifecycle events), and turns both into metrics that count every
// checkpoint exactly once.
//
// A checkpoint is identified by job id and checkpoint id. Whichever source
// sees a terminal checkpoint first counts it; the other one recognises it.
// Completions that fell out of Flink's bounded history between two scrapes
// are counted from Flink's own counts, without inventing their durations.
package checkpointwatch

import (
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
)

// Options configures a Watch.
type Options struct {
	// Registerer receives the checkpoint metrics; never the default registry.
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client // nil: DogStatsD disabled
	Logger     *slog.Logger
	// StuckRatio of the checkpoint timeout after which an in-progress
	// checkpoint is stuck (flink.stuck_ratio); default 0.8.
	StuckRatio float64
	Clock      func() time.Time // default time.Now
	// Identity scopes the Datadog event aggregation key, so that jobs of the
	// same name in two clusters are not grouped together.
	Identity identity.Identity
}

// Status of a checkpoint.
type Status uint8

// Checkpoint statuses, as REST's status field says them.
const (
	StatusUnknown Status = iota
	InProgress
	Completed
	Failed
)

// Checkpoint is one entry of a job's checkpoint history.
type Checkpoint struct {
	ID        int64
	Status    Status
	Savepoint bool
	Trigger   time.Time
	// Ack is the latest acknowledgement: the completion time of a completed
	// checkpoint.
	Ack     time.Time
	Failure time.Time
	// Duration is end_to_end_duration; negative when unknown.
	Duration  time.Duration
	StateSize int64 // full size
	// CheckpointedSize is what this checkpoint persisted (incremental);
	// negative when Flink did not report it.
	CheckpointedSize int64
	FailureMessage   string
}

// Counts are Flink's own checkpoint counters for the job.
type Counts struct {
	Restored, Total, InProgress, Completed, Failed int64
}

// Snapshot is one /jobs/:id/checkpoints answer.
type Snapshot struct {
	Counts          Counts
	History         []Checkpoint // any order
	LatestCompleted *Checkpoint  // latest.completed; nil when none
}

// Config is /jobs/:id/checkpoints/config.
type Config struct {
	// Enabled is false when Flink answered 404: checkpointing is disabled.
	Enabled bool
	// Interval is zero when the job has no periodic checkpoints (Flink
	// reports Long.MAX_VALUE then).
	Interval  time.Duration
	Timeout   time.Duration
	Tolerable int // tolerable_failed_checkpoints
}

// Job identifies a running job.
type Job struct {
	ID, Name string
	// Start is the job's start-time. A change means a new incarnation of the
	// same job id (a JobManager restart), whose checkpoint ids and counts
	// start over.
	Start time.Time
}

// DetailsFunc fetches a summary of one checkpoint's per-vertex details
// (which vertices did not acknowledge, which was slowest), for events and
// logs.
type DetailsFunc func(checkpointID int64) (string, error)

// ObserveOptions qualify one REST observation.
type ObserveOptions struct {
	// Baseline marks the agent's first successful scrape: what Flink already
	// shows is the starting point, not news. Jobs first seen later are
	// counted from their first checkpoint.
	Baseline bool
	// Details, when set, is called for new failed checkpoints and for slow
	// ones (rate-limited), at most maxDetailsPerScrape times per job.
	Details DetailsFunc
}

const (
	maxDetailsPerScrape = 2
	slowLogEvery        = 5 * time.Minute
	// logOnlyGrace is how long a job known only from the log waits for
	// REST to name it before it is forgotten.
	logOnlyGrace = 10 * time.Minute
	maxPending   = 256  // log observations waiting for a job name, per job
	maxRecords   = 4096 // checkpoint ids remembered per job
	maxJobs      = 1024
	maxGone      = 256
	// staleInProgress bounds how long an in-progress checkpoint is believed
	// when its timeout is unknown: lost log lines must not keep it forever.
	staleInProgress = time.Hour
	eventTextMax    = 3900 // Datadog caps event text at 4000 characters
)

// Watch is the checkpoint state machine for every job of one cluster. Its
// methods are safe for concurrent use.
type Watch struct {
	log        *slog.Logger
	sd         *dogstatsd.Client
	clock      func() time.Time
	stuckRatio float64
	id         identity.Identity
	m          *metrics

	mu   sync.Mutex
	jobs map[string]*job      // by job id
	gone map[string]time.Time // forgotten job ids: late log lines are ignored
}

// New creates a Watch and registers its metrics on opts.Registerer. A
// registration conflict is a programming error and panics.
func New(opts Options) *Watch {
	w := &Watch{
		log:        opts.Logger,
		sd:         opts.Statsd,
		clock:      opts.Clock,
		stuckRatio: opts.StuckRatio,
		id:         opts.Identity,
		jobs:       map[string]*job{},
		gone:       map[string]time.Time{},
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.clock == nil {
		w.clock = time.Now
	}
	if w.stuckRatio <= 0 || w.stuckRatio > 1 {
		w.stuckRatio = 0.8
	}
	w.m = newMetrics()
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.m.collectors()...)
		opts.Registerer.MustRegister(liveCollector{w})
	}
	return w
}

// job is the state of one job id.
type job struct {
	id, name string
	start    time.Time
	created  time.Time
	known    bool // REST has seen it
	hasPrev  bool
	prev     Counts
	// floor is the lowest id of REST's latest history: everything below it
	// is accounted for by Flink's counts, so late log lines about it are
	// ignored.
	floor     int64
	maxRestID int64
	records   map[int64]*record
	inflight  map[int64]inflight
	cfg       Config
	hasCfg    bool

	lastCompletedID int64
	lastCompletedAt time.Time
	consecutive     int
	lastSlowLog     time.Time
	abortedBefore   time.Time // in-progress checkpoints triggered before were aborted (job left RUNNING)
	failingLogged   bool
	missingLogged   bool
	pending         []pendingObs
	droppedPending  int
	scratch         []Checkpoint
	s               *series // metric children of name, looked up once
}

// record is one checkpoint id the watch has decided about.
type record struct {
	status    Status // StatusUnknown: only a throttling mark so far
	restSeen  bool   // REST has shown it terminal, or its counts absorbed it
	throttled bool   // throttling attribution counted (or pending when status is unknown)
	savepoint bool
	at        time.Time
}

type inflight struct {
	trigger   time.Time
	savepoint bool
}

// pendingObs is a log observation made before the job's name was known.
type pendingObs struct {
	status    Status
	cp        Checkpoint
	newest    bool
	reason    Reason
	throttled bool
	onlyMark  bool // a late throttling mark of an already counted failure
}

func (w *Watch) newJob(id string, now time.Time) *job {
	return &job{id: id, created: now, records: map[int64]*record{}, inflight: map[int64]inflight{}}
}

// jobForLog returns the job for a log observation, creating a log-only job;
// nil for forgotten jobs and when too many jobs are tracked.
func (w *Watch) jobForLog(id string) *job {
	if j := w.jobs[id]; j != nil {
		return j
	}
	if _, ok := w.gone[id]; ok || id == "" || len(w.jobs) >= maxJobs {
		return nil
	}
	j := w.newJob(id, w.clock())
	w.jobs[id] = j
	return j
}

func kindOf(savepoint bool) string {
	if savepoint {
		return "savepoint"
	}
	return "checkpoint"
}

// SetConfig records a job's checkpoint configuration (read once per job id).
func (w *Watch) SetConfig(jobID string, c Config) {
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.jobs[jobID]
	if j == nil {
		if len(w.jobs) >= maxJobs {
			return
		}
		j = w.newJob(jobID, w.clock())
		w.jobs[jobID] = j
	}
	j.cfg, j.hasCfg = c, true
	w.publish(j)
}

// setName names a job and replays what the log saw before the name was known.
func (w *Watch) setName(j *job, name string) {
	if name == "" || j.name == name {
		return
	}
	old := j.name
	j.name = name
	if old != "" && !w.nameInUse(old) {
		w.m.deleteJob(old)
	}
	w.initSeries(j)
	for _, p := range j.pending {
		switch {
		case p.onlyMark:
			w.emitThrottled(j)
		case p.status == Completed:
			w.emitCompleted(j, p.cp, p.newest)
		case p.status == Failed:
			w.emitFailed(j, p.cp, p.reason, p.throttled, "")
		}
	}
	j.pending = nil
	if j.droppedPending > 0 {
		w.log.Warn("log checkpoint observations dropped while the job name was unknown", "job_id", j.id, "job_name", name, "dropped", j.droppedPending)
		j.droppedPending = 0
	}
}

func (w *Watch) nameInUse(name string) bool {
	for _, j := range w.jobs {
		if j.name == name {
			return true
		}
	}
	return false
}

// series are the metric children a job name updates for each checkpoint,
// looked up once per name rather than per observation.
type series struct {
	name      string
	jobTag    string
	completed [2]prometheus.Counter // by kind: checkpoint, savepoint
	failed    [2]prometheus.Counter
	duration  [2]prometheus.Observer
	failures  map[Reason]prometheus.Counter
	throttled prometheus.Counter
}

var kinds = [2]string{"checkpoint", "savepoint"}

func kindIndex(savepoint bool) int {
	if savepoint {
		return 1
	}
	return 0
}

// initSeries creates a job's counters at zero, so that the first failure is
// an increase that rate() and increase() can see.
func (w *Watch) initSeries(j *job) {
	if j.name == "" || (j.s != nil && j.s.name == j.name) {
		return
	}
	n := j.name
	s := &series{name: n, jobTag: dogstatsd.Tag("job_name", n), failures: make(map[Reason]prometheus.Counter, len(Reasons()))}
	for i, k := range kinds {
		s.completed[i] = w.m.total.WithLabelValues(n, k, "completed")
		s.failed[i] = w.m.total.WithLabelValues(n, k, "failed")
	}
	// The savepoint histogram appears with the first savepoint.
	s.duration[0] = w.m.duration.WithLabelValues(n, kinds[0])
	for _, r := range Reasons() {
		s.failures[r] = w.m.failures.WithLabelValues(n, string(r))
	}
	s.throttled = w.m.throttled.WithLabelValues(n)
	w.m.consecutive.WithLabelValues(n)
	j.s = s
}

// ObserveREST takes one /jobs/:id/checkpoints answer for a running job.
func (w *Watch) ObserveREST(jb Job, s Snapshot, o ObserveOptions) {
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.jobs[jb.ID]
	if j == nil {
		if len(w.jobs) >= maxJobs {
			return
		}
		j = w.newJob(jb.ID, w.clock())
		w.jobs[jb.ID] = j
	}
	delete(w.gone, jb.ID)
	first := !j.known
	j.known = true
	w.setName(j, jb.Name)
	w.initSeries(j)

	hist := append(j.scratch[:0], s.History...)
	sort.Slice(hist, func(a, b int) bool { return hist[a].ID < hist[b].ID })
	j.scratch = hist[:0]
	var minID, maxID int64
	if len(hist) > 0 {
		minID, maxID = hist[0].ID, hist[len(hist)-1].ID
	}

	if !first {
		reset := ""
		switch {
		case !jb.Start.IsZero() && !j.start.IsZero() && !jb.Start.Equal(j.start):
			reset = "job start time changed"
		case j.hasPrev && s.Counts.Total < j.prev.Total:
			reset = "checkpoint counts went down"
		case maxID > 0 && maxID < j.maxRestID:
			reset = "checkpoint ids went down"
		}
		if reset != "" {
			w.log.Info("job restarted from scratch: checkpoint ids and counts start over", "job_name", j.name, "job_id", j.id, "why", reset)
			w.newIncarnation(j, jb.Start)
		}
	}
	if !jb.Start.IsZero() {
		j.start = jb.Start
	}

	if first && o.Baseline {
		w.baseline(j, hist, s)
	} else {
		w.advance(j, hist, s, minID, o)
	}
	j.prev, j.hasPrev = s.Counts, true

	// REST is the truth for ids up to the newest it shows; the log may know
	// newer ones.
	for id := range j.inflight {
		if id <= maxID {
			delete(j.inflight, id)
		}
	}
	for _, cp := range hist {
		if cp.Status == InProgress && !cp.Trigger.Before(j.abortedBefore) {
			j.inflight[cp.ID] = inflight{trigger: cp.Trigger, savepoint: cp.Savepoint}
		}
	}
	if minID > j.floor {
		j.floor = minID
	}
	if maxID > j.maxRestID {
		j.maxRestID = maxID
	}
	for id := range j.records {
		if id < j.floor {
			delete(j.records, id)
		}
	}
	w.publish(j)
}

// newIncarnation forgets what belongs to the previous run of a job id.
// Records the log made after the new start are kept: they are the new run's.
func (w *Watch) newIncarnation(j *job, start time.Time) {
	for id, r := range j.records {
		if start.IsZero() || r.at.Before(start) {
			delete(j.records, id)
		}
	}
	for id, f := range j.inflight {
		if start.IsZero() || f.trigger.Before(start) {
			delete(j.inflight, id)
		}
	}
	j.prev, j.hasPrev = Counts{}, true
	j.floor, j.maxRestID, j.lastCompletedID, j.consecutive = 0, 0, 0, 0
}

// baseline adopts what Flink shows at the agent's first scrape without
// counting it, except for the gauges that describe the present.
func (w *Watch) baseline(j *job, hist []Checkpoint, s Snapshot) {
	for _, cp := range hist {
		if cp.Status != Completed && cp.Status != Failed {
			continue
		}
		r := j.records[cp.ID]
		if r == nil {
			r = &record{}
			j.records[cp.ID] = r
		}
		if r.status == StatusUnknown {
			r.status, r.savepoint, r.at = cp.Status, cp.Savepoint, terminalTime(cp)
		}
		r.restSeen = true
		if cp.Status == Completed {
			if cp.ID > j.lastCompletedID {
				j.lastCompletedID, j.consecutive = cp.ID, 0
			}
		} else if _, counted := Classify(cp.FailureMessage); counted && !cp.Savepoint && cp.ID > j.lastCompletedID {
			j.consecutive++
		}
	}
	if lc := s.LatestCompleted; lc != nil {
		if lc.ID > j.lastCompletedID {
			j.lastCompletedID, j.consecutive = lc.ID, 0
		}
		w.setLatestCompleted(j, *lc)
	}
}

// advance counts what is new since the previous scrape.
func (w *Watch) advance(j *job, hist []Checkpoint, s Snapshot, minID int64, o ObserveOptions) {
	var newC, newF int64
	for _, cp := range hist {
		if r := j.records[cp.ID]; r != nil && r.restSeen {
			continue
		}
		switch cp.Status {
		case Completed:
			newC++
		case Failed:
			newF++
		}
	}
	// More finished than the history shows: the rest fell out of it. The
	// log may have counted some of them; count the others from Flink's
	// counts alone, without durations.
	missingC := s.Counts.Completed - j.prev.Completed - newC
	missingF := s.Counts.Failed - j.prev.Failed - newF
	if missingC > 0 || missingF > 0 {
		ids := make([]int64, 0, 8)
		for id, r := range j.records {
			if !r.restSeen && id < minID && (r.status == Completed || r.status == Failed) {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] > ids[b] })
		for _, id := range ids {
			r := j.records[id]
			if r.status == Completed && missingC > 0 {
				missingC--
				r.restSeen = true
			} else if r.status == Failed && missingF > 0 {
				missingF--
				r.restSeen = true
			}
		}
		if missingC > 0 {
			j.consecutive = 0
			w.emitMissing(j, Completed, missingC)
		}
		if missingF > 0 {
			w.emitMissing(j, Failed, missingF)
		}
	}

	// Details go to new failures first; a slow checkpoint gets what is left.
	failedBudget, slowBudget := 0, 0
	if o.Details != nil {
		failedBudget = maxDetailsPerScrape
		slowBudget = max(0, maxDetailsPerScrape-int(newF))
	}
	for _, cp := range hist {
		if cp.Status != Completed && cp.Status != Failed {
			continue
		}
		r := j.records[cp.ID]
		if r != nil && r.restSeen {
			continue
		}
		if r != nil && r.status != StatusUnknown {
			r.restSeen = true // the log counted it first
			continue
		}
		var summary string
		if cp.Status == Completed {
			if slowBudget > 0 && w.slow(j, cp) {
				slowBudget--
				summary = w.fetchDetails(o.Details, j, cp.ID)
				j.lastSlowLog = w.clock()
				w.log.Info("slow checkpoint", "job_name", j.name, "job_id", j.id, "checkpoint_id", cp.ID,
					"duration", cp.Duration, "interval", j.cfg.Interval, "timeout", j.cfg.Timeout, "details", summary)
			}
			w.complete(j, cp, true)
		} else {
			if failedBudget > 0 {
				failedBudget--
				summary = w.fetchDetails(o.Details, j, cp.ID)
			}
			reason, counted := Classify(cp.FailureMessage)
			w.fail(j, cp, reason, counted, false, summary, true)
		}
	}
	if lc := s.LatestCompleted; lc != nil && lc.ID >= j.lastCompletedID {
		w.setLatestCompleted(j, *lc)
	}
}

func (w *Watch) fetchDetails(f DetailsFunc, j *job, id int64) string {
	s, err := f(id)
	if err != nil {
		w.log.Debug("checkpoint details unavailable", "job_id", j.id, "checkpoint_id", id, "err", err)
		return ""
	}
	return s
}

// slow: longer than the interval, or close to the timeout. Only one slow
// checkpoint per job is looked into every slowLogEvery.
func (w *Watch) slow(j *job, cp Checkpoint) bool {
	if !j.hasCfg || cp.Duration <= 0 || w.clock().Sub(j.lastSlowLog) < slowLogEvery {
		return false
	}
	if j.cfg.Interval > 0 && cp.Duration > j.cfg.Interval {
		return true
	}
	return j.cfg.Timeout > 0 && float64(cp.Duration) >= w.stuckRatio*float64(j.cfg.Timeout)
}

func terminalTime(cp Checkpoint) time.Time {
	switch {
	case cp.Status == Failed && !cp.Failure.IsZero():
		return cp.Failure
	case !cp.Ack.IsZero():
		return cp.Ack
	}
	return cp.Trigger
}

// complete counts one newly completed checkpoint.
func (w *Watch) complete(j *job, cp Checkpoint, fromREST bool) {
	r := w.recordFor(j, cp.ID)
	r.status, r.savepoint, r.at, r.restSeen = Completed, cp.Savepoint, terminalTime(cp), fromREST
	delete(j.inflight, cp.ID)
	newest := cp.ID > j.lastCompletedID
	if newest {
		j.lastCompletedID = cp.ID
		j.consecutive = 0
		if j.failingLogged {
			j.failingLogged = false
			w.log.Info("checkpoints complete again", "job_name", j.name, "job_id", j.id, "checkpoint_id", cp.ID)
		}
	}
	if j.name == "" {
		w.queue(j, pendingObs{status: Completed, cp: cp, newest: newest})
		return
	}
	w.emitCompleted(j, cp, newest)
}

// fail counts one newly failed checkpoint.
func (w *Watch) fail(j *job, cp Checkpoint, reason Reason, counted, throttled bool, details string, fromREST bool) {
	r := w.recordFor(j, cp.ID)
	// A throttling mark that arrived before the failure counts now.
	throttled = throttled || r.throttled
	r.status, r.savepoint, r.at, r.restSeen, r.throttled = Failed, cp.Savepoint, terminalTime(cp), fromREST, throttled
	delete(j.inflight, cp.ID)
	if counted && !cp.Savepoint && cp.ID > j.lastCompletedID {
		j.consecutive++
	}
	if !j.failingLogged {
		j.failingLogged = true
		w.log.Warn("checkpoint failed", "job_name", j.name, "job_id", j.id, "checkpoint_id", cp.ID,
			"reason", string(reason), "message", cp.FailureMessage, "details", details)
	}
	if j.name == "" {
		w.queue(j, pendingObs{status: Failed, cp: cp, reason: reason, throttled: throttled})
		return
	}
	w.emitFailed(j, cp, reason, throttled, details)
}

func (w *Watch) queue(j *job, p pendingObs) {
	if len(j.pending) >= maxPending {
		j.droppedPending++
		return
	}
	j.pending = append(j.pending, p)
}

// recordFor returns checkpoint id's record, created (evicting the oldest
// when maxRecords are kept) if there is none.
func (w *Watch) recordFor(j *job, id int64) *record {
	r := j.records[id]
	if r == nil {
		if len(j.records) >= maxRecords {
			w.evictOldest(j)
		}
		r = &record{}
		j.records[id] = r
	}
	return r
}

func (w *Watch) evictOldest(j *job) {
	var low int64 = math.MaxInt64
	for id := range j.records {
		if id < low {
			low = id
		}
	}
	delete(j.records, low)
	if low >= j.floor {
		j.floor = low + 1
	}
}

func (w *Watch) emitCompleted(j *job, cp Checkpoint, newest bool) {
	w.initSeries(j)
	k := kindIndex(cp.Savepoint)
	j.s.completed[k].Inc()
	if cp.Duration >= 0 {
		if k == 1 && j.s.duration[1] == nil {
			j.s.duration[1] = w.m.duration.WithLabelValues(j.name, kinds[1])
		}
		j.s.duration[k].Observe(cp.Duration.Seconds())
	}
	if w.sd.Enabled() {
		kt := dogstatsd.Tag("kind", kinds[k])
		w.sd.Count(dogstatsd.CheckpointCompleted, 1, j.s.jobTag, kt)
		if cp.Duration >= 0 {
			w.sd.Distribution(dogstatsd.CheckpointDuration, cp.Duration.Seconds(), j.s.jobTag, kt)
		}
	}
	if newest && !cp.Savepoint {
		w.setLatestCompleted(j, cp)
	}
}

// setLatestCompleted sets the gauges that describe the latest completed
// checkpoint: setting them twice for one checkpoint changes nothing.
func (w *Watch) setLatestCompleted(j *job, cp Checkpoint) {
	if j.name == "" {
		return
	}
	w.m.size.WithLabelValues(j.name, "full").Set(float64(cp.StateSize))
	if cp.CheckpointedSize >= 0 {
		w.m.size.WithLabelValues(j.name, "incremental").Set(float64(cp.CheckpointedSize))
	}
	if t := terminalTime(cp); !t.IsZero() {
		j.lastCompletedAt = t
		w.m.lastCompleted.WithLabelValues(j.name).Set(float64(t.UnixMilli()) / 1e3)
	}
}

func (w *Watch) emitFailed(j *job, cp Checkpoint, reason Reason, throttled bool, details string) {
	w.initSeries(j)
	k := kindIndex(cp.Savepoint)
	j.s.failed[k].Inc()
	j.s.failures[reason].Inc()
	if w.sd.Enabled() {
		w.sd.Count(dogstatsd.CheckpointFailed, 1, j.s.jobTag, dogstatsd.Tag("kind", kinds[k]), dogstatsd.Tag("reason", string(reason)))
	}
	if throttled {
		w.emitThrottled(j)
	}
	w.event(j, cp, reason, throttled, details)
}

func (w *Watch) emitThrottled(j *job) {
	w.initSeries(j)
	j.s.throttled.Inc()
	w.sd.Count(dogstatsd.CheckpointFailedS3Throttled, 1, j.s.jobTag)
}

// emitMissing counts checkpoints that only Flink's counts know about.
func (w *Watch) emitMissing(j *job, st Status, n int64) {
	if j.name == "" {
		return // only REST counts missing ones, and REST names the job first
	}
	w.initSeries(j)
	kt := dogstatsd.Tag("kind", kinds[0])
	if st == Completed {
		j.s.completed[0].Add(float64(n))
		w.sd.Count(dogstatsd.CheckpointCompleted, n, j.s.jobTag, kt)
		return
	}
	j.s.failed[0].Add(float64(n))
	j.s.failures[ReasonOther].Add(float64(n))
	w.sd.Count(dogstatsd.CheckpointFailed, n, j.s.jobTag, kt, dogstatsd.Tag("reason", string(ReasonOther)))
	if !j.missingLogged {
		j.missingLogged = true
		w.log.Info("failed checkpoints fell out of Flink's checkpoint history between two scrapes: counted with reason other (logged once per job)",
			"job_name", j.name, "job_id", j.id, "count", n)
	}
}

// eventKey groups one job's checkpoint events (Datadog caps it at 100 chars).
func (w *Watch) eventKey(name string) string {
	k := "flink-checkpoint:" + w.id.Cluster + "/" + w.id.Namespace + "/" + name
	if len(k) > 100 {
		k = k[:100]
	}
	return k
}

// inflightState counts the job's in-progress checkpoints, the oldest one's
// age, and whether it is stuck.
func (w *Watch) inflightState(j *job, now time.Time) (n int, oldest time.Duration, stuck bool) {
	limit := staleInProgress
	if j.hasCfg && j.cfg.Timeout > 0 {
		limit = 2 * j.cfg.Timeout
	}
	for _, f := range j.inflight {
		age := now.Sub(f.trigger)
		if age > limit {
			continue // Flink gave up on it long ago; its end was not seen
		}
		n++
		if age > oldest {
			oldest = age
		}
	}
	if oldest < 0 {
		oldest = 0
	}
	stuck = j.hasCfg && j.cfg.Timeout > 0 && n > 0 && float64(oldest) >= w.stuckRatio*float64(j.cfg.Timeout)
	return n, oldest, stuck
}

// failuresUntil is how many more counted failures Flink tolerates before it
// fails the job: it fails it on the (tolerable+1)-th consecutive one.
func failuresUntil(c Config, consecutive int) int {
	t := c.Tolerable
	if t < 0 {
		t = 0
	}
	u := t + 1 - consecutive
	if u < 0 {
		u = 0
	}
	return u
}

// publish sets the job's configuration and failure gauges and sends the
// DogStatsD gauges and service check.
func (w *Watch) publish(j *job) {
	if j.name == "" {
		return
	}
	n := j.name
	w.m.consecutive.WithLabelValues(n).Set(float64(j.consecutive))
	jt := dogstatsd.Tag("job_name", n)
	w.sd.Gauge(dogstatsd.CheckpointConsecutiveFailed, float64(j.consecutive), jt)
	if j.hasCfg && j.cfg.Enabled {
		until := failuresUntil(j.cfg, j.consecutive)
		w.m.until.WithLabelValues(n).Set(float64(until))
		w.sd.Gauge(dogstatsd.CheckpointFailuresUntilFail, float64(until), jt)
		if j.cfg.Interval > 0 {
			w.m.interval.WithLabelValues(n).Set(j.cfg.Interval.Seconds())
			w.sd.Gauge(dogstatsd.CheckpointInterval, j.cfg.Interval.Seconds(), jt)
		} else {
			// No periodic checkpoints: nothing is ever "slower than the interval".
			w.m.interval.WithLabelValues(n).Set(math.Inf(1))
		}
		w.m.timeout.WithLabelValues(n).Set(j.cfg.Timeout.Seconds())
		w.sd.Gauge(dogstatsd.CheckpointTimeout, j.cfg.Timeout.Seconds(), jt)
	}
	if !w.sd.Enabled() {
		return
	}
	now := w.clock()
	cnt, oldest, stuck := w.inflightState(j, now)
	w.sd.Gauge(dogstatsd.CheckpointInProgress, float64(cnt), jt)
	w.sd.Gauge(dogstatsd.CheckpointOldestInProgress, oldest.Seconds(), jt)
	w.sd.Gauge(dogstatsd.CheckpointStuck, b2f(stuck), jt)
	if !j.lastCompletedAt.IsZero() {
		w.sd.Gauge(dogstatsd.CheckpointLastCompletedAge, math.Max(0, now.Sub(j.lastCompletedAt).Seconds()), jt)
	}
	w.serviceCheck(j, stuck, now)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Retain keeps the jobs whose ids are listed (the running jobs of a
// successful scrape) and forgets the others, removing the series of job
// names no longer in use. Jobs known only from the log get logOnlyGrace to
// show up in REST.
func (w *Watch) Retain(jobIDs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	keep := make(map[string]bool, len(jobIDs))
	for _, id := range jobIDs {
		keep[id] = true
	}
	now := w.clock()
	var names []string
	for id, j := range w.jobs {
		if keep[id] || (!j.known && now.Sub(j.created) < logOnlyGrace) {
			continue
		}
		delete(w.jobs, id)
		w.gone[id] = now
		if j.name != "" {
			names = append(names, j.name)
		}
	}
	for _, n := range names {
		if !w.nameInUse(n) {
			w.m.deleteJob(n)
		}
	}
	if len(w.gone) > maxGone {
		for id, t := range w.gone {
			if now.Sub(t) > time.Hour || len(w.gone) > maxGone {
				delete(w.gone, id)
			}
		}
	}
}

// JobIDs lists the job ids the watch tracks (tests and debugging).
func (w *Watch) JobIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.jobs))
	for id := range w.jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
