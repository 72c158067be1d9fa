package tracesink

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/testbed"
)

var (
	t0  = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	job = cw.JobRef{ID: "5dc549549ff6fc3b1e53ba0850ea4316", Name: "orders"}
)

const (
	srcID  = "cbc357ccb763df2852fee8c4fc7d55f2"
	sinkID = "90bea66de1c231edf33913ecd54406c1"
)

type harness struct {
	t   *testing.T
	s   *Sink
	exp *tracetest.InMemoryExporter
	reg *prometheus.Registry
	now time.Time
}

func newHarness(t *testing.T, state string) *harness {
	h := &harness{t: t, exp: tracetest.NewInMemoryExporter(), reg: prometheus.NewPedanticRegistry(), now: t0}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(h.exp), sdktrace.WithIDGenerator(IDGenerator()))
	s, err := New(Options{Tracer: tp.Tracer("test"), SampleRatio: 0.1, SlowRatio: 0.5, SlowestSubtasks: 3,
		StateFile: state, Wait: 30 * time.Second, Registerer: h.reg, Clock: func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	s.Handle(cw.JobState{Job: job, HasConfig: true, Config: cw.Config{Enabled: true, Interval: 10 * time.Second}})
	return h
}

func (h *harness) spans() tracetest.SpanStubs { return h.exp.GetSpans() }

func attrs(kvs []attribute.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func failedCP(id int64) cw.Checkpoint {
	tr := t0.Add(time.Duration(id) * time.Second)
	return cw.Checkpoint{ID: id, Status: cw.Failed, Trigger: tr, Failure: tr.Add(180 * time.Millisecond), Duration: 180 * time.Millisecond,
		StateSize: 15536, CheckpointedSize: 15536, FailureMessage: "Asynchronous task checkpoint failed."}
}

func completedCP(id int64, d time.Duration) cw.Checkpoint {
	tr := t0.Add(time.Duration(id) * time.Second)
	return cw.Checkpoint{ID: id, Status: cw.Completed, Trigger: tr, Ack: tr.Add(d), Duration: d, StateSize: 17000, CheckpointedSize: 900}
}

// subtasks of a vertex: index 1 did not acknowledge, the others took
// 10·index ms, mostly asynchronously.
func subtasks(n int, at time.Time) []cw.SubtaskDetails {
	var out []cw.SubtaskDetails
	for i := 0; i < n; i++ {
		st := cw.SubtaskDetails{Index: i, Acknowledged: i != 1, Duration: -1, StartDelay: -1, Alignment: -1, Sync: -1, Async: -1,
			StateSize: -1, CheckpointedSize: -1, AlignmentProcessed: -1, AlignmentPersisted: -1}
		if st.Acknowledged {
			d := time.Duration(10*i) * time.Millisecond
			st.Ack, st.Duration, st.StartDelay, st.Alignment, st.Sync, st.Async = at.Add(d), d, time.Millisecond, 0, time.Millisecond, d-2*time.Millisecond
			st.StateSize, st.CheckpointedSize = 100, 100
		}
		out = append(out, st)
	}
	return out
}

// A failed checkpoint seen by REST first, with its details: the root span
// with the attributes and Error status, the JobManager's lines as
// events (a line reported twice once), a span per vertex, and under the
// vertex whose subtasks were read its 3 slowest subtasks, the one that did
// not acknowledge first. The ids are derived: a second export repeats them.
func TestFailedCheckpointTrace(t *testing.T) {
	var runs [2]tracetest.SpanStubs
	for i := range runs {
		h := newHarness(t, "")
		cp := failedCP(7)
		decline := cw.CheckpointLogged{Job: job, CheckpointID: 7, Line: cw.LogDeclined, At: cp.Trigger.Add(160 * time.Millisecond),
			Task: "6d25a062760c02a6cf4e5d820fe9a3a6_" + srcID + "_1_0 at 127.0.0.1:22883-da8234", Message: cp.FailureMessage}
		trig := cw.CheckpointLogged{Job: job, CheckpointID: 7, Line: cw.LogTriggered, At: cp.Trigger}
		for _, ev := range []cw.Event{trig, trig, decline,
			cw.CheckpointFailed{Job: job, Checkpoint: cp, Reason: cw.ReasonAsyncFailure, Counted: true, Source: cw.SourceREST, DetailsWanted: true}} {
			h.s.Handle(ev)
		}
		if n := len(h.spans()); n != 0 {
			t.Fatalf("%d spans before the details arrived", n)
		}
		h.s.Handle(cw.CheckpointDetails{Job: job, CheckpointID: 7, Why: cw.DetailsFailed, Tasks: []cw.TaskDetails{
			{VertexID: srcID, Vertex: "Source: sequence -> throttle", Subtasks: 8, Acknowledged: 7, Duration: -1, StateSize: 0, CheckpointedSize: 0,
				SubtaskDetails: subtasks(8, cp.Trigger)},
			{VertexID: sinkID, Vertex: "count -> discard: Writer", Subtasks: 8, Acknowledged: 8, Duration: 50 * time.Millisecond,
				StateSize: 5984, CheckpointedSize: 5984, LatestAck: cp.Trigger.Add(50 * time.Millisecond)},
		}})
		runs[i] = h.spans()
	}
	spans := runs[0]
	if len(spans) != 1+2+3 {
		t.Fatalf("%d spans, want a root, 2 vertices, 3 subtasks", len(spans))
	}
	byName := map[string]tracetest.SpanStub{}
	for i, sp := range spans {
		byName[sp.Name] = sp
		if sp.SpanContext.SpanID() != runs[1][i].SpanContext.SpanID() || sp.SpanContext.TraceID() != TraceID(job.ID, 7) {
			t.Errorf("span %s: ids %s/%s differ between two exports or from the derived trace id", sp.Name, sp.SpanContext.TraceID(), sp.SpanContext.SpanID())
		}
	}
	root := byName["flink.checkpoint"]
	want := map[string]any{
		"flink.job.id": job.ID, "flink.job.name": "orders", "flink.checkpoint.id": int64(7), "flink.checkpoint.kind": "checkpoint",
		"flink.checkpoint.status": "failed", "flink.checkpoint.state_size": int64(15536), "flink.checkpoint.checkpointed_size": int64(15536),
		"flink.checkpoint.failure.reason": "async_failure", "flink.checkpoint.failure.message": "Asynchronous task checkpoint failed.",
		"flink.checkpoint.failure.counted": true, "flink.checkpoint.failure.s3_throttled": false,
		"flink.checkpoint.details": "subtasks", "flink.checkpoint.source": "rest",
	}
	got := attrs(root.Attributes)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("root %s = %v, want %v", k, got[k], v)
		}
	}
	if root.Parent.IsValid() || root.Status.Code != codes.Error || !root.StartTime.Equal(t0.Add(7*time.Second)) ||
		root.EndTime.Sub(root.StartTime) != 180*time.Millisecond {
		t.Errorf("root: parent %v, status %v, %s → %s", root.Parent, root.Status, root.StartTime, root.EndTime)
	}
	if len(root.Events) != 2 || root.Events[0].Name != "checkpoint triggered" || root.Events[1].Name != "checkpoint declined" {
		t.Fatalf("events %+v", root.Events)
	}
	ev := attrs(root.Events[1].Attributes)
	if ev["flink.vertex.name"] != "Source: sequence -> throttle" || ev["flink.subtask.index"] != int64(1) || ev["message"] != "Asynchronous task checkpoint failed." {
		t.Errorf("decline event attributes %v", ev)
	}
	src := byName["Source: sequence -> throttle"]
	if src.Parent.SpanID() != root.SpanContext.SpanID() || src.Status.Code != codes.Error {
		t.Errorf("source vertex: parent %v, status %v", src.Parent, src.Status)
	}
	if w := byName["count -> discard: Writer"]; w.EndTime.Sub(w.StartTime) != 50*time.Millisecond || w.Status.Code == codes.Error {
		t.Errorf("writer vertex: %s, status %v", w.EndTime.Sub(w.StartTime), w.Status)
	}
	// Slowest first, the one that did not acknowledge before all: 2/8, 8/8, 7/8.
	for _, name := range []string{"subtask 2/8", "subtask 8/8", "subtask 7/8"} {
		sp, ok := byName[name]
		if !ok || sp.Parent.SpanID() != src.SpanContext.SpanID() {
			t.Errorf("%s missing under the source vertex (%v)", name, byName)
		}
	}
	if a := attrs(byName["subtask 8/8"].Attributes); a["flink.subtask.async_ms"] != int64(68) || a["flink.subtask.slowest_phase"] != "async" {
		t.Errorf("subtask 8/8 attributes %v", a)
	}
	if byName["subtask 2/8"].Status.Code != codes.Error {
		t.Errorf("the subtask that did not acknowledge has no error status")
	}
}

