package checkpointwatch_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/testbed"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	reg *prometheus.Registry
	w   *cw.Watch
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, reg: prometheus.NewPedanticRegistry(), now: t0}
	w, err := sink.Watch(sink.Options{Registerer: f.reg, StuckRatio: 0.8, NameGrace: grace, Clock: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.w = w
	return f
}

// value returns a series' value (counter, gauge, or a histogram's count), or
// -1 when the series does not exist.
func (f *fixture) value(name string, labels ...string) float64 {
	f.t.Helper()
	v, err := testbed.GatherValue(f.reg, name, labels...)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) expect(want float64, name string, labels ...string) {
	f.t.Helper()
	if got := f.value(name, labels...); got != want {
		f.t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func completed(id int64, trig time.Time, dur time.Duration) cw.Checkpoint {
	return cw.Checkpoint{ID: id, Status: cw.Completed, Trigger: trig, Ack: trig.Add(dur), Duration: dur, StateSize: 1000 + id, CheckpointedSize: 100 + id}
}

func failed(id int64, trig time.Time, msg string) cw.Checkpoint {
	return cw.Checkpoint{ID: id, Status: cw.Failed, Trigger: trig, Failure: trig.Add(time.Second), Duration: time.Second, FailureMessage: msg, CheckpointedSize: -1}
}

func inProgress(id int64, trig time.Time) cw.Checkpoint {
	return cw.Checkpoint{ID: id, Status: cw.InProgress, Trigger: trig, Duration: -1, CheckpointedSize: -1}
}

// history builds ids lo..hi as completed checkpoints, one per second.
func history(lo, hi int64) []cw.Checkpoint {
	var h []cw.Checkpoint
	for id := hi; id >= lo; id-- {
		h = append(h, completed(id, t0.Add(time.Duration(id)*time.Second), 100*time.Millisecond))
	}
	return h
}

var jobA = cw.Job{ID: "a1", Name: "orders", Start: t0.Add(-time.Hour)}

// grace is the fixture's flink.job_name_grace.
const grace = 30 * time.Second

const (
	total     = "flink_checkpoints_total"
	failures  = "flink_checkpoint_failures_total"
	durations = "flink_checkpoint_duration_seconds"
)

func TestBaselineThenNewCompletionsCountedOnce(t *testing.T) {
	f := newFixture(t)
	f.w.SetConfig(jobA.ID, cw.Config{Enabled: true, Interval: 10 * time.Second, Timeout: time.Minute, Tolerable: 2})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 3, Completed: 3}, History: history(1, 3)}, cw.ObserveOptions{Baseline: true})
	f.expect(0, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(0, durations, "job_name", "orders", "kind", "checkpoint")

	s := cw.Snapshot{Counts: cw.Counts{Total: 6, Completed: 5, Failed: 1}, History: append(history(4, 5), history(1, 3)...)}
	s.History = append([]cw.Checkpoint{failed(6, t0.Add(6*time.Second), "Checkpoint expired before completing.")}, s.History...)
	for range 3 { // the same answer again changes nothing
		f.w.ObserveREST(jobA, s, cw.ObserveOptions{})
	}
	f.expect(2, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "failed")
	f.expect(2, durations, "job_name", "orders", "kind", "checkpoint")
	f.expect(1, failures, "job_name", "orders", "reason", "expired")
	f.expect(0, failures, "job_name", "orders", "reason", "other")
	f.expect(1, "flink_checkpoint_consecutive_failures", "job_name", "orders")
	f.expect(2, "flink_checkpoint_failures_until_job_failure", "job_name", "orders")
	f.expect(1005, "flink_checkpoint_size_bytes", "job_name", "orders", "type", "full")
	f.expect(105, "flink_checkpoint_size_bytes", "job_name", "orders", "type", "incremental")
	f.expect(10, "flink_checkpoint_interval_seconds", "job_name", "orders")
	f.expect(60, "flink_checkpoint_timeout_seconds", "job_name", "orders")
}

// TestBaselineSinceCountsWhatEndedMeanwhile: a restarted agent's first
// scrape adopts what ended before the agent started (the log replay counts
// those it reads), but counts a checkpoint that ended after it and before
// the scrape — its log line, read later, counts nothing again. Without
// that, a checkpoint ending in the instant before the first scrape was
// counted by nobody.
func TestBaselineSinceCountsWhatEndedMeanwhile(t *testing.T) {
	f := newFixture(t)
	completedOf := []string{"job_name", "orders", "kind", "checkpoint", "status", "completed"}
	started := t0.Add(3500 * time.Millisecond) // between 3 (ends 3.1 s) and 4 (ends 4.1 s)
	h := append([]cw.Checkpoint{failed(5, t0.Add(5*time.Second), "Checkpoint expired before completing.")}, history(1, 4)...)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 5, Completed: 4, Failed: 1}, History: h},
		cw.ObserveOptions{Baseline: true, BaselineSince: started})
	f.expect(1, total, completedOf...)
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "failed")
	f.w.ObserveLogCompleted(jobA.ID, 4, t0.Add(4100*time.Millisecond), 1004, 100*time.Millisecond)
	f.w.ObserveLogFailed(jobA.ID, 5, t0.Add(6*time.Second), "", "Checkpoint expired before completing.", false)
	f.expect(1, total, completedOf...)
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "failed")
}

