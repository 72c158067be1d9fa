package tracesink

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/excerpt"
)

// Span and attribute names: a contract, as metric names are.
const (
	rootName = "flink.checkpoint"

	attrJobID            = "flink.job.id"
	attrJobName          = "flink.job.name"
	attrCheckpointID     = "flink.checkpoint.id"
	attrKind             = "flink.checkpoint.kind"
	attrStatus           = "flink.checkpoint.status"
	attrStateSize        = "flink.checkpoint.state_size"
	attrCheckpointedSize = "flink.checkpoint.checkpointed_size"
	attrSource           = "flink.checkpoint.source"
	attrSlow             = "flink.checkpoint.slow"
	attrDetails          = "flink.checkpoint.details"
	attrDetailsError     = "flink.checkpoint.details.error"
	attrReason           = "flink.checkpoint.failure.reason"
	attrMessage          = "flink.checkpoint.failure.message"
	attrCounted          = "flink.checkpoint.failure.counted"
	attrThrottled        = "flink.checkpoint.failure.s3_throttled"
)

// maxMessage bounds Flink's failure message on a span.
const maxMessage = 2048

// export turns complete checkpoints into spans. It runs outside the sink's
// lock; ending a span only queues it (or drops and counts it).
func (s *Sink) export(ready []*pending) {
	for _, p := range ready {
		s.trace(p)
	}
	s.traces.WithLabelValues(resultExported).Add(float64(len(ready)))
}

func (s *Sink) trace(p *pending) {
	cp := p.cp
	tid := TraceID(p.job.ID, cp.ID)
	start, end := p.times()
	failed := cp.Status == cw.Failed
	status := "completed"
	if failed {
		status = "failed"
	}
	attrs := []attribute.KeyValue{
		attribute.String(attrJobID, p.job.ID),
		attribute.String(attrJobName, p.job.Name),
		attribute.Int64(attrCheckpointID, cp.ID),
		attribute.String(attrKind, cw.Kind(cp.Savepoint)),
		attribute.String(attrStatus, status),
		attribute.String(attrSource, source(p)),
	}
	if cp.StateSize >= 0 && (p.rest || !failed) {
		attrs = append(attrs, attribute.Int64(attrStateSize, cp.StateSize))
	}
	if cp.CheckpointedSize >= 0 {
		attrs = append(attrs, attribute.Int64(attrCheckpointedSize, cp.CheckpointedSize))
	}
	s.mu.Lock()
	slow := s.slow(p.job.ID, cp)
	s.mu.Unlock()
	if slow {
		attrs = append(attrs, attribute.Bool(attrSlow, true))
	}
	attrs = append(attrs, detailsAttrs(p)...)
	if failed {
		attrs = append(attrs,
			attribute.String(attrReason, string(p.reason)),
			attribute.String(attrMessage, excerpt.Cut(cp.FailureMessage, maxMessage)),
			attribute.Bool(attrCounted, p.counted),
			attribute.Bool(attrThrottled, p.throttled))
	}
	ctx, root := s.o.Tracer.Start(withIDs(context.Background(), tid, spanID(tid, "checkpoint")), rootName,
		trace.WithTimestamp(start), trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindInternal))
	for _, l := range p.lines {
		ev := taskAttrs(l.Task, p.details)
		if l.Task != "" {
			ev = append(ev, attribute.String("flink.task", l.Task))
		}
		if l.Message != "" {
			ev = append(ev, attribute.String("message", excerpt.Cut(l.Message, maxMessage)))
		}
		root.AddEvent("checkpoint "+l.Line.String(), trace.WithTimestamp(l.At), trace.WithAttributes(ev...))
	}
	if p.details != nil {
		s.vertices(ctx, tid, p, start, end, failed)
	}
	if failed {
		desc := string(p.reason)
		if cp.FailureMessage != "" {
			desc += ": " + cp.FailureMessage
		}
		root.SetStatus(codes.Error, excerpt.Cut(desc, maxMessage))
	}
	root.End(trace.WithTimestamp(end))
}