// A checkpoint the log saw end waits for REST's view; without it, it is
// exported after Wait with what the log knew.
func TestLogFirstWaitsForREST(t *testing.T) {
	h := newHarness(t, "")
	logView := cw.Checkpoint{ID: 3, Status: cw.Completed, Ack: t0.Add(3 * time.Second), Duration: 70 * time.Millisecond, StateSize: 16866, CheckpointedSize: -1}
	h.s.Handle(cw.CheckpointCompleted{Job: job, Checkpoint: logView, Source: cw.SourceLog})
	h.now = h.now.Add(10 * time.Second)
	h.s.Handle(cw.JobState{Job: job, HasConfig: true, Config: cw.Config{Enabled: true, Interval: 10 * time.Second}})
	if n := len(h.spans()); n != 0 {
		t.Fatalf("exported before REST's view or the wait: %d spans", n)
	}
	rest := completedCP(3, 70*time.Millisecond)
	h.s.Handle(cw.CheckpointConfirmed{Job: job, Checkpoint: rest})
	spans := h.spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans after REST's view, want the root", len(spans))
	}
	if a := attrs(spans[0].Attributes); a["flink.checkpoint.checkpointed_size"] != int64(900) || a["flink.checkpoint.source"] != "rest" || a["flink.checkpoint.details"] != "not_sampled" {
		t.Errorf("attributes %v, want REST's sizes", a)
	}

	h.s.Handle(cw.CheckpointCompleted{Job: job, Checkpoint: cw.Checkpoint{ID: 4, Status: cw.Completed, Ack: t0.Add(4 * time.Second), Duration: 50 * time.Millisecond, CheckpointedSize: -1}, Source: cw.SourceLog})
	h.now = h.now.Add(31 * time.Second)
	h.s.Handle(cw.JobState{Job: job})
	spans = h.spans()
	if len(spans) != 2 || attrs(spans[1].Attributes)["flink.checkpoint.source"] != "log" || spans[1].EndTime.Sub(spans[1].StartTime) != 50*time.Millisecond {
		t.Fatalf("after the wait: %d spans, the last %+v", len(spans), spans[len(spans)-1])
	}
}