func TestMoreCompletionsThanHistoryCountedFromCounts(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 10, Completed: 10}, History: history(1, 10)}, cw.ObserveOptions{Baseline: true})
	// 15 more completed and 3 failed (none in history) between two scrapes;
	// the history holds the newest 10.
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 28, Completed: 25, Failed: 3}, History: history(16, 25)}, cw.ObserveOptions{})
	f.expect(15, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(10, durations, "job_name", "orders", "kind", "checkpoint") // no invented durations
	f.expect(3, failures, "job_name", "orders", "reason", "other")
	f.expect(3, total, "job_name", "orders", "kind", "checkpoint", "status", "failed")
}

func TestJobFirstSeenAfterBaselineIsCountedFromItsStart(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(cw.Job{ID: "x", Name: "other"}, cw.Snapshot{}, cw.ObserveOptions{Baseline: true})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 3, Completed: 3}, History: history(1, 3)}, cw.ObserveOptions{})
	f.expect(3, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(3, durations, "job_name", "orders", "kind", "checkpoint")
}

func TestLogFirstThenRESTCountsOnce(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 3, Completed: 3}, History: history(1, 3)}, cw.ObserveOptions{Baseline: true})
	f.w.ObserveLogTriggered(jobA.ID, 4, t0.Add(4*time.Second), false)
	f.expect(1, "flink_checkpoint_in_progress", "job_name", "orders")
	f.w.ObserveLogCompleted(jobA.ID, 4, t0.Add(4*time.Second+300*time.Millisecond), 5000, 300*time.Millisecond)
	f.w.ObserveLogTriggered(jobA.ID, 5, t0.Add(5*time.Second), false)
	f.w.ObserveLogFailed(jobA.ID, 5, t0.Add(6*time.Second), "", "Checkpoint was declined (tasks not ready)", false)
	f.expect(0, "flink_checkpoint_in_progress", "job_name", "orders")
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(1, failures, "job_name", "orders", "reason", "declined")
	f.expect(5000, "flink_checkpoint_size_bytes", "job_name", "orders", "type", "full")
	f.expect(0, "flink_checkpoint_consecutive_failures", "job_name", "orders") // not counted by Flink

	// REST catches up: same ids, nothing counted twice; its sizes win.
	h := append([]cw.Checkpoint{failed(5, t0.Add(5*time.Second), "Checkpoint was declined (tasks not ready)")}, history(1, 4)...)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 5, Completed: 4, Failed: 1}, History: h, LatestCompleted: &h[1]}, cw.ObserveOptions{})
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "failed")
	f.expect(1, durations, "job_name", "orders", "kind", "checkpoint")
	f.expect(1004, "flink_checkpoint_size_bytes", "job_name", "orders", "type", "full")

	// A late, replayed log line changes nothing either.
	f.w.ObserveLogCompleted(jobA.ID, 4, t0.Add(4*time.Second), 5000, 300*time.Millisecond)
	f.w.ObserveLogCompleted(jobA.ID, 2, t0.Add(2*time.Second), 5000, 300*time.Millisecond)
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
}

func TestLogCountedIdsBeyondHistoryAreAbsorbed(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 10, Completed: 10}, History: history(1, 10)}, cw.ObserveOptions{Baseline: true})
	// The log sees 11..22 complete, except 12 whose line was lost.
	for id := int64(11); id <= 22; id++ {
		if id != 12 {
			f.w.ObserveLogCompleted(jobA.ID, id, t0.Add(time.Duration(id)*time.Second), 10, time.Second)
		}
	}
	f.expect(11, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	// REST's history holds 13..22; counts say 12 more completed.
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 22, Completed: 22}, History: history(13, 22)}, cw.ObserveOptions{})
	f.expect(12, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(11, durations, "job_name", "orders", "kind", "checkpoint")
}

