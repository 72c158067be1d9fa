package checkpointwatch

import "time"

// Event is something the watch decided. The watch only decides; sinks turn
// events into Prometheus series, DogStatsD points, Datadog events, pages
// and traces. Adding a sink touches no domain code.
type Event interface{ event() }

// Sink receives events in the order they were decided. Handle runs on the
// caller's goroutine (the scrape, or the log reader) outside the watch's
// state lock: it must not block or do I/O of its own (a buffered client,
// such as DogStatsD's, is fine).
type Sink interface {
	Handle(Event)
}

// Sinks fans an event out to several sinks.
type Sinks []Sink

// Handle gives ev to every sink in turn.
func (s Sinks) Handle(ev Event) {
	for _, k := range s {
		k.Handle(ev)
	}
}

// JobRef names a job in events.
type JobRef struct {
	ID   string
	Name string
}

// Source says who saw a checkpoint end first.
type Source uint8

// Sources.
const (
	SourceREST Source = iota
	SourceLog
)

func (s Source) String() string {
	if s == SourceLog {
		return "log"
	}
	return "rest"
}

// Kind is "checkpoint" or "savepoint": the kind label and tag.
func Kind(savepoint bool) string { return kindOf(savepoint) }

// CheckpointCompleted: a checkpoint id completed, counted once whichever
// source saw it first. Checkpoint holds the trigger and completion times,
// the duration (negative when unknown) and the sizes.
type CheckpointCompleted struct {
	Job        JobRef
	Checkpoint Checkpoint
	Source     Source
	// Newest: no completed checkpoint with a higher id is known.
	Newest bool
	// DetailsWanted: the collector fetches the checkpoint's per-vertex
	// details and sends a CheckpointDetails for it, with or without them.
	DetailsWanted bool
}

// CheckpointFailed: a checkpoint id failed, counted once.
type CheckpointFailed struct {
	Job        JobRef
	Checkpoint Checkpoint // FailureMessage is Flink's own message
	Reason     Reason
	// Counted: Flink counts it against tolerable_failed_checkpoints.
	Counted bool
	// Throttled: the log attributed the failure to S3 throttling.
	Throttled bool
	Source    Source
	// Consecutive counted failures since the latest completed checkpoint,
	// this one included; Until is how many more Flink tolerates before it
	// fails the job, -1 when the configuration is unknown.
	Consecutive, Until int
	// At is when the watch decided (Checkpoint.Failure may be unknown).
	At time.Time
	// DetailsWanted: the collector fetches the checkpoint's per-vertex
	// details and sends a CheckpointDetails for it, with or without them.
	DetailsWanted bool
}

// CheckpointConfirmed: REST shows, for the first time, a checkpoint the
// log counted before (a CheckpointCompleted or CheckpointFailed with
// SourceLog): Checkpoint is REST's view of it (trigger time, sizes, Flink's
// message). Not a second count.
type CheckpointConfirmed struct {
	Job        JobRef
	Checkpoint Checkpoint
	// DetailsWanted as in CheckpointCompleted.
	DetailsWanted bool
}

// LogLine is a JobManager log line about a checkpoint's lifecycle.
type LogLine uint8

// Lifecycle lines.
const (
	LogTriggered LogLine = iota // "Triggering checkpoint N …"
	LogCompleted                // "Completed checkpoint N …"
	LogDeclined                 // "Decline checkpoint N by task …", a declined failure
	LogExpired                  // "Checkpoint N of job J expired before completing."
	LogFailed                   // "Failed to trigger or complete checkpoint N …" and other failure lines
)

func (l LogLine) String() string {
	switch l {
	case LogTriggered:
		return "triggered"
	case LogCompleted:
		return "completed"
	case LogDeclined:
		return "declined"
	case LogExpired:
		return "expired"
	}
	return "failed"
}

// CheckpointLogged: the JobManager logged a lifecycle line of a checkpoint,
// with its sub-second time. Sent for every such line of a tracked job,
// whether or not it counted anything (the counting events say that): a
// trace shows them as span events. Job.Name is "" while the job is unnamed.
type CheckpointLogged struct {
	Job          JobRef
	CheckpointID int64
	Line         LogLine
	At           time.Time
	// Task is the declining task's execution attempt id and where it ran,
	// for declines.
	Task    string
	Message string // Flink's failure message, for failure lines
}

