// Package tracesink turns the checkpoint watch's events into one
// OpenTelemetry trace per checkpoint: a root span flink.checkpoint from
// trigger to completion or failure, a span per vertex, the slowest subtasks
// of failed and slow checkpoints, and the JobManager's lifecycle lines as
// span events. It is one more sink of the watch: it asks for details
// through the collector's sampling hook (Sample) and never makes a request
// itself. Each checkpoint id is exported once, across restarts of the agent
// too: the ids the receiver accepted are kept in a state file beside the
// log positions, and a trace's id is derived from the job and checkpoint
// ids, so that even a re-export cannot make a second trace.
package tracesink

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
)

// Options configure a Sink.
type Options struct {
	// Tracer starts the spans; its provider must use IDGenerator().
	Tracer trace.Tracer
	// SampleRatio of healthy checkpoints whose vertices are shown; failed
	// and slow ones (longer than SlowRatio of the interval) always are,
	// with their SlowestSubtasks slowest subtasks.
	SampleRatio     float64
	SlowRatio       float64
	SlowestSubtasks int
	// StateFile keeps the ids the receiver accepted across restarts; ""
	// keeps them in memory only.
	StateFile string
	// Wait is how long a checkpoint the log saw end waits for REST's view
	// (sizes, details) before it is exported with what the log said; also
	// the longest wait for details the collector was asked for.
	Wait       time.Duration
	Registerer prometheus.Registerer // required
	Logger     *slog.Logger
	Clock      func() time.Time // default time.Now
}

// Sink is the traces sink. Handle, Sample and Exported are safe for
// concurrent use.
type Sink struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	pending map[key]*pending
	jobs    map[string]jobConf
	done    *exported
	full    bool // pending was full: logged once

	saveMu    sync.Mutex // one state file write at a time
	saveWarns int

	traces *prometheus.CounterVec // by result
}

type key struct {
	job string
	id  int64
}

// jobConf is what the sink knows of a job's checkpoint configuration.
type jobConf struct {
	interval time.Duration
}

// pending is a checkpoint on its way to becoming a trace.
type pending struct {
	job       cw.JobRef
	cp        cw.Checkpoint // REST's view when rest, else the log's
	terminal  bool          // counted completed or failed
	rest      bool
	source    cw.Source
	reason    cw.Reason
	counted   bool
	throttled bool
	// wantDetails: the collector was asked for details and answers with
	// a CheckpointDetails (details).
	wantDetails bool
	details     *cw.CheckpointDetails
	lines       []cw.CheckpointLogged
	since       time.Time // first heard of
	endedAt     time.Time // when it was counted
}

const (
	maxPending = 4096 // checkpoints being assembled, all jobs
	maxLines   = 16   // log lines kept per checkpoint
	// lineAge bounds how long a checkpoint seen only in log lines (never
	// counted: its job failed over, say) is kept.
	lineAge = time.Hour
)

// Results of flink_agent_checkpoint_traces_total.
const (
	resultExported        = "exported"
	resultAlreadyExported = "already_exported"
)

// New creates the sink, reading StateFile. An unreadable or malformed state
// file is logged and treated as empty: traces may then repeat once, which
// their derived ids make harmless.
func New(o Options) (*Sink, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	s := &Sink{o: o, log: o.Logger, pending: map[key]*pending{}, jobs: map[string]jobConf{}, done: newExported(),
		traces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_checkpoint_traces_total",
			Help: "Checkpoints made into traces (exported: handed to the OTLP exporter) or not again (already_exported: by this agent or before its restart).",
		}, []string{"result"}),
	}
	s.traces.WithLabelValues(resultExported)
	s.traces.WithLabelValues(resultAlreadyExported)
	if err := o.Registerer.Register(s.traces); err != nil {
		return nil, err
	}
	if o.StateFile != "" {
		done, err := load(o.StateFile)
		if err != nil {
			s.log.Warn("exported checkpoint ids unreadable: starting without them", "file", o.StateFile, "err", err)
		}
		s.done = done
	}
	return s, nil
}