func TestUnnamedLogObservationsWaitForREST(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveLogTriggered("b2", 1, t0, false)
	f.w.ObserveLogCompleted("b2", 1, t0.Add(time.Second), 42, time.Second)
	f.w.ObserveLogFailed("b2", 2, t0.Add(3*time.Second), cw.ReasonIO, "Failed to trigger or complete checkpoint 2", true)
	if n := f.value(total, "kind", "checkpoint", "status", "completed"); n != -1 {
		t.Fatalf("a series exists before the job has a name: %v", n)
	}
	f.w.ObserveREST(cw.Job{ID: "b2", Name: "payments"}, cw.Snapshot{Counts: cw.Counts{Total: 2, Completed: 1, Failed: 1},
		History: []cw.Checkpoint{failed(2, t0.Add(2*time.Second), "An Exception occurred while triggering the checkpoint. IO-problem detected."), completed(1, t0, time.Second)}},
		cw.ObserveOptions{Baseline: true})
	f.expect(1, total, "job_name", "payments", "kind", "checkpoint", "status", "completed")
	f.expect(1, failures, "job_name", "payments", "reason", "io")
	f.expect(1, "flink_checkpoint_failures_s3_throttled_total", "job_name", "payments")
	f.expect(1, durations, "job_name", "payments", "kind", "checkpoint")
}

// The log's failures of a job nobody named are published under the job id
// once the grace period is over; when REST names the job, the counts move
// to the name and REST's view of the same checkpoints counts nothing again.
func TestUnnamedJobPublishedUnderItsIDAfterGrace(t *testing.T) {
	f := newFixture(t)
	const id = "4b1f0c5d6e7a8b9c0d1e2f3a4b5c6d7e"
	for n := int64(1); n <= 3; n++ {
		f.w.ObserveLogTriggered(id, n, t0.Add(time.Duration(n)*time.Second), false)
		f.w.ObserveLogFailed(id, n, t0.Add(time.Duration(n)*time.Second+3*time.Second), cw.ReasonExpired, "Checkpoint "+fmt.Sprint(n)+" of job "+id+" expired before completing.", false)
	}
	f.w.SetRESTAvailable(true)
	f.expect(-1, failures, "job_name", id, "reason", "expired") // within the grace: waiting for the name
	f.now = t0.Add(grace)
	f.w.SetRESTAvailable(true) // the next scrape, Flink reachable but not naming the job
	f.expect(3, failures, "job_name", id, "reason", "expired")
	f.expect(3, total, "job_name", id, "kind", "checkpoint", "status", "failed")
	f.expect(3, "flink_checkpoint_consecutive_failures", "job_name", id)
	// A fourth failure goes straight out under the id.
	f.w.ObserveLogFailed(id, 4, f.now, cw.ReasonExpired, "Checkpoint 4 of job "+id+" expired before completing.", false)
	f.expect(4, failures, "job_name", id, "reason", "expired")

	// REST lists the job: the id's series are replaced by the name's,
	// carrying the four failures; its history shows 2..4 again, its counts
	// all four: nothing more is counted.
	h := []cw.Checkpoint{}
	for n := int64(4); n >= 2; n-- {
		h = append(h, failed(n, t0.Add(time.Duration(n)*time.Second), "Checkpoint expired before completing."))
	}
	f.w.ObserveREST(cw.Job{ID: id, Name: "payments", Start: t0}, cw.Snapshot{Counts: cw.Counts{Total: 4, Failed: 4}, History: h}, cw.ObserveOptions{})
	f.expect(-1, failures, "job_name", id, "reason", "expired")
	f.expect(4, failures, "job_name", "payments", "reason", "expired")
	f.expect(4, total, "job_name", "payments", "kind", "checkpoint", "status", "failed")
	f.expect(0, failures, "job_name", "payments", "reason", "other")
	f.expect(4, "flink_checkpoint_consecutive_failures", "job_name", "payments")
	// and a new one counts once, under the name.
	h = append([]cw.Checkpoint{failed(5, t0.Add(40*time.Second), "Checkpoint expired before completing.")}, h...)
	f.w.ObserveREST(cw.Job{ID: id, Name: "payments", Start: t0}, cw.Snapshot{Counts: cw.Counts{Total: 5, Failed: 5}, History: h}, cw.ObserveOptions{})
	f.w.ObserveLogFailed(id, 5, t0.Add(40*time.Second), cw.ReasonExpired, "Checkpoint 5 of job "+id+" expired before completing.", false)
	f.expect(5, failures, "job_name", "payments", "reason", "expired")
}