// times is the checkpoint's span: from trigger to completion or failure,
// from REST's timestamps, else the log's lines, else its duration.
func (p *pending) times() (start, end time.Time) {
	cp := p.cp
	start = cp.Trigger
	end = cp.Ack
	if cp.Status == cw.Failed && !cp.Failure.IsZero() {
		end = cp.Failure
	}
	for _, l := range p.lines {
		switch {
		case l.Line == cw.LogTriggered && start.IsZero():
			start = l.At
		case l.Line != cw.LogTriggered && end.IsZero():
			end = l.At
		}
	}
	switch {
	case start.IsZero() && !end.IsZero() && cp.Duration >= 0:
		start = end.Add(-cp.Duration)
	case end.IsZero() && !start.IsZero() && cp.Duration >= 0:
		end = start.Add(cp.Duration)
	}
	if start.IsZero() {
		start = p.endedAt
	}
	if end.Before(start) {
		end = start
	}
	return start, end
}

// source says where the trace's data came from: REST (which the log may
// have seen first) or the log alone.
func source(p *pending) string {
	if p.rest {
		return "rest"
	}
	return "log"
}

func detailsAttrs(p *pending) []attribute.KeyValue {
	d := p.details
	switch {
	case d == nil && p.wantDetails:
		return []attribute.KeyValue{attribute.String(attrDetails, "unavailable"), attribute.String(attrDetailsError, "no answer in time")}
	case d == nil:
		return []attribute.KeyValue{attribute.String(attrDetails, "not_sampled")}
	case d.Err != nil:
		return []attribute.KeyValue{attribute.String(attrDetails, "unavailable"), attribute.String(attrDetailsError, excerpt.Cut(d.Err.Error(), 512))}
	}
	for _, t := range d.Tasks {
		if t.SubtaskDetails != nil {
			return []attribute.KeyValue{attribute.String(attrDetails, "subtasks")}
		}
	}
	return []attribute.KeyValue{attribute.String(attrDetails, "vertices")}
}

// vertices adds a span per vertex, and under the vertices whose subtasks
// were read, the SlowestSubtasks slowest subtasks (those that did not
// acknowledge first).
func (s *Sink) vertices(ctx context.Context, tid trace.TraceID, p *pending, start, end time.Time, failed bool) {
	tasks := p.details.Tasks
	type sub struct {
		task int
		st   cw.SubtaskDetails
	}
	var subs []sub
	for i, t := range tasks {
		for _, st := range t.SubtaskDetails {
			subs = append(subs, sub{i, st})
		}
	}
	sort.SliceStable(subs, func(a, b int) bool {
		if subs[a].st.Acknowledged != subs[b].st.Acknowledged {
			return !subs[a].st.Acknowledged
		}
		return subs[a].st.Duration > subs[b].st.Duration
	})
	subs = subs[:min(len(subs), s.o.SlowestSubtasks)]

	for i, t := range tasks {
		vend := end
		if !t.LatestAck.IsZero() && !t.LatestAck.Before(start) && (t.Acknowledged == t.Subtasks || !failed) {
			vend = t.LatestAck
		}
		attrs := []attribute.KeyValue{
			attribute.String("flink.vertex.id", t.VertexID),
			attribute.String("flink.vertex.name", t.Vertex),
			attribute.Int64("flink.vertex.subtasks", t.Subtasks),
			attribute.Int64("flink.vertex.acknowledged_subtasks", t.Acknowledged),
		}
		if t.StateSize >= 0 {
			attrs = append(attrs, attribute.Int64("flink.vertex.state_size", t.StateSize))
		}
		if t.CheckpointedSize >= 0 {
			attrs = append(attrs, attribute.Int64("flink.vertex.checkpointed_size", t.CheckpointedSize))
		}
		vctx, vs := s.o.Tracer.Start(withIDs(ctx, tid, spanID(tid, "vertex", t.VertexID)), t.Vertex,
			trace.WithTimestamp(start), trace.WithAttributes(attrs...))
		if failed && t.Acknowledged < t.Subtasks {
			vs.SetStatus(codes.Error, fmt.Sprintf("%d of %d subtasks did not acknowledge", t.Subtasks-t.Acknowledged, t.Subtasks))
		}
		for _, sb := range subs {
			if sb.task == i {
				s.subtask(vctx, tid, t, sb.st, start, vend)
			}
		}
		vs.End(trace.WithTimestamp(vend))
	}
}

