// Package checkpointwatch is the per-job checkpoint state machine. It is fed
// by the REST collector (every scrape) and by the JobManager log (sub-second
// lifecycle events), and decides: every checkpoint counted exactly once,
// failures classified, stuck checkpoints flagged. Its decisions are events
// (event.go) handed to sinks, which make metrics, Datadog events, pages and
// traces of them. It does no I/O: when a checkpoint's details are worth a
// REST call, ObserveREST says so and the collector makes the call.
//
// A checkpoint is identified by job id and checkpoint id. Whichever source
// sees a terminal checkpoint first counts it; the other one recognises it.
// Completions that fell out of Flink's bounded history between two scrapes
// are counted from Flink's own counts, without inventing their durations.
package checkpointwatch

import (
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"
)

// Options configures a Watch.
type Options struct {
	// Sink receives every event (Sinks fans out to several); nil: none.
	Sink   Sink
	Logger *slog.Logger
	// StuckRatio of the checkpoint timeout after which an in-progress
	// checkpoint is stuck (flink.stuck_ratio, validated by config).
	StuckRatio float64
	// NameGrace is how long checkpoint events the log reports for a job
	// without a name wait for one (from REST, or a job-state line) before
	// they are published with the job id as its name (flink.job_name_grace,
	// validated; zero publishes at once).
	NameGrace time.Duration
	// NoREST: the REST scrape is disabled, so no name will come from it:
	// log events of unnamed jobs are published at once.
	NoREST bool
	Clock  func() time.Time // default time.Now
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

// ObserveOptions qualify one REST observation.
type ObserveOptions struct {
	// Baseline marks the agent's first successful scrape: what Flink already
	// shows is the starting point, not news — except checkpoints that ended
	// after BaselineSince (when set: the agent's start), which ended while
	// the agent started or REST did not answer yet, and which the log may
	// not have read yet either. Jobs first seen later are counted from their
	// first checkpoint.
	Baseline      bool
	BaselineSince time.Time
	// Details: the caller can fetch checkpoint details. ObserveREST then
	// asks for those of new failed checkpoints and of slow ones
	// (rate-limited), at most maxDetailsPerScrape per job and scrape.
	Details bool
	// Sample, when set with Details, says how much of each checkpoint REST
	// shows finished for the first time (counted now or by the log before)
	// a sink wants to see, e.g. for traces: details beyond new failures and
	// slow ones are then requested as DetailsSampled, and Subtasks is set
	// on the request. It runs under the watch's lock, so it must only
	// decide (a sampling rate, a hash).
	Sample func(JobRef, Checkpoint) Detail
}

// MaxJobs bounds the jobs whose checkpoint state is kept (memory: each has
// dozens of series); more are observed by REST but not tracked.
const MaxJobs = 1024

const (
	maxDetailsPerScrape = 2
	slowLogEvery        = 5 * time.Minute
	// logOnlyGrace is how long a job known only from the log waits for
	// REST to name it before it is forgotten.
	logOnlyGrace = 10 * time.Minute
	maxPending   = 256  // log observations waiting for a job name, per job
	maxRecords   = 4096 // checkpoint ids remembered per job
	maxGone      = 256
	// staleInProgress bounds how long an in-progress checkpoint is believed
	// when its timeout is unknown: lost log lines must not keep it forever.
	staleInProgress = time.Hour
)

// Watch is the checkpoint state machine for every job of one cluster. Its
// methods are safe for concurrent use.
type Watch struct {
	log        *slog.Logger
	sink       Sink
	clock      func() time.Time
	stuckRatio float64
	nameGrace  time.Duration

	mu sync.Mutex
	// restDown: REST is disabled or its last scrape failed, so log events
	// of unnamed jobs are published under the job id without waiting.
	restDown bool
	jobs     map[string]*job      // by job id
	gone     map[string]time.Time // forgotten job ids: late log lines are ignored
	out      []Event              // decided under mu, delivered after it

	// deliverMu keeps delivery in decision order: it is taken before mu is
	// released, and sinks run under it only.
	deliverMu sync.Mutex
}

// New creates a Watch. StuckRatio must be in (0, 1]: config.Validate makes
// sure of it, so anything else is a programming error and panics.
func New(opts Options) *Watch {
	if opts.StuckRatio <= 0 || opts.StuckRatio > 1 {
		panic(fmt.Sprintf("checkpointwatch: StuckRatio %v outside (0, 1]", opts.StuckRatio))
	}
	w := &Watch{
		log:        opts.Logger,
		sink:       opts.Sink,
		clock:      opts.Clock,
		stuckRatio: opts.StuckRatio,
		nameGrace:  opts.NameGrace,
		restDown:   opts.NoREST,
		jobs:       map[string]*job{},
		gone:       map[string]time.Time{},
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.clock == nil {
		w.clock = time.Now
	}
	if w.sink == nil {
		w.sink = Sinks(nil)
	}
	return w
}

// lock takes the state lock; unlock releases it and then delivers what was
// decided under it, in order, outside it.
func (w *Watch) lock() { w.mu.Lock() }

func (w *Watch) unlock() {
	evs := w.out
	w.out = nil
	if len(evs) == 0 {
		w.mu.Unlock()
		return
	}
	w.deliverMu.Lock()
	w.mu.Unlock()
	defer w.deliverMu.Unlock()
	for _, ev := range evs {
		w.sink.Handle(ev)
	}
}

func (w *Watch) emit(ev Event) { w.out = append(w.out, ev) }

// Emit delivers an event decided elsewhere (the collector's job restarts
// and checkpoint details) in order with the watch's own.
func (w *Watch) Emit(ev Event) {
	w.lock()
	w.emit(ev)
	w.unlock()
}

// job is the state of one job id.
type job struct {
	id, name string
	start    time.Time
	created  time.Time
	known    bool // REST has seen it
	// provisional: name is the job id, standing in until REST or the log
	// names the job.
	provisional bool
	graceTimer  *time.Timer // names a log-only job by its id when the grace ends
	hasPrev     bool
	prev        Counts
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
	announced       string // the name sinks know the job by
	stuck           bool   // as last announced
	lastFailure     string // Flink's latest failure message
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
	status   Status
	cp       Checkpoint
	newest   bool
	failed   CheckpointFailed
	onlyMark bool // a late throttling mark of an already counted failure (cp.ID)
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
	if _, ok := w.gone[id]; ok || id == "" || len(w.jobs) >= MaxJobs {
		return nil
	}
	j := w.newJob(id, w.clock())
	w.jobs[id] = j
	if !w.restDown && w.nameGrace > 0 {
		// Published under its id when the grace ends without a name,
		// even if the log says nothing more about it.
		j.graceTimer = time.AfterFunc(w.nameGrace, func() {
			w.lock()
			defer w.unlock()
			if w.jobs[id] == j {
				w.nameByID(j)
			}
		})
	}
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
	w.lock()
	defer w.unlock()
	j := w.jobs[jobID]
	if j == nil {
		if len(w.jobs) >= MaxJobs {
			return
		}
		j = w.newJob(jobID, w.clock())
		w.jobs[jobID] = j
	}
	j.cfg, j.hasCfg = c, true
	w.publish(j)
}

func (j *job) ref() JobRef { return JobRef{ID: j.id, Name: j.name} }

func (j *job) stopGrace() {
	if j.graceTimer != nil {
		j.graceTimer.Stop()
		j.graceTimer = nil
	}
}

// setName names a job and replays what the log saw before the name was known.
func (w *Watch) setName(j *job, name string) {
	if name == "" || j.name == name {
		return
	}
	j.name = name
	j.provisional = false
	j.stopGrace()
	w.announce(j)
	w.replay(j)
}

// replay sends what the log saw before the job had a name.
func (w *Watch) replay(j *job) {
	for _, p := range j.pending {
		switch {
		case p.onlyMark:
			w.emit(ThrottlingAttributed{Job: j.ref(), CheckpointID: p.cp.ID})
		case p.status == Completed:
			w.emitCompleted(j, p.cp, p.newest, SourceLog, false)
		case p.status == Failed:
			w.emitFailed(j, p.failed)
		}
	}
	j.pending = nil
	if j.droppedPending > 0 {
		w.log.Warn("log checkpoint observations dropped while the job name was unknown", "job_id", j.id, "job_name", j.name, "dropped", j.droppedPending)
		j.droppedPending = 0
	}
}

// announce tells sinks the job's (new) name, so that its series exist from
// zero before the first checkpoint: the first failure is then an increase
// that rate() and increase() can see.
func (w *Watch) announce(j *job) {
	if j.name == "" || j.announced == j.name {
		return
	}
	prev := j.announced
	j.announced = j.name
	w.emit(JobNamed{Job: j.ref(), Previous: prev, PreviousRetired: prev != "" && !w.nameInUse(prev),
		Provisional: j.provisional, PreviousProvisional: prev == j.id && !j.provisional})
}

// nameByID publishes an unnamed job under its id once its log events have
// waited the grace period, or at once when REST cannot name it (disabled or
// failing): a failure the log saw is never withheld for long. The real name
// replaces the id when it comes; nothing is counted again.
func (w *Watch) nameByID(j *job) {
	if j.name != "" || j.known {
		return
	}
	if !w.restDown && w.clock().Sub(j.created) < w.nameGrace {
		return
	}
	// Once per job: its name is set from here on.
	w.log.Info("publishing a job's log events under its id: no name from REST or the log yet",
		"job_id", j.id, "rest_down", w.restDown, "waited", w.clock().Sub(j.created).Round(time.Millisecond))
	j.provisional = true
	j.name = j.id
	j.stopGrace()
	w.announce(j)
	w.replay(j)
	w.publish(j)
}

// SetRESTAvailable tells the watch whether the latest REST scrape reached
// Flink. While it does not, log events of unnamed jobs are published under
// the job id at once; either way, those that waited the grace period are.
func (w *Watch) SetRESTAvailable(ok bool) {
	w.lock()
	defer w.unlock()
	w.restDown = !ok
	for _, id := range w.sortedIDs() {
		w.nameByID(w.jobs[id])
	}
}

func (w *Watch) sortedIDs() []string {
	ids := make([]string, 0, len(w.jobs))
	for id := range w.jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (w *Watch) nameInUse(name string) bool {
	for _, j := range w.jobs {
		if j.announced == name {
			return true
		}
	}
	return false
}

// ObserveREST takes one /jobs/:id/checkpoints answer for a running job. It
// returns the checkpoints whose details the caller should fetch (only with
// o.Details): the caller answers each with Emit(CheckpointDetails{…}).
func (w *Watch) ObserveREST(jb Job, s Snapshot, o ObserveOptions) []DetailsRequest {
	w.lock()
	defer w.unlock()
	j := w.jobs[jb.ID]
	if j == nil {
		if len(w.jobs) >= MaxJobs {
			return nil
		}
		j = w.newJob(jb.ID, w.clock())
		w.jobs[jb.ID] = j
	}
	delete(w.gone, jb.ID)
	first := !j.known
	j.known = true
	w.setName(j, jb.Name)
	w.announce(j)

	j.scratch = append(j.scratch[:0], s.History...)
	hist := j.scratch
	sort.Slice(hist, func(a, b int) bool { return hist[a].ID < hist[b].ID })
	var minID, maxID int64
	if len(hist) > 0 {
		minID, maxID = hist[0].ID, hist[len(hist)-1].ID
	}

	rebaseline := false
	if !first {
		reset := ""
		switch {
		case !jb.Start.IsZero() && !j.start.IsZero() && !jb.Start.Equal(j.start):
			reset = resetStart
		case j.hasPrev && s.Counts.Total < j.prev.Total:
			reset = "checkpoint counts went down"
		case maxID > 0 && maxID < j.maxRestID:
			reset = "checkpoint ids went down"
		}
		if reset != "" {
			w.log.Info("job restarted from scratch: checkpoint ids and counts start over", "job_name", j.name, "job_id", j.id, "why", reset)
			w.newIncarnation(j, jb.Start)
			w.emit(JobIncarnation{Job: j.ref(), Why: reset})
			// A new start time is a new run, counted from zero. Counts or
			// ids that merely went down may be one bad answer: what Flink
			// shows now is adopted without counting, so a counter never
			// moves on a decrease.
			rebaseline = reset != resetStart
		}
	}
	if !jb.Start.IsZero() {
		j.start = jb.Start
	}

	var wanted []DetailsRequest
	if first && o.Baseline || rebaseline {
		var since time.Time
		if !rebaseline {
			since = o.BaselineSince
		}
		w.baseline(j, hist, s, since)
	} else {
		wanted = w.advance(j, hist, s, minID, o)
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
	return wanted
}

// resetStart is the reset that is certainly a new run of the job.
const resetStart = "job start time changed"

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
// counting it, except for the gauges that describe the present, and for
// checkpoints that ended after since (non-zero): those are counted. A
// restarted agent's log replay counts what ended before the first scrape,
// but a checkpoint ending in the instant before it would otherwise be
// adopted before its log line is read, and counted by nobody (the line
// finds it decided).
func (w *Watch) baseline(j *job, hist []Checkpoint, s Snapshot, since time.Time) {
	for _, cp := range hist {
		if cp.Status != Completed && cp.Status != Failed {
			continue
		}
		r := j.records[cp.ID]
		if !since.IsZero() && (r == nil || r.status == StatusUnknown) && terminalTime(cp).After(since) {
			if cp.Status == Completed {
				w.complete(j, cp, SourceREST, false)
			} else {
				reason, counted := Classify(cp.FailureMessage)
				w.fail(j, cp, reason, counted, false, false, SourceREST)
			}
			continue
		}
		if r == nil {
			r = &record{}
			j.records[cp.ID] = r
		}
		if r.status == StatusUnknown {
			r.status, r.savepoint, r.at = cp.Status, cp.Savepoint, terminalTime(cp)
		} else if !r.restSeen {
			// The log counted it before this first scrape.
			w.emit(CheckpointConfirmed{Job: j.ref(), Checkpoint: cp})
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

// advance counts what is new since the previous scrape and says which
// checkpoints' details are worth fetching.
func (w *Watch) advance(j *job, hist []Checkpoint, s Snapshot, minID int64, o ObserveOptions) []DetailsRequest {
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
	if minID > 0 && minID <= j.maxRestID+1 {
		// The history reaches back to ids already seen: no completed
		// checkpoint (each has an id) can have fallen out of it unseen,
		// whatever the counts say (they went down on a bad answer and came
		// back). Failures can come without an id (at trigger time).
		missingC = 0
	}
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
	if o.Details {
		failedBudget = maxDetailsPerScrape
		slowBudget = max(0, maxDetailsPerScrape-int(newF))
	}
	var wanted []DetailsRequest
	request := func(cp Checkpoint, why DetailsWhy, d Detail) bool {
		if why == DetailsSampled && d == DetailNone {
			return false
		}
		wanted = append(wanted, DetailsRequest{Job: j.ref(), Checkpoint: cp, Why: why, Subtasks: d == DetailSubtasks})
		return true
	}
	for _, cp := range hist {
		if cp.Status != Completed && cp.Status != Failed {
			continue
		}
		r := j.records[cp.ID]
		if r != nil && r.restSeen {
			continue
		}
		d := DetailNone
		if o.Details && o.Sample != nil {
			d = o.Sample(j.ref(), cp)
		}
		if r != nil && r.status != StatusUnknown {
			r.restSeen = true // the log counted it first
			why := DetailsSampled
			if cp.Status == Failed && failedBudget > 0 && d != DetailNone {
				failedBudget-- // as if REST had seen it first
				why = DetailsFailed
			}
			w.emit(CheckpointConfirmed{Job: j.ref(), Checkpoint: cp, DetailsWanted: request(cp, why, d)})
			continue
		}
		if cp.Status == Completed {
			why := DetailsSampled
			if slowBudget > 0 && w.slow(j, cp) {
				slowBudget--
				j.lastSlowLog = w.clock()
				why = DetailsSlow
			}
			w.complete(j, cp, SourceREST, request(cp, why, d))
		} else {
			why := DetailsSampled
			if failedBudget > 0 {
				failedBudget--
				why = DetailsFailed
			}
			reason, counted := Classify(cp.FailureMessage)
			w.fail(j, cp, reason, counted, false, request(cp, why, d), SourceREST)
		}
	}
	if lc := s.LatestCompleted; lc != nil && lc.ID >= j.lastCompletedID {
		w.setLatestCompleted(j, *lc)
	}
	return wanted
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
func (w *Watch) complete(j *job, cp Checkpoint, src Source, detailsWanted bool) {
	r := w.recordFor(j, cp.ID)
	r.status, r.savepoint, r.at, r.restSeen = Completed, cp.Savepoint, terminalTime(cp), src == SourceREST
	delete(j.inflight, cp.ID)
	newest := cp.ID > j.lastCompletedID
	if newest {
		j.lastCompletedID = cp.ID
		j.consecutive = 0
		if j.failingLogged {
			j.failingLogged = false
			w.log.Info("checkpoints complete again", "job_name", j.name, "job_id", j.id, "checkpoint_id", cp.ID)
			w.emit(CheckpointsRecovered{Job: j.ref(), CheckpointID: cp.ID})
		}
	}
	if j.name == "" {
		w.queue(j, pendingObs{status: Completed, cp: cp, newest: newest})
		return
	}
	w.emitCompleted(j, cp, newest, src, detailsWanted)
}

// fail counts one newly failed checkpoint.
func (w *Watch) fail(j *job, cp Checkpoint, reason Reason, counted, throttled, detailsWanted bool, src Source) {
	r := w.recordFor(j, cp.ID)
	// A throttling mark that arrived before the failure counts now.
	throttled = throttled || r.throttled
	r.status, r.savepoint, r.at, r.restSeen, r.throttled = Failed, cp.Savepoint, terminalTime(cp), src == SourceREST, throttled
	delete(j.inflight, cp.ID)
	if counted && !cp.Savepoint && cp.ID > j.lastCompletedID {
		j.consecutive++
	}
	if cp.FailureMessage != "" {
		j.lastFailure = cp.FailureMessage
	}
	if !j.failingLogged {
		j.failingLogged = true
		w.log.Warn("checkpoint failed", "job_name", j.name, "job_id", j.id, "checkpoint_id", cp.ID,
			"reason", string(reason), "message", cp.FailureMessage)
	}
	ev := CheckpointFailed{Job: j.ref(), Checkpoint: cp, Reason: reason, Counted: counted, Throttled: throttled,
		Source: src, Consecutive: j.consecutive, Until: w.until(j), At: w.clock(), DetailsWanted: detailsWanted}
	if j.name == "" {
		w.queue(j, pendingObs{status: Failed, cp: cp, failed: ev})
		return
	}
	w.emitFailed(j, ev)
}

func (w *Watch) until(j *job) int {
	if !j.hasCfg || !j.cfg.Enabled {
		return -1
	}
	return failuresUntil(j.cfg, j.consecutive)
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

func (w *Watch) emitCompleted(j *job, cp Checkpoint, newest bool, src Source, detailsWanted bool) {
	w.announce(j)
	w.emit(CheckpointCompleted{Job: j.ref(), Checkpoint: cp, Source: src, Newest: newest, DetailsWanted: detailsWanted})
	if newest && !cp.Savepoint {
		w.setLatestCompleted(j, cp)
	}
}

// setLatestCompleted announces the latest completed checkpoint.
func (w *Watch) setLatestCompleted(j *job, cp Checkpoint) {
	if j.name == "" {
		return
	}
	if t := terminalTime(cp); !t.IsZero() {
		j.lastCompletedAt = t
	}
	w.emit(LatestCompleted{Job: j.ref(), Checkpoint: cp})
}

func (w *Watch) emitFailed(j *job, ev CheckpointFailed) {
	w.announce(j)
	ev.Job = j.ref()
	w.emit(ev)
}

// emitMissing counts checkpoints that only Flink's counts know about.
func (w *Watch) emitMissing(j *job, st Status, n int64) {
	if j.name == "" {
		return // only REST counts missing ones, and REST names the job first
	}
	w.emit(CheckpointsUncounted{Job: j.ref(), Status: st, N: n})
	if st == Failed && !j.missingLogged {
		j.missingLogged = true
		w.log.Info("failed checkpoints fell out of Flink's checkpoint history between two scrapes: counted with reason other (logged once per job)",
			"job_name", j.name, "job_id", j.id, "count", n)
	}
}

// inflightState counts the job's in-progress checkpoints, the oldest one's
// id and age, and whether it is stuck.
func (w *Watch) inflightState(j *job, now time.Time) (n int, oldestID int64, oldest time.Duration, stuck bool) {
	limit := staleInProgress
	if j.hasCfg && j.cfg.Timeout > 0 {
		limit = 2 * j.cfg.Timeout
	}
	first := true
	for id, f := range j.inflight {
		age := now.Sub(f.trigger)
		if age > limit {
			continue // Flink gave up on it long ago; its end was not seen
		}
		n++
		if first || age > oldest {
			oldest, oldestID, first = age, id, false
		}
	}
	if oldest < 0 {
		oldest = 0
	}
	stuck = j.hasCfg && j.cfg.Timeout > 0 && n > 0 && float64(oldest) >= w.stuckRatio*float64(j.cfg.Timeout)
	return n, oldestID, oldest, stuck
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

// publish announces the job's state after an observation, and a change of
// its stuck verdict.
func (w *Watch) publish(j *job) {
	if j.name == "" {
		return
	}
	now := w.clock()
	n, oldestID, oldest, stuck := w.inflightState(j, now)
	if stuck != j.stuck {
		j.stuck = stuck
		w.emit(StuckChanged{Job: j.ref(), Stuck: stuck, CheckpointID: oldestID, Age: oldest, Timeout: j.cfg.Timeout})
	}
	w.emit(JobState{Job: j.ref(), Config: j.cfg, HasConfig: j.hasCfg, Consecutive: j.consecutive, Until: w.until(j),
		InProgress: n, Oldest: oldest, Stuck: stuck, StuckRatio: w.stuckRatio, LastCompleted: j.lastCompletedAt, At: now})
}

// Retain keeps the jobs whose ids are listed (the running jobs of a
// successful scrape) and forgets the others. Jobs known only from the log
// get logOnlyGrace to show up in REST.
func (w *Watch) Retain(jobIDs []string) {
	w.lock()
	defer w.unlock()
	keep := make(map[string]bool, len(jobIDs))
	for _, id := range jobIDs {
		keep[id] = true
	}
	now := w.clock()
	var gone []*job
	for id, j := range w.jobs {
		if keep[id] || (!j.known && now.Sub(j.created) < logOnlyGrace) {
			continue
		}
		delete(w.jobs, id)
		j.stopGrace()
		w.gone[id] = now
		gone = append(gone, j)
	}
	sort.Slice(gone, func(a, b int) bool { return gone[a].id < gone[b].id })
	retired := map[string]bool{}
	for _, j := range gone {
		r := j.announced != "" && !retired[j.announced] && !w.nameInUse(j.announced)
		if r {
			retired[j.announced] = true
		}
		w.emit(JobGone{Job: JobRef{ID: j.id, Name: j.announced}, NameRetired: r})
	}
	if len(w.gone) > maxGone {
		for id, t := range w.gone {
			if now.Sub(t) > time.Hour || len(w.gone) > maxGone {
				delete(w.gone, id)
			}
		}
	}
}

// JobStatus is one job's checkpoint state as the watch sees it now: what
// paging and the live gauges read.
type JobStatus struct {
	Job JobRef
	// Known: REST has listed the job (not only the log).
	Known       bool
	Consecutive int
	// Until is how many more counted failures Flink tolerates; -1 unknown.
	Until            int
	InProgress       int
	OldestInProgress time.Duration
	Stuck            bool
	// LastFailure is Flink's latest failure message, "" when none.
	LastFailure string
}

// Statuses returns the state of every tracked job (Job.Name is "" while
// neither REST nor the log named it), computed at the watch's clock:
// in-progress ages grow between two observations.
func (w *Watch) Statuses() []JobStatus {
	w.lock()
	defer w.unlock()
	now := w.clock()
	out := make([]JobStatus, 0, len(w.jobs))
	for _, j := range w.jobs {
		n, _, oldest, stuck := w.inflightState(j, now)
		out = append(out, JobStatus{Job: j.ref(), Known: j.known, Consecutive: j.consecutive, Until: w.until(j),
			InProgress: n, OldestInProgress: oldest, Stuck: stuck, LastFailure: j.lastFailure})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Job.ID < out[b].Job.ID })
	return out
}