// While REST is down (or disabled), nothing waits: the log's events are
// published under the job id at once, and a job-state line names the job
// later without counting anything twice.
func TestRESTDownPublishesAtOnce(t *testing.T) {
	f := newFixture(t)
	const id = "0fbe1d0e6a4cdeb72716468b63404c34"
	f.w.SetRESTAvailable(false) // the scrape failed: connection refused
	for n := int64(11); n <= 13; n++ {
		f.w.ObserveLogFailed(id, n, t0.Add(time.Duration(n)*time.Second), cw.ReasonExpired, "Checkpoint expired before completing.", false)
	}
	f.w.ObserveLogCompleted(id, 14, t0.Add(14*time.Second), 1234, 200*time.Millisecond)
	f.expect(3, failures, "job_name", id, "reason", "expired")
	f.expect(1, total, "job_name", id, "kind", "checkpoint", "status", "completed")
	f.expect(1, durations, "job_name", id, "kind", "checkpoint")
	f.w.ObserveLogJobState(id, "orders", "RUNNING", "RESTARTING", t0.Add(20*time.Second))
	f.expect(-1, failures, "job_name", id, "reason", "expired")
	f.expect(3, failures, "job_name", "orders", "reason", "expired")
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(1234, "flink_checkpoint_size_bytes", "job_name", "orders", "type", "full")
	// Durations observed under the id stay with it: a histogram takes no past samples.
	f.expect(0, durations, "job_name", "orders", "kind", "checkpoint")
	// Replayed lines count nothing.
	f.w.ObserveLogFailed(id, 12, t0.Add(12*time.Second), cw.ReasonExpired, "Checkpoint expired before completing.", false)
	f.expect(3, failures, "job_name", "orders", "reason", "expired")
}

// The grace ends on time even when neither the log nor a scrape says
// anything more about the job.
func TestGraceEndsWithoutAnotherEvent(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	w, err := sink.Watch(sink.Options{Registerer: reg, StuckRatio: 0.8, NameGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.ObserveLogFailed("d4", 3, start, cw.ReasonExpired, "Checkpoint expired before completing.", false)
	for {
		v, err := testbed.GatherValue(reg, failures, "job_name", "d4", "reason", "expired")
		if err != nil {
			t.Fatal(err)
		}
		if v == 1 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("not published 10 s after a 50 ms grace: %v", v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("published after %v, before the grace ended", d)
	}
}

// With the REST scrape disabled no name will come from it: publish at once.
func TestNoRESTPublishesAtOnce(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	w, err := sink.Watch(sink.Options{Registerer: reg, StuckRatio: 0.8, NameGrace: time.Hour, NoREST: true, Clock: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	w.ObserveLogFailed("c3", 7, t0, "", "Asynchronous task checkpoint failed.", true)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{failures, []string{"job_name", "c3", "reason", "async_failure"}, 1},
		{"flink_checkpoint_failures_s3_throttled_total", []string{"job_name", "c3"}, 1},
	} {
		if v, err := testbed.GatherValue(reg, c.name, c.labels...); err != nil || v != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, v, err, c.want)
		}
	}
}

func TestThrottleMarksCountOncePerCheckpoint(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{Baseline: true})
	f.w.MarkThrottled(jobA.ID, 2) // the evidence came first
	f.w.MarkThrottled(jobA.ID, 2)
	f.expect(0, "flink_checkpoint_failures_s3_throttled_total", "job_name", "orders")
	h := append([]cw.Checkpoint{failed(3, t0.Add(3*time.Second), "Asynchronous task checkpoint failed."),
		failed(2, t0.Add(2*time.Second), "Asynchronous task checkpoint failed.")}, history(1, 1)...)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 3, Completed: 1, Failed: 2}, History: h}, cw.ObserveOptions{})
	f.expect(1, "flink_checkpoint_failures_s3_throttled_total", "job_name", "orders")
	f.w.MarkThrottled(jobA.ID, 3) // the evidence came after
	f.w.MarkThrottled(jobA.ID, 3)
	f.w.ObserveLogFailed(jobA.ID, 3, t0.Add(4*time.Second), cw.ReasonAsyncFailure, "", true)
	f.expect(2, "flink_checkpoint_failures_s3_throttled_total", "job_name", "orders")
	f.expect(2, failures, "job_name", "orders", "reason", "async_failure")
	// A checkpoint that completes is never attributed.
	f.w.MarkThrottled(jobA.ID, 4)
	f.w.ObserveLogCompleted(jobA.ID, 4, t0.Add(5*time.Second), 1, time.Second)
	f.expect(2, "flink_checkpoint_failures_s3_throttled_total", "job_name", "orders")
}