// The ids the receiver accepted survive a restart: the same checkpoint,
// replayed from the log, is neither sampled nor exported again.
func TestExportedOnceAcrossRestarts(t *testing.T) {
	state := filepath.Join(t.TempDir(), "traces-exported.json")
	h := newHarness(t, state)
	h.s.Handle(cw.CheckpointCompleted{Job: job, Checkpoint: completedCP(5, time.Second), Source: cw.SourceREST})
	h.s.Exported(h.spans().Snapshots())
	h.s.Save()

	h2 := newHarness(t, state)
	if d := h2.s.Sample(job, completedCP(5, time.Second)); d != cw.DetailNone {
		t.Errorf("Sample of an exported checkpoint = %v, want none", d)
	}
	h2.s.Handle(cw.CheckpointCompleted{Job: job, Checkpoint: completedCP(5, time.Second), Source: cw.SourceLog})
	h2.s.Handle(cw.CheckpointCompleted{Job: job, Checkpoint: completedCP(6, time.Second), Source: cw.SourceREST})
	spans := h2.spans()
	if len(spans) != 1 || attrs(spans[0].Attributes)["flink.checkpoint.id"] != int64(6) {
		t.Fatalf("after the restart: %d spans, want checkpoint 6 only", len(spans))
	}
	if v, _ := testbed.GatherValue(h2.reg, "flink_agent_checkpoint_traces_total", "result", "already_exported"); v != 1 {
		t.Errorf("already_exported = %v, want 1", v)
	}
	// A new incarnation of the job id starts its ids over.
	h2.s.Handle(cw.JobIncarnation{Job: job, Why: "job start time changed"})
	h2.s.Handle(cw.CheckpointCompleted{Job: job, Checkpoint: completedCP(5, time.Second), Source: cw.SourceREST})
	if n := len(h2.spans()); n != 2 {
		t.Errorf("after a new incarnation: %d spans, want checkpoint 5 traced again", n)
	}
}

// Sample: failed and slow checkpoints with their subtasks, healthy ones at
// the ratio, decided by the trace id (every agent decides alike).
func TestSample(t *testing.T) {
	h := newHarness(t, "")
	if d := h.s.Sample(job, failedCP(1)); d != cw.DetailSubtasks {
		t.Errorf("failed: %v", d)
	}
	if d := h.s.Sample(job, completedCP(2, 6*time.Second)); d != cw.DetailSubtasks {
		t.Errorf("slow (6 s of a 10 s interval): %v", d)
	}
	n := 0
	other := newHarness(t, "") // another agent decides alike
	for id := int64(100); id < 2100; id++ {
		d := h.s.Sample(job, completedCP(id, time.Second))
		if d == cw.DetailVertices {
			n++
		}
		if other.s.Sample(job, completedCP(id, time.Second)) != d {
			t.Fatalf("checkpoint %d sampled differently by two sinks", id)
		}
	}
	if n < 140 || n > 260 {
		t.Errorf("%d of 2000 healthy checkpoints sampled at 0.1", n)
	}
	var tid trace.TraceID
	if sampled(tid, 0) {
		t.Error("ratio 0 sampled")
	}
}