// Sample is the collector's sampling hook (checkpointwatch
// ObserveOptions.Sample): subtasks for failed and slow checkpoints,
// vertices for SampleRatio of the others, nothing for ids already
// exported. It runs under the watch's lock and only decides.
func (s *Sink) Sample(j cw.JobRef, cp cw.Checkpoint) cw.Detail {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done.has(j.ID, cp.ID) {
		return cw.DetailNone
	}
	if cp.Status == cw.Failed || s.slow(j.ID, cp) {
		if s.o.SlowestSubtasks > 0 {
			return cw.DetailSubtasks
		}
		return cw.DetailVertices
	}
	if sampled(TraceID(j.ID, cp.ID), s.o.SampleRatio) {
		return cw.DetailVertices
	}
	return cw.DetailNone
}

// slow: longer than SlowRatio of the job's checkpoint interval.
func (s *Sink) slow(job string, cp cw.Checkpoint) bool {
	iv := s.jobs[job].interval
	return iv > 0 && cp.Duration > time.Duration(s.o.SlowRatio*float64(iv))
}

// Handle assembles checkpoints from the watch's events and exports each
// once it is complete.
func (s *Sink) Handle(ev cw.Event) {
	now := s.o.Clock()
	var ready []*pending
	s.mu.Lock()
	switch e := ev.(type) {
	case cw.CheckpointLogged:
		if p := s.get(e.Job, e.CheckpointID, now, false); p != nil {
			p.addLine(e)
		}
	case cw.CheckpointCompleted:
		if p := s.get(e.Job, e.Checkpoint.ID, now, true); p != nil {
			p.end(e.Checkpoint, e.Source, e.DetailsWanted, now)
		}
	case cw.CheckpointFailed:
		if p := s.get(e.Job, e.Checkpoint.ID, now, true); p != nil {
			p.end(e.Checkpoint, e.Source, e.DetailsWanted, now)
			p.reason, p.counted, p.throttled = e.Reason, e.Counted, p.throttled || e.Throttled
		}
	case cw.CheckpointConfirmed:
		if p := s.pending[key{e.Job.ID, e.Checkpoint.ID}]; p != nil {
			p.cp, p.rest, p.wantDetails = mergeREST(e.Checkpoint, p.cp), true, e.DetailsWanted
		}
	case cw.CheckpointDetails:
		if p := s.pending[key{e.Job.ID, e.CheckpointID}]; p != nil {
			p.details = &e
		}
	case cw.ThrottlingAttributed:
		if p := s.pending[key{e.Job.ID, e.CheckpointID}]; p != nil {
			p.throttled = true
		}
	case cw.JobState:
		if e.HasConfig {
			s.jobs[e.Job.ID] = jobConf{interval: e.Config.Interval}
		}
	case cw.JobNamed:
		for k, p := range s.pending {
			if k.job == e.Job.ID {
				p.job.Name = e.Job.Name
			}
		}
	case cw.JobIncarnation:
		// Checkpoint ids start over: the old ones mean nothing any more.
		s.done.forget(e.Job.ID)
		s.drop(e.Job.ID, false)
	case cw.JobGone:
		delete(s.jobs, e.Job.ID)
		ready = s.drop(e.Job.ID, true)
	}
	ready = append(ready, s.collect(now, false)...)
	s.mu.Unlock()
	s.export(ready)
}

// addLine keeps a lifecycle line once (the log scanner may report a
// one-line record both as soon as it is read and as a whole event).
func (p *pending) addLine(l cw.CheckpointLogged) {
	for _, have := range p.lines {
		if have.Line == l.Line && have.At.Equal(l.At) && have.Task == l.Task {
			return
		}
	}
	if len(p.lines) < maxLines {
		p.lines = append(p.lines, l)
	}
}

// end records a checkpoint's counting event. REST's view, when the log's
// came first, arrives as a CheckpointConfirmed.
func (p *pending) end(cp cw.Checkpoint, src cw.Source, wantDetails bool, now time.Time) {
	p.cp, p.terminal, p.source, p.endedAt = cp, true, src, now
	p.rest = src == cw.SourceREST
	p.wantDetails = wantDetails
}