func (s *Sink) subtask(ctx context.Context, tid trace.TraceID, t cw.TaskDetails, st cw.SubtaskDetails, start, end time.Time) {
	attrs := []attribute.KeyValue{
		attribute.Int("flink.subtask.index", st.Index),
		attribute.Bool("flink.subtask.acknowledged", st.Acknowledged),
	}
	ms := func(k string, d time.Duration) {
		if d >= 0 {
			attrs = append(attrs, attribute.Int64(k, d.Milliseconds()))
		}
	}
	bytes := func(k string, n int64) {
		if n >= 0 {
			attrs = append(attrs, attribute.Int64(k, n))
		}
	}
	if st.Acknowledged {
		ms("flink.subtask.start_delay_ms", st.StartDelay)
		ms("flink.subtask.alignment_ms", st.Alignment)
		ms("flink.subtask.sync_ms", st.Sync)
		ms("flink.subtask.async_ms", st.Async)
		bytes("flink.subtask.state_size", st.StateSize)
		bytes("flink.subtask.checkpointed_size", st.CheckpointedSize)
		bytes("flink.subtask.alignment_processed_bytes", st.AlignmentProcessed)
		bytes("flink.subtask.alignment_persisted_bytes", st.AlignmentPersisted)
		attrs = append(attrs, attribute.Bool("flink.subtask.unaligned", st.Unaligned), attribute.Bool("flink.subtask.aborted", st.Aborted))
		if ph := slowestPhase(st); ph != "" {
			attrs = append(attrs, attribute.String("flink.subtask.slowest_phase", ph))
		}
	}
	// Inside its vertex: an acknowledgement after the checkpoint failed
	// (flink.subtask.aborted) ends with it.
	send := end
	if st.Acknowledged && !st.Ack.IsZero() && !st.Ack.Before(start) && st.Ack.Before(end) {
		send = st.Ack
	}
	name := "subtask " + strconv.Itoa(st.Index+1) + "/" + strconv.FormatInt(t.Subtasks, 10)
	_, sp := s.o.Tracer.Start(withIDs(ctx, tid, spanID(tid, "subtask", t.VertexID, strconv.Itoa(st.Index))), name,
		trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if !st.Acknowledged {
		sp.SetStatus(codes.Error, "did not acknowledge")
	}
	sp.End(trace.WithTimestamp(send))
}

// slowestPhase names the longest part of a subtask's checkpoint: the
// barrier's way to it, alignment, the synchronous or the asynchronous part.
func slowestPhase(st cw.SubtaskDetails) string {
	best, name := time.Duration(0), ""
	for _, ph := range []struct {
		n string
		d time.Duration
	}{{"start_delay", st.StartDelay}, {"alignment", st.Alignment}, {"sync", st.Sync}, {"async", st.Async}} {
		if ph.d > best {
			best, name = ph.d, ph.n
		}
	}
	return name
}

// checkpointOf reads a root span's job and checkpoint ids.
func checkpointOf(sp sdktrace.ReadOnlySpan) (string, int64, bool) {
	if sp.Name() != rootName {
		return "", 0, false
	}
	var job string
	var id int64
	var hasJob, hasID bool
	for _, a := range sp.Attributes() {
		switch a.Key {
		case attrJobID:
			job, hasJob = a.Value.AsString(), true
		case attrCheckpointID:
			id, hasID = a.Value.AsInt64(), true
		}
	}
	return job, id, hasJob && hasID
}

// taskAttrs reads a declining task's attempt id,
// <graph>_<vertex id>_<subtask index>_<attempt> (Flink 1.17 and later), as
// the vertex and subtask it names.
func taskAttrs(task string, d *cw.CheckpointDetails) []attribute.KeyValue {
	id, _, _ := strings.Cut(task, " ")
	parts := strings.Split(id, "_")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return nil
	}
	idx, err := strconv.Atoi(parts[2])
	if err != nil {
		return nil
	}
	out := []attribute.KeyValue{attribute.String("flink.vertex.id", parts[1]), attribute.Int("flink.subtask.index", idx)}
	if d != nil {
		for _, t := range d.Tasks {
			if t.VertexID == parts[1] {
				out = append(out, attribute.String("flink.vertex.name", t.Vertex))
			}
		}
	}
	return out
}