func TestNewIncarnationRestartsIdsWithoutDoubleCounting(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 30, Completed: 30}, History: history(21, 30)}, cw.ObserveOptions{Baseline: true})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 32, Completed: 32}, History: history(23, 32)}, cw.ObserveOptions{})
	f.expect(2, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")

	// The JobManager restarted without HA: same job id, new start time, ids
	// and counts from 1. The log sees the new run's checkpoint 1 first.
	restart := t0.Add(time.Minute)
	f.w.ObserveLogCompleted(jobA.ID, 1, restart.Add(2*time.Second), 10, time.Second)
	again := jobA
	again.Start = restart
	f.w.ObserveREST(again, cw.Snapshot{Counts: cw.Counts{Total: 3, Completed: 3}, History: history(1, 3)}, cw.ObserveOptions{})
	f.expect(5, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.w.ObserveREST(again, cw.Snapshot{Counts: cw.Counts{Total: 4, Completed: 4}, History: history(1, 4)}, cw.ObserveOptions{})
	f.expect(6, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
}

func TestStuckBeforeTimeout(t *testing.T) {
	f := newFixture(t)
	f.w.SetConfig(jobA.ID, cw.Config{Enabled: true, Interval: time.Second, Timeout: 10 * time.Second})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 2, InProgress: 1, Completed: 1},
		History: []cw.Checkpoint{inProgress(2, t0), completed(1, t0.Add(-time.Second), time.Millisecond)}}, cw.ObserveOptions{Baseline: true})
	f.now = t0.Add(7 * time.Second)
	f.expect(1, "flink_checkpoint_in_progress", "job_name", "orders")
	f.expect(7, "flink_checkpoint_oldest_in_progress_age_seconds", "job_name", "orders")
	f.expect(0, "flink_checkpoint_stuck", "job_name", "orders")
	f.now = t0.Add(8 * time.Second) // 80% of the timeout, no scrape in between
	f.expect(1, "flink_checkpoint_stuck", "job_name", "orders")
	// Flink expires it.
	f.w.ObserveLogFailed(jobA.ID, 2, t0.Add(10*time.Second), cw.ReasonExpired, "Checkpoint 2 of job a1 expired before completing.", false)
	f.expect(0, "flink_checkpoint_stuck", "job_name", "orders")
	f.expect(1, failures, "job_name", "orders", "reason", "expired")
}

func TestConsecutiveFailuresAgainstTolerable(t *testing.T) {
	f := newFixture(t)
	f.w.SetConfig(jobA.ID, cw.Config{Enabled: true, Interval: time.Second, Timeout: 10 * time.Second, Tolerable: 2})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{Baseline: true})
	f.expect(3, "flink_checkpoint_failures_until_job_failure", "job_name", "orders")
	msgs := []string{
		"Could not complete snapshot 2 for operator x (1/2)#0. Failure reason: cw.Checkpoint was declined.",
		"Checkpoint was declined (tasks not ready)", // not counted by Flink
		"Checkpoint expired before completing.",
	}
	for i, m := range msgs {
		f.w.ObserveLogFailed(jobA.ID, int64(i+2), t0.Add(time.Duration(i+2)*time.Second), "", m, false)
	}
	f.expect(2, "flink_checkpoint_consecutive_failures", "job_name", "orders")
	f.expect(1, "flink_checkpoint_failures_until_job_failure", "job_name", "orders")
	f.w.ObserveLogCompleted(jobA.ID, 5, t0.Add(6*time.Second), 1, time.Second)
	f.expect(0, "flink_checkpoint_consecutive_failures", "job_name", "orders")
	f.expect(3, "flink_checkpoint_failures_until_job_failure", "job_name", "orders")
}

func TestSavepointsKeptApartAndNoPeriodicInterval(t *testing.T) {
	f := newFixture(t)
	f.w.SetConfig(jobA.ID, cw.Config{Enabled: true, Timeout: 10 * time.Minute}) // Interval 0: Long.MAX in REST
	f.w.ObserveREST(jobA, cw.Snapshot{}, cw.ObserveOptions{Baseline: true})
	sp := completed(1, t0, 2*time.Second)
	sp.Savepoint = true
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: []cw.Checkpoint{sp}}, cw.ObserveOptions{})
	f.expect(1, total, "job_name", "orders", "kind", "savepoint", "status", "completed")
	f.expect(0, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.expect(1, durations, "job_name", "orders", "kind", "savepoint")
	if v := f.value("flink_checkpoint_interval_seconds", "job_name", "orders"); v <= 1e300 {
		t.Errorf("interval without periodic checkpoints = %v, want +Inf", v)
	}
}