// mergeREST is REST's view of a checkpoint, with what only the log knew.
func mergeREST(rest, log cw.Checkpoint) cw.Checkpoint {
	if rest.Trigger.IsZero() {
		rest.Trigger = log.Trigger
	}
	if rest.FailureMessage == "" {
		rest.FailureMessage = log.FailureMessage
	}
	return rest
}

// get returns the checkpoint's pending trace, creating it; nil when its
// trace was exported already (counted once, at its counting event) or too
// many are pending.
func (s *Sink) get(j cw.JobRef, id int64, now time.Time, counting bool) *pending {
	k := key{j.ID, id}
	if p := s.pending[k]; p != nil {
		if j.Name != "" {
			p.job.Name = j.Name
		}
		return p
	}
	if s.done.has(j.ID, id) {
		if counting {
			s.traces.WithLabelValues(resultAlreadyExported).Inc()
		}
		return nil
	}
	if len(s.pending) >= maxPending {
		if !s.full {
			s.full = true
			s.log.Warn("too many checkpoints waiting to become traces: further ones are not traced until some are exported", "pending", len(s.pending))
		}
		return nil
	}
	s.full = false
	p := &pending{job: j, since: now}
	s.pending[k] = p
	return p
}

// collect removes and returns the pending traces that are complete, or
// waited long enough (all terminal ones when flush is set), and forgets
// checkpoints seen only in log lines for lineAge.
func (s *Sink) collect(now time.Time, flush bool) []*pending {
	var ready []*pending
	for k, p := range s.pending {
		switch {
		case !p.terminal:
			if now.Sub(p.since) > lineAge {
				delete(s.pending, k)
			}
			continue
		case flush || now.Sub(p.endedAt) >= s.o.Wait:
		case !p.rest, p.wantDetails && p.details == nil:
			continue
		}
		delete(s.pending, k)
		s.done.hand(k.job, k.id)
		ready = append(ready, p)
	}
	return ready
}

// drop forgets a job's pending traces, returning the terminal ones when
// keep is set.
func (s *Sink) drop(job string, keep bool) []*pending {
	var out []*pending
	for k, p := range s.pending {
		if k.job != job {
			continue
		}
		delete(s.pending, k)
		if keep && p.terminal {
			s.done.hand(k.job, k.id)
			out = append(out, p)
		}
	}
	return out
}

// Exported is the exporter's hook for the batches the receiver accepted:
// their checkpoints are remembered as exported, for the state file.
func (s *Sink) Exported(spans []sdktrace.ReadOnlySpan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		if sp.Parent().IsValid() {
			continue
		}
		if job, id, ok := checkpointOf(sp); ok {
			s.done.confirm(job, id)
		}
	}
}

// Run exports the checkpoints that waited long enough, every second, and
// saves the state file when it changed. When ctx ends it exports every
// checkpoint that ended, with what is known, and returns: the caller then
// shuts the provider down and calls Save.
func (s *Sink) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			ready := s.collect(s.o.Clock(), true)
			s.mu.Unlock()
			s.export(ready)
			return nil
		case <-t.C:
		}
		s.mu.Lock()
		ready := s.collect(s.o.Clock(), false)
		s.mu.Unlock()
		s.export(ready)
		s.Save()
	}
}

// Save writes the state file if exported ids changed. A failing write is
// logged (the first few times): after a restart some traces may repeat.
func (s *Sink) Save() {
	if s.o.StateFile == "" {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if !s.done.dirty {
		s.mu.Unlock()
		return
	}
	st := s.done.snapshot()
	s.mu.Unlock()
	if err := save(s.o.StateFile, st); err != nil {
		s.mu.Lock()
		s.done.dirty = true
		s.mu.Unlock()
		if s.saveWarns < 3 {
			s.saveWarns++
			s.log.Warn("cannot save the exported checkpoint ids: after a restart, traces may be exported again", "file", s.o.StateFile, "err", err)
		}
	}
}