// CheckpointsUncounted: checkpoints that fell out of Flink's bounded history
// between two scrapes, known only from Flink's counts (no ids, no
// durations). Failed ones are counted with ReasonOther.
type CheckpointsUncounted struct {
	Job    JobRef
	Status Status // Completed or Failed
	N      int64
}

// ThrottlingAttributed: a failure counted before was attributed to S3
// throttling afterwards (once per checkpoint).
type ThrottlingAttributed struct {
	Job          JobRef
	CheckpointID int64
}

// LatestCompleted: the latest completed checkpoint, for the gauges that
// describe it (sizes, completion time). Sent again for the same checkpoint
// when REST confirms it: setting a gauge twice changes nothing.
type LatestCompleted struct {
	Job        JobRef
	Checkpoint Checkpoint
}

// JobNamed: a job id got its name (from REST or the log) or a new one.
// Previous is the name it had; PreviousRetired says no other tracked job
// uses it any more, so its series can go.
type JobNamed struct {
	Job             JobRef
	Previous        string
	PreviousRetired bool
	// Provisional: the name is the job id, standing in because no name came
	// within the grace period (or REST is down); the real one follows.
	Provisional bool
	// PreviousProvisional: Previous was the job id standing in. What was
	// counted under it is carried over to the real name, not counted again.
	PreviousProvisional bool
}

// JobGone: a job stopped running (or was never named by REST in time) and
// is forgotten. NameRetired says no other tracked job uses its name.
type JobGone struct {
	Job         JobRef
	NameRetired bool
}

// JobIncarnation: the same job id started over (a JobManager restart
// without HA): checkpoint ids and counts begin again.
type JobIncarnation struct {
	Job JobRef
	Why string
}

// JobRestarted: the collector saw the job restart (a newer RESTARTING time
// or more restores); Cause is the latest root exception's first line.
// Exceptions are the entries of Flink's exception history that are new
// since the collector last looked, newest first (it reads a few: a burst
// of restarts between two scrapes may show fewer than Restarts).
type JobRestarted struct {
	Job        JobRef
	Restarts   int64
	Cause      string
	Exceptions []JobException
}

// MaxExceptionClasses bounds the exception label's values.
const MaxExceptionClasses = 100

// JobException is one entry of a job's exception history
// (/jobs/:id/exceptions): the failure that made Flink restart or fail it.
type JobException struct {
	// Class is Flink's root exception class (exceptionName), e.g.
	// java.lang.NullPointerException; Label is the same, or "other" once
	// the collector has seen MaxExceptionClasses classes (the exception
	// label's values are bounded).
	Class, Label string
	// Message is the exception's first line; RootCause the first lines of
	// its innermost cause ("Caused by: …" and its top frames), empty when it
	// has none.
	Message, RootCause string
	Time               time.Time
	// Task and Location say where it happened, when a task failed ("" for
	// a global failure).
	Task, Location string
	// FailureLabels are what Flink's failure enrichers attached (1.15+).
	FailureLabels map[string]string
}

// CheckpointsRecovered: a completed checkpoint ended a run of failures.
type CheckpointsRecovered struct {
	Job          JobRef
	CheckpointID int64
}

// StuckChanged: the oldest in-progress checkpoint passed (Stuck) or no
// longer passes the stuck ratio of the timeout.
type StuckChanged struct {
	Job          JobRef
	Stuck        bool
	CheckpointID int64         // the oldest in-progress one, 0 when none
	Age          time.Duration // its age
	Timeout      time.Duration
}

// ToleranceExceeded: Flink failed the job for more consecutive checkpoint
// failures than tolerable_failed_checkpoints; the count starts over.
type ToleranceExceeded struct {
	Job       JobRef
	Tolerable int
}