func TestRetainRemovesSeriesOfGoneJobs(t *testing.T) {
	f := newFixture(t)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{Baseline: true})
	f.w.ObserveREST(cw.Job{ID: "b", Name: "payments"}, cw.Snapshot{}, cw.ObserveOptions{Baseline: true})
	// The job is resubmitted under a new id: its name's series stay.
	f.w.Retain([]string{"b", "a-new"})
	f.w.ObserveREST(cw.Job{ID: "a-new", Name: "orders"}, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{})
	f.expect(1, total, "job_name", "orders", "kind", "checkpoint", "status", "completed")
	f.w.Retain([]string{"a-new"})
	if v := f.value(total, "job_name", "payments", "kind", "checkpoint", "status", "completed"); v != -1 {
		t.Errorf("series of a gone job remain: %v", v)
	}
	if v := f.value("flink_checkpoint_in_progress", "job_name", "payments"); v != -1 {
		t.Errorf("live series of a gone job remain: %v", v)
	}
	// Late log lines of a forgotten job do not bring it back.
	f.w.ObserveLogCompleted("b", 7, t0, 1, time.Second)
	if got := strings.Join(jobIDs(f.w), ","); got != "a-new" {
		t.Errorf("jobs = %s, want a-new", got)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		msg     string
		reason  cw.Reason
		counted bool
	}{
		{"Checkpoint expired before completing.", cw.ReasonExpired, true},
		{"Checkpoint 7 of job 0123 expired before completing.", cw.ReasonExpired, true},
		{"Asynchronous task checkpoint failed.", cw.ReasonAsyncFailure, true},
		{"Checkpoint was declined.", cw.ReasonDeclined, true},
		{"Could not complete snapshot 20 for operator Source: sequence -> throttle (1/2)#1. Failure reason: cw.Checkpoint was declined.", cw.ReasonDeclined, true},
		{"Checkpoint was declined (tasks not ready)", cw.ReasonDeclined, false},
		{"Checkpoint was declined (task is closing)", cw.ReasonDeclined, false},
		{"Task received cancellation from one of its inputs", cw.ReasonDeclined, false},
		{"An Exception occurred while triggering the checkpoint. IO-problem detected.", cw.ReasonIO, true},
		{"Failure to finalize checkpoint.", cw.ReasonIO, true},
		{"Task has failed.", cw.ReasonTaskFailure, false},
		{"FailoverRegion is restarting.", cw.ReasonTaskFailure, false},
		{"Trigger checkpoint failure.", cw.ReasonTriggerFailure, false},
		{"Not all required tasks are currently running.", cw.ReasonTriggerFailure, false},
		{"Checkpoint has been subsumed.", cw.ReasonOther, false},
		{"Checkpoint Coordinator is suspending.", cw.ReasonOther, false},
		{"", cw.ReasonOther, false},
		{"something new in Flink 3", cw.ReasonOther, false},
	}
	for _, c := range cases {
		r, counted := cw.Classify(c.msg)
		if r != c.reason || counted != c.counted {
			t.Errorf("Classify(%q) = %s, %v; want %s, %v", c.msg, r, counted, c.reason, c.counted)
		}
	}
}

// The watch's bounds: jobs tracked, and log observations waiting for a job
// name (MaxJobs and maxPending in watch.go).
const maxJobs, maxPending = cw.MaxJobs, 256

func TestManyJobsBounded(t *testing.T) {
	f := newFixture(t)
	for i := range maxJobs + 50 {
		f.w.ObserveLogTriggered(fmt.Sprintf("j%d", i), 1, t0, false)
	}
	if n := len(jobIDs(f.w)); n != maxJobs {
		t.Errorf("tracked %d jobs, want the bound %d", n, maxJobs)
	}
	for i := range maxPending + 10 {
		f.w.ObserveLogCompleted("j0", int64(i+2), t0, 1, time.Second)
	}
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(""), "flink_checkpoints_total"); err != nil {
		t.Error(err)
	}
	// Named at last: what waited is counted, up to the bound.
	f.w.ObserveLogJobName("j0", "bounded")
	f.expect(maxPending, total, "job_name", "bounded", "kind", "checkpoint", "status", "completed")
}

