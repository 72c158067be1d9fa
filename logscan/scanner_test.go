package logscan

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logtest"
)

// recSink records what the scanner feeds to checkpointwatch.
type recSink struct {
	mu        sync.Mutex
	names     map[string]string
	triggered []string
	completed []string
	failed    []recFailure
	marks     []string
	states    []string
	global    []string
	lines     []string
}

type recFailure struct {
	job       string
	id        int64
	reason    checkpointwatch.Reason
	message   string
	throttled bool
}

func newRecSink() *recSink { return &recSink{names: map[string]string{}} }

func (r *recSink) ObserveLogJobName(jobID, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[jobID] = name
}
func (r *recSink) ObserveLogTriggered(jobID string, cpID int64, _ time.Time, savepoint bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.triggered = append(r.triggered, fmt.Sprintf("%s/%d/%v", jobID, cpID, savepoint))
}
func (r *recSink) ObserveLogCompleted(jobID string, cpID int64, _ time.Time, bytes int64, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.completed = append(r.completed, fmt.Sprintf("%s/%d/%d/%s", jobID, cpID, bytes, d))
}
func (r *recSink) ObserveLogFailed(jobID string, cpID int64, _ time.Time, reason checkpointwatch.Reason, message string, throttled bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, recFailure{jobID, cpID, reason, message, throttled})
}
func (r *recSink) ObserveLogLine(jobID string, cpID int64, line checkpointwatch.LogLine, _ time.Time, task, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf("%d %s %q %q", cpID, line, task, message))
}
func (r *recSink) MarkThrottled(jobID string, cpID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, fmt.Sprintf("%s/%d", jobID, cpID))
}
func (r *recSink) ObserveLogJobState(jobID, name, from, to string, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, fmt.Sprintf("%s %s->%s", name, from, to))
}
func (r *recSink) ObserveLogGlobalFailure(message string, tolerance bool, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.global = append(r.global, fmt.Sprintf("%v %s", tolerance, message))
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type harness struct {
	s     *Scanner
	reg   *prometheus.Registry
	sink  *recSink
	sd    *logtest.Statsd
	clock *fakeClock
}

func newHarness(t *testing.T, maxBuckets int) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), sink: newRecSink(), sd: &logtest.Statsd{},
		clock: &fakeClock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}}
	var err error
	h.s, err = New(Options{
		Registerer:     h.reg,
		Statsd:         dogstatsd.Wrap(h.sd, true),
		Identity:       identity.Identity{Cluster: "c1", Component: identity.JobManager},
		Checkpoints:    h.sink,
		ThrottleWindow: 2 * time.Minute,
		MaxBuckets:     maxBuckets,
		Clock:          h.clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const (
	tJob      = "a263c230045a6bc59839b4167eccf768"
	throttled = "com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: 1)"
)

func throttleEvent(bucket string) string {
	return "2026-01-02 03:00:00,000 WARN  x [] - upload failed for s3://" + bucket + "/chk\n" + throttled + "\n\tat a.b(C.java:1)\n\tat c.d(E.java:2)"
}

func TestScannerThrottleMetricsAndBurstEvent(t *testing.T) {
	h := newHarness(t, 2)
	t0 := h.clock.now()
	h.s.Scan(t0, []byte(throttleEvent("bucket-a")), "taskmanager")
	h.s.Scan(t0.Add(time.Second), []byte(throttleEvent("bucket-a")), "taskmanager")
	h.s.Scan(t0.Add(2*time.Second), []byte(throttleEvent("bucket-b")), "jobmanager")
	h.s.Scan(t0.Add(3*time.Second), []byte(throttleEvent("bucket-c")), "jobmanager") // over the cap
	h.s.Scan(t0.Add(4*time.Second), []byte("2026-01-02 03:00:04,000 INFO x [] - nothing to see"), "jobmanager")
	// After a quiet window, bucket-a's next occurrence starts a new burst.
	h.clock.set(t0.Add(10 * time.Minute))
	h.s.Scan(t0.Add(10*time.Minute), []byte(throttleEvent("bucket-a")), "taskmanager")

	want := `
# HELP flink_s3_throttle_events_total S3 throttling occurrences in the Flink logs (one per log event, stack trace included), by bucket and component.
# TYPE flink_s3_throttle_events_total counter
flink_s3_throttle_events_total{bucket="bucket-a",component="taskmanager"} 3
flink_s3_throttle_events_total{bucket="bucket-b",component="jobmanager"} 1
flink_s3_throttle_events_total{bucket="other",component="jobmanager"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "flink_s3_throttle_events_total"); err != nil {
		t.Error(err)
	}
	if len(h.sd.Counts) != 5 || h.sd.Counts[0] != "flink.s3.throttle 1 bucket:bucket-a,component:taskmanager" {
		t.Errorf("dogstatsd counts: %q", h.sd.Counts)
	}
	// Bursts started: bucket-a (twice: before and after the quiet window),
	// bucket-b, other; the second bucket-a occurrence is inside its burst.
	var titles []string
	for _, e := range h.sd.Events {
		titles = append(titles, e.Title)
		if e.AlertType != statsd.Warning || !strings.Contains(e.Text, "Please reduce your request rate") {
			t.Errorf("event %+v", e)
		}
	}
	if got := strings.Join(titles, "|"); got != "S3 throttling on bucket bucket-a|S3 throttling on bucket bucket-b|S3 throttling on bucket other|S3 throttling on bucket bucket-a" {
		t.Errorf("events: %s", got)
	}
	st := h.s.Throttling()
	if !st.Active || st.Events != 1 || !st.Since.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("throttling status %+v", st)
	}
	h.clock.set(t0.Add(13 * time.Minute))
	if st := h.s.Throttling(); st.Active {
		t.Errorf("still active after the window: %+v", st)
	}
}

func TestScannerReplayedThrottleSendsNoEvent(t *testing.T) {
	h := newHarness(t, 0)
	old := h.clock.now().Add(-time.Hour)
	h.s.Scan(old, []byte(throttleEvent("bucket-a")), "jobmanager")
	if len(h.sd.Events) != 0 {
		t.Errorf("an hour-old line announced a burst: %+v", h.sd.Events[0])
	}
	if got := testutil.ToFloat64(h.s.throttles.WithLabelValues("bucket-a", "jobmanager")); got != 1 {
		t.Errorf("counter %v, want 1", got)
	}
	if st := h.s.Throttling(); st.Active {
		t.Errorf("an hour-old line made throttling active: %+v", st)
	}
}

func TestScannerLifecycleAndAttribution(t *testing.T) {
	h := newHarness(t, 0)
	t0 := h.clock.now().Add(-5 * time.Minute)
	at := t0.Add
	scan := func(d time.Duration, comp, ev string) { h.s.Scan(at(d), []byte(ev), comp) }

	scan(0, "jobmanager", "x - Job j1 ("+tJob+") switched from state CREATED to RUNNING.")
	scan(time.Second, "jobmanager", "x - Triggering checkpoint 1 (type=CheckpointType{name='Checkpoint', sharingFilesStrategy=FORWARD_BACKWARD}) @ 1795477502157 for job "+tJob+".")
	scan(2*time.Second, "jobmanager", "x - Completed checkpoint 1 for job "+tJob+" (10 bytes, checkpointDuration=5 ms, finalizationTime=0 ms).")
	// Checkpoint 2: the decline carries the throttling in its cause chain,
	// then the failure manager's line repeats it: one failure, attributed.
	scan(10*time.Second, "jobmanager", "x - Decline checkpoint 2 by task t of job "+tJob+" at tm.\norg.apache.flink.util.SerializedThrowable: org.apache.flink.runtime.checkpoint.CheckpointException: Asynchronous task checkpoint failed.\nCaused by: "+throttled)
	scan(11*time.Second, "jobmanager", "x - Failed to trigger or complete checkpoint 2 for job "+tJob+". (0 consecutive failed attempts so far)\norg.apache.flink.runtime.checkpoint.CheckpointException: Asynchronous task checkpoint failed.\nCaused by: "+throttled)
	// Checkpoint 3 expires 30 s after the JobManager's last throttling: attributed by the window.
	scan(41*time.Second, "jobmanager", "x - Checkpoint 3 of job "+tJob+" expired before completing.")
	// Checkpoint 4 expires with no throttling for 3 minutes; TaskManager
	// throttling does not count for the JobManager's failure...
	scan(4*time.Minute, "jobmanager", "x - Checkpoint 4 of job "+tJob+" expired before completing.")
	scan(4*time.Minute+time.Second, "taskmanager", throttleEvent("b"))
	// ...but the JobManager's own throttling 30 s later marks it afterwards.
	scan(4*time.Minute+30*time.Second, "jobmanager", throttleEvent("b"))
	scan(4*time.Minute+31*time.Second, "jobmanager", "x - Trying to recover from a global failure.\norg.apache.flink.util.FlinkRuntimeException: Exceeded checkpoint tolerable failure threshold.")
	scan(4*time.Minute+32*time.Second, "jobmanager", "x - Job j1 ("+tJob+") switched from state RUNNING to RESTARTING.")

	s := h.sink
	if s.names[tJob] != "j1" {
		t.Errorf("names %v", s.names)
	}
	if fmt.Sprint(s.triggered) != "["+tJob+"/1/false]" || fmt.Sprint(s.completed) != "["+tJob+"/1/10/5ms]" {
		t.Errorf("triggered %v completed %v", s.triggered, s.completed)
	}
	want := []recFailure{
		{tJob, 2, "", "Asynchronous task checkpoint failed.", true},
		{tJob, 3, checkpointwatch.ReasonExpired, "Checkpoint expired before completing.", true},
		{tJob, 4, checkpointwatch.ReasonExpired, "Checkpoint expired before completing.", false},
	}
	if fmt.Sprint(s.failed) != fmt.Sprint(want) {
		t.Errorf("failed\n got %v\nwant %v", s.failed, want)
	}
	if fmt.Sprint(s.marks) != "["+tJob+"/4]" {
		t.Errorf("marks %v", s.marks)
	}
	if fmt.Sprint(s.states) != "[j1 CREATED->RUNNING j1 RUNNING->RESTARTING]" || fmt.Sprint(s.global) != "[true Exceeded checkpoint tolerable failure threshold.]" {
		t.Errorf("states %v global %v", s.states, s.global)
	}
	if got := h.s.LastFailure("j1"); got != "Checkpoint expired before completing." {
		t.Errorf("LastFailure = %q", got)
	}
	// Every lifecycle line, counted or not, for the traces' span events.
	wantLines := []string{
		`1 triggered "" ""`, `1 completed "" ""`,
		`2 declined "t at tm" "Asynchronous task checkpoint failed."`,
		`2 failed "" "Asynchronous task checkpoint failed."`,
		`3 expired "" "Checkpoint expired before completing."`,
		`4 expired "" "Checkpoint expired before completing."`,
	}
	if fmt.Sprint(s.lines) != fmt.Sprint(wantLines) {
		t.Errorf("lines\n got %q\nwant %q", s.lines, wantLines)
	}
}

func TestScannerUnrecognizedCountedAndLoggedOnce(t *testing.T) {
	h := newHarness(t, 0)
	for i := 0; i < 3; i++ {
		h.s.Scan(h.clock.now(), []byte("x - Completed checkpoint 8 for job nope (1 bytes)."), "jobmanager")
	}
	if got := testutil.ToFloat64(h.s.unrecogniz.WithLabelValues("completed")); got != 3 {
		t.Errorf("unrecognized = %v, want 3", got)
	}
	if len(h.sink.completed) != 0 {
		t.Errorf("completed %v", h.sink.completed)
	}
}

func TestNilWatchMeansNoSink(t *testing.T) {
	var w *checkpointwatch.Watch
	s, err := New(Options{Registerer: prometheus.NewRegistry(), Checkpoints: w, ThrottleWindow: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Would panic on a nil *Watch.
	s.Scan(time.Now(), []byte("x - Completed checkpoint 1 for job "+tJob+" (1 bytes, checkpointDuration=1 ms, finalizationTime=0 ms)."), "jobmanager")
	s.Scan(time.Now(), []byte(throttleEvent("b")), "jobmanager")
}

func TestNewRequiresRegisterer(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a Registerer succeeded")
	}
}

// The presto client's throttling names no bucket; a log's start-up
// configuration names the checkpoint directory's, and throttled checkpoint
// writes and discards are counted on it. Real lines: the configuration lines
// of a test bed TaskManager (Flink 1.20), the corpus's throttled
// asynchronous checkpoint part and a throttled cleaner discard.
func TestScannerCheckpointBucketFromConfiguration(t *testing.T) {
	h := newHarness(t, 0)
	t0 := h.clock.now()
	asyncPart, err := os.ReadFile("testdata/corpus/testbed/flink-1.20.0-presto-tm-async-failure.log")
	if err != nil {
		t.Fatal(err)
	}
	cleaner := "2026-11-23 23:45:17,970 WARN  org.apache.flink.runtime.checkpoint.CheckpointsCleaner       [] - Could not properly discard completed checkpoint 6.\n" +
		"com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: 00000000000000B8; S3 Extended Request ID: testbed/dn2znstxvrx6; Proxy: null)\n" +
		"\tat com.amazonaws.services.s3.AmazonS3Client.listObjects(AmazonS3Client.java:900) ~[?:?]"
	const prefix = "2026-12-02 07:20:11,231 INFO  org.apache.flink.configuration.GlobalConfiguration           [] - Loading configuration property: "
	for _, ev := range []struct{ line, component string }{
		{cleaner, "jobmanager"}, // before any configuration: unknown
		{prefix + "s3.path.style.access, true", "taskmanager"},
		{prefix + "execution.checkpointing.dir, s3p://flink/checkpoints", "taskmanager"},
		{string(asyncPart), "taskmanager"},
		{throttleEvent("named-bucket"), "taskmanager"}, // the event's own bucket wins
		{throttled, "taskmanager"},                     // not checkpoint I/O: unknown
		{prefix + "state.checkpoints.dir, s3://ckpt-jm/flink", "jobmanager"},
		{cleaner, "jobmanager"},
		{prefix + "state.checkpoints.dir, hdfs://namenode/checkpoints", "jobmanager"}, // restarted elsewhere
		{cleaner, "jobmanager"},                                                       // the directory is not on S3
	} {
		h.s.Scan(t0, []byte(ev.line), ev.component)
	}
	want := `
# HELP flink_s3_throttle_events_total S3 throttling occurrences in the Flink logs (one per log event, stack trace included), by bucket and component.
# TYPE flink_s3_throttle_events_total counter
flink_s3_throttle_events_total{bucket="ckpt-jm",component="jobmanager"} 1
flink_s3_throttle_events_total{bucket="flink",component="taskmanager"} 1
flink_s3_throttle_events_total{bucket="named-bucket",component="taskmanager"} 1
flink_s3_throttle_events_total{bucket="unknown",component="jobmanager"} 2
flink_s3_throttle_events_total{bucket="unknown",component="taskmanager"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "flink_s3_throttle_events_total"); err != nil {
		t.Error(err)
	}
}