// JobState is a job's checkpoint state after an observation changed it:
// gauges and service checks are set from it.
type JobState struct {
	Job    JobRef
	Config Config
	// HasConfig: Config was read; Until is -1 without it.
	HasConfig   bool
	Consecutive int
	Until       int
	// InProgress counts in-progress checkpoints (REST, plus newer ones the
	// log saw triggered); Oldest is the oldest one's age.
	InProgress int
	Oldest     time.Duration
	Stuck      bool
	StuckRatio float64
	// LastCompleted is the latest completed checkpoint's completion time,
	// zero when none is known.
	LastCompleted time.Time
	At            time.Time
}

// DetailsWhy says why a checkpoint's details are fetched.
type DetailsWhy uint8

// Reasons to fetch details.
const (
	DetailsFailed  DetailsWhy = iota // a new failed checkpoint
	DetailsSlow                      // a completed one slower than the interval or near the timeout
	DetailsSampled                   // a sink asked for it (traces)
)

func (d DetailsWhy) String() string {
	switch d {
	case DetailsFailed:
		return "failed"
	case DetailsSlow:
		return "slow"
	}
	return "sampled"
}

// Detail is how much of a checkpoint a sampler (ObserveOptions.Sample) wants
// to see.
type Detail uint8

// Detail levels.
const (
	DetailNone     Detail = iota
	DetailVertices        // per-vertex details (/jobs/:id/checkpoints/details/:cid)
	DetailSubtasks        // and the subtasks of its slowest vertices (…/subtasks/:vid)
)

// DetailsRequest is the watch's decision that a checkpoint's per-vertex
// details are worth a REST call. The collector makes it, outside any lock,
// and answers with a CheckpointDetails.
type DetailsRequest struct {
	Job        JobRef
	Checkpoint Checkpoint
	Why        DetailsWhy
	// Subtasks: a sampler wants the subtasks of the slowest vertices too.
	Subtasks bool
}

// TaskDetails is one vertex's part of a checkpoint.
type TaskDetails struct {
	VertexID, Vertex            string
	Acknowledged, Subtasks      int64
	Duration                    time.Duration // end to end; negative when unknown
	StateSize, CheckpointedSize int64         // negative when unknown
	LatestAck                   time.Time     // zero when no subtask acknowledged
	// SubtaskDetails are the vertex's subtasks when they were fetched
	// (DetailsRequest.Subtasks, for the slowest vertices only), else nil.
	SubtaskDetails []SubtaskDetails
}

// SubtaskDetails is one subtask's part of a checkpoint. Durations are
// negative when unknown (a subtask that did not acknowledge).
type SubtaskDetails struct {
	Index        int
	Acknowledged bool
	Ack          time.Time
	Duration     time.Duration // trigger to acknowledgement
	// The phases: the barrier's way to the subtask, alignment, the
	// synchronous snapshot, the asynchronous upload.
	StartDelay, Alignment, Sync, Async time.Duration
	StateSize, CheckpointedSize        int64
	// AlignmentProcessed and AlignmentPersisted are bytes (unaligned
	// checkpoints persist in-flight data).
	AlignmentProcessed, AlignmentPersisted int64
	Unaligned, Aborted                     bool
}

// CheckpointDetails answers a DetailsRequest: Summary says who did not
// acknowledge a failed checkpoint or who was slowest; Err is set when the
// details could not be read (Tasks and Summary are empty then).
type CheckpointDetails struct {
	Job          JobRef
	CheckpointID int64
	Why          DetailsWhy
	Summary      string
	Tasks        []TaskDetails
	Err          error
}

func (CheckpointCompleted) event()  {}
func (CheckpointFailed) event()     {}
func (CheckpointsUncounted) event() {}
func (CheckpointConfirmed) event()  {}
func (CheckpointLogged) event()     {}
func (ThrottlingAttributed) event() {}
func (LatestCompleted) event()      {}
func (JobNamed) event()             {}
func (JobGone) event()              {}
func (JobIncarnation) event()       {}
func (JobRestarted) event()         {}
func (CheckpointsRecovered) event() {}
func (StuckChanged) event()         {}
func (ToleranceExceeded) event()    {}
func (JobState) event()             {}
func (CheckpointDetails) event()    {}
