package checkpointwatch

import "time"

// The JobManager log reports checkpoint lifecycle events within a second,
// where REST is read every scrape interval. These methods take those
// events (the log shipper parses them); a checkpoint seen here and later in
// REST, or the other way round, is counted once.
//
// A job id REST has not named yet is tracked under its id: its observations
// wait until REST (or ObserveLogJobName) gives its name, at most the name
// grace (no time at all while REST is down or disabled); then they are
// published with the job id as the name, which the real name replaces when
// it comes (see nameByID).

// ObserveLogJobName names a job from a log line such as "Job <name> (<id>)
// switched from state …". REST's name wins when both are known.
func (w *Watch) ObserveLogJobName(jobID, name string) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil || j.known {
		return
	}
	w.setName(j, name)
}

// ObserveLogTriggered records "Triggering checkpoint <id> … @ <t> for job
// <jobID>": the checkpoint is in progress since t.
func (w *Watch) ObserveLogTriggered(jobID string, cpID int64, t time.Time, savepoint bool) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil {
		return
	}
	w.nameByID(j)
	if r := j.records[cpID]; r != nil && r.status != StatusUnknown {
		return // already finished: a replayed line
	}
	if cpID <= j.maxRestID && cpID >= j.floor {
		return // REST has shown this id: it decides whether it is in progress
	}
	if w.clock().Sub(t) > staleInProgress || t.Before(j.abortedBefore) {
		return // a replayed old line, or aborted by a failover since
	}
	j.inflight[cpID] = inflight{trigger: t, savepoint: savepoint}
}

// ObserveLogLine takes any checkpoint lifecycle line of the JobManager log,
// whether or not it counts something (ObserveLogTriggered and the others
// decide that): sinks get it as a CheckpointLogged, e.g. a span event.
func (w *Watch) ObserveLogLine(jobID string, cpID int64, line LogLine, t time.Time, task, message string) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil {
		return
	}
	w.emit(CheckpointLogged{Job: j.ref(), CheckpointID: cpID, Line: line, At: t, Task: task, Message: message})
}

// ObserveLogCompleted records "Completed checkpoint <id> for job <jobID>
// (<bytes> bytes, checkpointDuration=<duration> …)" logged at t.
func (w *Watch) ObserveLogCompleted(jobID string, cpID int64, t time.Time, bytes int64, duration time.Duration) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil {
		return
	}
	w.nameByID(j)
	f, ok := j.inflight[cpID]
	delete(j.inflight, cpID)
	if w.accounted(j, cpID) {
		return
	}
	cp := Checkpoint{
		ID: cpID, Status: Completed, Savepoint: ok && f.savepoint,
		Trigger: t.Add(-duration), Ack: t, Duration: duration, StateSize: bytes, CheckpointedSize: -1,
	}
	if ok {
		cp.Trigger = f.trigger
	}
	w.complete(j, cp, SourceLog, false)
	w.publish(j)
}

// ObserveLogFailed records a failed checkpoint from the log: expired,
// declined, or "Failed to trigger or complete checkpoint". reason may be
// empty to let the watch classify message; s3Throttled is the log parser's
// attribution of the failure to S3 throttling.
func (w *Watch) ObserveLogFailed(jobID string, cpID int64, t time.Time, reason Reason, message string, s3Throttled bool) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil {
		return
	}
	w.nameByID(j)
	f, ok := j.inflight[cpID]
	delete(j.inflight, cpID)
	if w.accounted(j, cpID) {
		if s3Throttled {
			w.markThrottled(j, cpID)
		}
		return
	}
	r, counted := Classify(message)
	if reason.Valid() && reason != r {
		if r == ReasonOther {
			counted = countedReason(reason) || reason == ReasonDeclined
		}
		r = reason
	}
	cp := Checkpoint{ID: cpID, Status: Failed, Savepoint: ok && f.savepoint, Failure: t, Duration: -1,
		CheckpointedSize: -1, FailureMessage: message}
	if ok {
		cp.Trigger = f.trigger
		cp.Duration = t.Sub(f.trigger)
	}
	w.fail(j, cp, r, counted, s3Throttled, false, SourceLog)
	w.publish(j)
}

// MarkThrottled attributes a failed checkpoint to S3 throttling after the
// fact (the throttling evidence may come after the failure was counted, or
// before it). It counts at most once per checkpoint and never for a
// checkpoint that completes.
func (w *Watch) MarkThrottled(jobID string, cpID int64) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil {
		return
	}
	w.nameByID(j)
	w.markThrottled(j, cpID)
}

func (w *Watch) markThrottled(j *job, cpID int64) {
	r := j.records[cpID]
	if r == nil {
		if cpID < j.floor || len(j.records) >= maxRecords {
			return
		}
		r = &record{at: w.clock()}
		j.records[cpID] = r
	}
	if r.throttled {
		return
	}
	r.throttled = true
	if r.status != Failed {
		return // counted when (if) it fails
	}
	if j.name == "" {
		w.queue(j, pendingObs{onlyMark: true, cp: Checkpoint{ID: cpID}})
		return
	}
	w.emit(ThrottlingAttributed{Job: j.ref(), CheckpointID: cpID})
}

// accounted reports whether a terminal log event for cpID is already
// counted: REST or the log decided about it, or it lies below REST's history,
// whose counts already covered it.
func (w *Watch) accounted(j *job, cpID int64) bool {
	if r := j.records[cpID]; r != nil && r.status != StatusUnknown {
		return true
	}
	return j.known && cpID < j.floor
}

// ObserveLogJobState takes "Job <name> (<id>) switched from state <from> to
// <to>.": it names the job and, when the job leaves RUNNING (a failover, a
// cancellation), forgets its in-progress checkpoints, which Flink aborts
// then; a stale REST answer does not bring them back.
func (w *Watch) ObserveLogJobState(jobID, name, from, to string, t time.Time) {
	w.lock()
	defer w.unlock()
	j := w.jobForLog(jobID)
	if j == nil {
		return
	}
	if !j.known {
		w.setName(j, name)
	}
	if from == "RUNNING" && to != "RUNNING" {
		for id, f := range j.inflight {
			if !f.trigger.After(t) {
				delete(j.inflight, id)
			}
		}
		if t.After(j.abortedBefore) {
			j.abortedBefore = t
		}
		w.publish(j)
	}
}

// ObserveLogGlobalFailure takes a job's global failure. When Flink failed it
// for exceeding tolerable_failed_checkpoints, Flink's failure counter starts
// again from zero, and so does the consecutive count of the jobs that were
// beyond the threshold (the line does not name the job).
func (w *Watch) ObserveLogGlobalFailure(message string, toleranceExceeded bool, t time.Time) {
	if !toleranceExceeded {
		return
	}
	w.lock()
	defer w.unlock()
	for _, j := range w.jobs {
		if j.hasCfg && j.cfg.Enabled && failuresUntil(j.cfg, j.consecutive) == 0 {
			j.consecutive = 0
			w.log.Warn("Flink failed the job: more consecutive checkpoint failures than tolerable_failed_checkpoints",
				"job_name", j.name, "job_id", j.id, "tolerable", j.cfg.Tolerable)
			w.emit(ToleranceExceeded{Job: j.ref(), Tolerable: j.cfg.Tolerable})
			w.publish(j)
		}
	}
}