func TestJobLeavingRunningAbortsInProgress(t *testing.T) {
	f := newFixture(t)
	f.w.SetConfig(jobA.ID, cw.Config{Enabled: true, Interval: time.Second, Timeout: 10 * time.Second, Tolerable: 1})
	h := []cw.Checkpoint{inProgress(2, t0), completed(1, t0.Add(-time.Second), time.Millisecond)}
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 2, InProgress: 1, Completed: 1}, History: h}, cw.ObserveOptions{Baseline: true})
	f.now = t0.Add(9 * time.Second)
	f.expect(1, "flink_checkpoint_stuck", "job_name", "orders")
	// A failover: Flink aborts the checkpoint; REST's cache still shows it.
	f.w.ObserveLogJobState(jobA.ID, "orders", "RUNNING", "RESTARTING", t0.Add(9*time.Second))
	f.expect(0, "flink_checkpoint_stuck", "job_name", "orders")
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 2, InProgress: 1, Completed: 1}, History: h}, cw.ObserveOptions{})
	f.expect(0, "flink_checkpoint_in_progress", "job_name", "orders")
	// The job names itself in the log before REST sees it.
	f.w.ObserveLogJobState("n1", "payments", "CREATED", "RUNNING", t0)
	f.w.ObserveLogCompleted("n1", 1, t0.Add(time.Second), 1, time.Second)
	f.expect(1, total, "job_name", "payments", "kind", "checkpoint", "status", "completed")
}

func TestToleranceExceededClearsConsecutive(t *testing.T) {
	f := newFixture(t)
	f.w.SetConfig(jobA.ID, cw.Config{Enabled: true, Interval: time.Second, Timeout: 10 * time.Second, Tolerable: 1})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{Baseline: true})
	for id := int64(2); id <= 3; id++ {
		f.w.ObserveLogFailed(jobA.ID, id, t0.Add(time.Duration(id)*time.Second), "", "Checkpoint expired before completing.", false)
	}
	f.expect(2, "flink_checkpoint_consecutive_failures", "job_name", "orders")
	f.expect(0, "flink_checkpoint_failures_until_job_failure", "job_name", "orders")
	f.w.ObserveLogGlobalFailure("org.apache.flink.util.FlinkRuntimeException: Exceeded checkpoint tolerable failure threshold.", true, t0.Add(4*time.Second))
	f.expect(0, "flink_checkpoint_consecutive_failures", "job_name", "orders")
	f.expect(2, "flink_checkpoint_failures_until_job_failure", "job_name", "orders")
	f.expect(2, failures, "job_name", "orders", "reason", "expired") // counts stay
}

// recorder is a sink that keeps what it is handed.
type recorder struct{ events []cw.Event }

func (r *recorder) Handle(ev cw.Event) { r.events = append(r.events, ev) }

// ObserveREST decides which details are worth a REST call and returns them;
// its events are delivered before it returns, so the collector's
// CheckpointDetails (sent with Emit) come after the failure they explain.
func TestDetailsRequestsAndSampling(t *testing.T) {
	rec := &recorder{}
	w := cw.New(cw.Options{Sink: rec, StuckRatio: 0.8, Clock: func() time.Time { return t0.Add(time.Hour) }})
	w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{Baseline: true})
	h := append([]cw.Checkpoint{failed(4, t0.Add(4*time.Second), "Checkpoint expired before completing.")}, history(1, 3)...)
	sampled := func(_ cw.JobRef, cp cw.Checkpoint) cw.Detail {
		switch {
		case cp.Status == cw.Failed:
			return cw.DetailSubtasks
		case cp.ID == 3:
			return cw.DetailVertices
		}
		return cw.DetailNone
	}
	wanted := w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 4, Completed: 3, Failed: 1}, History: h},
		cw.ObserveOptions{Details: true, Sample: sampled})
	got := map[int64]cw.DetailsRequest{}
	for _, r := range wanted {
		got[r.Checkpoint.ID] = r
	}
	if len(got) != 2 || got[4].Why != cw.DetailsFailed || !got[4].Subtasks || got[3].Why != cw.DetailsSampled || got[3].Subtasks {
		t.Fatalf("details wanted %+v, want 4 (failed, with subtasks) and 3 (sampled, vertices only)", got)
	}
	var failedAt = -1
	for i, ev := range rec.events {
		if f, ok := ev.(cw.CheckpointFailed); ok && f.Checkpoint.ID == 4 {
			failedAt = i
			if !f.DetailsWanted || f.Reason != cw.ReasonExpired || f.Job != (cw.JobRef{ID: jobA.ID, Name: jobA.Name}) {
				t.Errorf("failure event %+v", f)
			}
		}
		if c, ok := ev.(cw.CheckpointCompleted); ok && c.DetailsWanted != (c.Checkpoint.ID == 3) {
			t.Errorf("completion event %d: DetailsWanted %v", c.Checkpoint.ID, c.DetailsWanted)
		}
	}
	if failedAt < 0 {
		t.Fatal("no CheckpointFailed delivered before ObserveREST returned")
	}
	w.Emit(cw.CheckpointDetails{Job: wanted[0].Job, CheckpointID: 4, Why: cw.DetailsFailed, Summary: "x"})
	if _, ok := rec.events[len(rec.events)-1].(cw.CheckpointDetails); !ok || len(rec.events)-1 <= failedAt {
		t.Errorf("details not delivered after the failure: %T", rec.events[len(rec.events)-1])
	}
}

// jobIDs lists the ids of the jobs the watch tracks.
func jobIDs(w *cw.Watch) []string {
	var ids []string
	for _, st := range w.Statuses() {
		ids = append(ids, st.Job.ID)
	}
	return ids
}

// TestDecreaseRebaselines: counts or ids going down (one bad answer, or
// statistics that start over) adopt what Flink shows without counting it;
// counting resumes from there. A bad answer that goes back to the truth
// counts no completion twice.
func TestDecreaseRebaselines(t *testing.T) {
	f := newFixture(t)
	completedOf := []string{"job_name", "orders", "kind", "checkpoint", "status", "completed"}
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 10, Completed: 10}, History: history(1, 10)}, cw.ObserveOptions{Baseline: true})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 3, Completed: 3}, History: history(1, 3)}, cw.ObserveOptions{})
	f.expect(0, total, completedOf...)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 10, Completed: 10}, History: history(1, 10)}, cw.ObserveOptions{})
	f.expect(0, total, completedOf...)
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 11, Completed: 11}, History: history(2, 11)}, cw.ObserveOptions{})
	f.expect(1, total, completedOf...)
	// Counts that start over while ids go on (a JobManager failover: the
	// statistics are new, the id counter is not): adopted, counted on.
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(12, 12)}, cw.ObserveOptions{})
	f.w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 2, Completed: 2}, History: history(12, 13)}, cw.ObserveOptions{})
	f.expect(2, total, completedOf...)
}

// A checkpoint the log counted first is confirmed when REST shows it: the
// event carries REST's view and whether details were asked for (the sampler
// sees it too), and counts nothing again. Every lifecycle line reaches the
// sinks, counted or not.
func TestConfirmedAndLoggedLines(t *testing.T) {
	rec := &recorder{}
	now := t0.Add(time.Hour)
	w := cw.New(cw.Options{Sink: rec, StuckRatio: 0.8, Clock: func() time.Time { return now }})
	w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 1, Completed: 1}, History: history(1, 1)}, cw.ObserveOptions{Baseline: true})
	tr := t0.Add(2 * time.Second)
	w.ObserveLogLine(jobA.ID, 2, cw.LogTriggered, tr, "", "")
	w.ObserveLogTriggered(jobA.ID, 2, tr, false)
	w.ObserveLogLine(jobA.ID, 2, cw.LogDeclined, tr.Add(time.Second), "t_v_0_0 at tm-1", "Asynchronous task checkpoint failed.")
	w.ObserveLogFailed(jobA.ID, 2, tr.Add(time.Second), "", "Asynchronous task checkpoint failed.", false)
	var seen []cw.Checkpoint
	sample := func(_ cw.JobRef, cp cw.Checkpoint) cw.Detail { seen = append(seen, cp); return cw.DetailSubtasks }
	rest := failed(2, tr, "Asynchronous task checkpoint failed.")
	rest.StateSize = 4242
	wanted := w.ObserveREST(jobA, cw.Snapshot{Counts: cw.Counts{Total: 2, Completed: 1, Failed: 1}, History: append([]cw.Checkpoint{rest}, history(1, 1)...)},
		cw.ObserveOptions{Details: true, Sample: sample})
	if len(seen) != 1 || seen[0].ID != 2 || len(wanted) != 1 || wanted[0].Why != cw.DetailsFailed || !wanted[0].Subtasks {
		t.Fatalf("sampler saw %v, wanted %+v", seen, wanted)
	}
	var lines []string
	failures, confirmed := 0, 0
	for _, ev := range rec.events {
		switch e := ev.(type) {
		case cw.CheckpointLogged:
			lines = append(lines, fmt.Sprintf("%d %s %s", e.CheckpointID, e.Line, e.Task))
		case cw.CheckpointFailed:
			failures++
			if e.Source != cw.SourceLog {
				t.Errorf("failure counted from %s, want the log", e.Source)
			}
		case cw.CheckpointConfirmed:
			confirmed++
			if e.Checkpoint.StateSize != 4242 || !e.DetailsWanted {
				t.Errorf("confirmation %+v: want REST's view and details wanted", e)
			}
		}
	}
	if want := []string{"2 triggered ", "2 declined t_v_0_0 at tm-1"}; fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if failures != 1 || confirmed != 1 {
		t.Errorf("%d failures, %d confirmations; want 1 and 1", failures, confirmed)
	}
}
