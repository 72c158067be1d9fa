// Package progress tells whether a running Flink job makes progress:
// records entering (at its sources) and leaving (into its sinks) per
// second, the sources' backlog (FLIP-33 pendingRecords, else Kafka's
// records-lag-max), how far the event-time watermark lags behind now, and
// the records windows dropped as late.
//
// It decides and remembers; it does no I/O. Records in and out come from
// the cumulative read-records/write-records that /jobs/:id reports for each
// vertex, which the collector reads every scrape anyway (ObserveCounts).
// The rest are subtask metrics, which Flink aggregates per vertex only
// (/jobs/:id/vertices/:vid/subtasks/metrics?get=…&agg=…): Plan asks for at
// most ONE request per job and scrape, taking the job's vertices of
// interest (its sources, its sinks, the vertices that drop late records) in
// turn, so a job with V of them has values at most V scrapes old. Operator
// metrics carry the operator's name (Source__orders.pendingRecords), so each
// vertex's metric names are listed once first, in place of a values
// request.
package progress

import (
	"math"
	"strings"
	"sync"
	"time"
)

// Vertex is a vertex of a job's plan (/jobs/:id "plan"."nodes").
type Vertex struct {
	ID     string
	Inputs []string // ids of the vertices it reads from; none for a source
}

// VertexCounts are a vertex's cumulative record counts from /jobs/:id:
// Read is read-records (from other vertices), Written write-records.
type VertexCounts struct {
	ID            string
	Read, Written int64
}

// Request is the one REST request Plan wants: the vertex's metric names
// (List), or the aggregated values of IDs (agg=min,max,sum).
type Request struct {
	Vertex string
	List   bool
	IDs    []string
}

// Agg is one entry of an aggregated subtask metrics answer.
type Agg struct {
	ID            string
	Min, Max, Sum float64
	HasMin        bool
	HasMax        bool
	HasSum        bool
}

// Progress is a job's progress as last read.
type Progress struct {
	// RecordsIn is what the sources emit per second, RecordsOut what the
	// sinks take in, over the last minute.
	RecordsIn, RecordsOut       float64
	HasRecordsIn, HasRecordsOut bool
	// Pending is the sources' backlog: the sum of pendingRecords over their
	// subtasks, or of records-lag-max where no source reports
	// pendingRecords.
	Pending    float64
	HasPending bool
	// WatermarkLag is how far the lowest watermark reaching a sink was
	// behind the clock when it was read; only for jobs with event time.
	WatermarkLag time.Duration
	HasWatermark bool
	// LateDropped counts the records windows dropped as late since the
	// agent first read them: Flink's counters restart with their tasks, the
	// total does not.
	LateDropped float64
	HasLate     bool
}

const (
	// A vertex listed before Flink had (all) its metrics — Flink fetches
	// them every 10 s, operators register theirs after the task's — or a
	// source or sink without the metrics it usually has, is listed again
	// after relistFirst, then twice as long each time, at most relistMax
	// apart (a source without pendingRecords, a job without event time).
	relistFirst = 15 * time.Second
	relistMax   = 5 * time.Minute
	// noWatermark is Long.MIN_VALUE as Flink's aggregation writes it: no
	// watermark (no event time, or none yet).
	noWatermark = -9.2e18
	// rateWindow is the span records per second are taken over: Flink's own
	// per-second metrics are one-minute averages too.
	rateWindow = time.Minute
	// minQuiet: a counter unchanged this long (or 2.5 times its usual
	// refresh gap, if longer) stands still. Flink refreshes the counters it
	// serves every metrics.fetcher.update-interval (10 s by default).
	minQuiet = 30 * time.Second
)

// MaxJobs bounds the jobs whose progress is tracked, as the checkpoint
// watch bounds the jobs it keeps state for: beyond it, jobs have no
// progress series (memory stays bounded with thousands of jobs).
const MaxJobs = 1024

// Tracker remembers, per job, its vertices, their metric names and last
// values. It is safe for concurrent use.
type Tracker struct {
	mu    sync.Mutex
	jobs  map[string]*job
	clock func() time.Time
}

// New returns a Tracker; clock is time.Now outside tests.
func New(clock func() time.Time) *Tracker {
	if clock == nil {
		clock = time.Now
	}
	return &Tracker{jobs: map[string]*job{}, clock: clock}
}

type job struct {
	graph    string // the vertex ids and inputs Plan last saw
	vertices []*vertex
	next     int // rotation position among the vertices of interest
	late     float64
	hasLate  bool
	in, out  counter // records from the sources, into the sinks
	chained  bool    // a vertex is source and sink: its rates come from metrics
}

type vertex struct {
	id            string
	source, sink  bool
	listed        time.Time // zero: never
	relists       int       // lists in a row that lacked metrics
	names         int       // metric names in the last list
	pending       []string  // pendingRecords ids
	lagMax        []string  // records-lag-max ids
	lateIDs       []string  // numLateRecordsDropped ids
	watermark     []string  // currentInputWatermark (or the source's output watermark)
	in, out       []string  // per-second rates, for a vertex that is source and sink
	read          bool
	pendingV      float64
	lagMaxV       float64
	hasPending    bool
	hasLagMax     bool
	wm            float64 // lowest watermark, ms; noWatermark when none
	wmAt          time.Time
	inV, outV     float64
	hasIn, hasOut bool
	lateRaw       float64
	hasLateV      bool
}

func graphKey(vs []Vertex) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.ID)
		b.WriteByte('<')
		b.WriteString(strings.Join(v.Inputs, ","))
		b.WriteByte(';')
	}
	return b.String()
}

// Plan returns the request to make for the job this scrape: a vertex's
// names list when one is due, else one values request; none when there is
// nothing to ask.
func (t *Tracker) Plan(jobID string, vs []Vertex) (Request, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	j := t.jobs[jobID]
	if j == nil && len(t.jobs) >= MaxJobs {
		return Request{}, false
	}
	if key := graphKey(vs); j == nil || j.graph != key {
		j = newJob(vs, key, j)
		t.jobs[jobID] = j
	}
	if v := j.toList(now); v != nil {
		return Request{Vertex: v.id, List: true}, true
	}
	interest := j.interest()
	for range interest {
		v := interest[j.next%len(interest)]
		j.next++
		if ids := v.ids(); len(ids) > 0 {
			return Request{Vertex: v.id, IDs: ids}, true
		}
	}
	return Request{}, false
}

func newJob(vs []Vertex, key string, old *job) *job {
	j := &job{graph: key}
	if old != nil {
		// The totals outlive a graph change (a rescaled or redeployed job).
		j.late, j.hasLate = old.late, old.hasLate
		j.in, j.out = old.in, old.out
	}
	fed := map[string]bool{}
	for _, v := range vs {
		for _, in := range v.Inputs {
			fed[in] = true
		}
	}
	for _, v := range vs {
		x := &vertex{id: v.ID, source: len(v.Inputs) == 0, sink: !fed[v.ID], wm: noWatermark}
		j.chained = j.chained || (x.source && x.sink)
		j.vertices = append(j.vertices, x)
	}
	return j
}

// toList picks the vertex whose names to list: sources and sinks first,
// then the others; again, after a while, one listed before Flink had its
// metrics.
func (j *job) toList(now time.Time) *vertex {
	for _, pass := range []func(*vertex) bool{
		func(v *vertex) bool { return v.listed.IsZero() && (v.source || v.sink) },
		func(v *vertex) bool { return v.listed.IsZero() },
		func(v *vertex) bool { return (v.names == 0 || v.lacking()) && now.Sub(v.listed) >= v.relistAfter() },
	} {
		for _, v := range j.vertices {
			if pass(v) {
				return v
			}
		}
	}
	return nil
}

// lacking: a source or sink without the metrics a source or sink usually
// has.
func (v *vertex) lacking() bool {
	return (v.source && v.sink && (len(v.in) == 0 || len(v.out) == 0)) || (v.sink && len(v.watermark) == 0) ||
		(v.source && len(v.pending) == 0 && len(v.lagMax) == 0)
}

// relistAfter is how long after its last list a vertex that lacked
// metrics is listed again.
func (v *vertex) relistAfter() time.Duration {
	d := relistFirst
	for i := 1; i < v.relists && d < relistMax; i++ {
		d *= 2
	}
	return min(d, relistMax)
}

func (j *job) interest() []*vertex {
	var out []*vertex
	for _, v := range j.vertices {
		if v.source || v.sink || len(v.lateIDs) > 0 {
			out = append(out, v)
		}
	}
	return out
}

func (v *vertex) ids() []string {
	var ids []string
	for _, l := range [][]string{v.pending, v.lagMax, v.lateIDs, v.watermark, v.in, v.out} {
		for _, id := range l {
			if !contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// metric is the metric's own name: what follows the operator's name.
func metric(id string) string {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// sourceOperator: an operator metric of a source (Flink names source
// operators "Source: …", escaped "Source__…").
func sourceOperator(id string) bool { return strings.HasPrefix(id, "Source__") }

// sinkOperator: an operator metric of a sink — "Sink: …" (SinkFunction) or
// "…: Writer" (Sink V2), escaped.
func sinkOperator(id string) bool {
	op, _, ok := strings.Cut(id, ".")
	return ok && (strings.HasPrefix(op, "Sink__") || strings.HasSuffix(op, "__Writer"))
}

// ObserveNames takes a vertex's metric names (the answer without get=).
func (t *Tracker) ObserveNames(jobID, vertexID string, names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.vertex(jobID, vertexID)
	if v == nil {
		return
	}
	v.listed, v.names = t.clock(), len(names)
	v.pending, v.lagMax, v.lateIDs, v.watermark, v.in, v.out = nil, nil, nil, nil, nil, nil
	var taskOut, taskWM, srcOut, srcWM, sinkIn []string
	for _, id := range names {
		switch m := metric(id); {
		case m == "pendingRecords":
			v.pending = append(v.pending, id)
		case m == "records-lag-max":
			v.lagMax = append(v.lagMax, id)
		case m == "numLateRecordsDropped":
			v.lateIDs = append(v.lateIDs, id)
		case id == "currentInputWatermark":
			taskWM = append(taskWM, id)
		case id == "numRecordsOutPerSecond":
			taskOut = append(taskOut, id)
		case sourceOperator(id) && m == "numRecordsOutPerSecond":
			srcOut = append(srcOut, id)
		case sourceOperator(id) && m == "currentOutputWatermark":
			srcWM = append(srcWM, id)
		case sinkOperator(id) && m == "numRecordsInPerSecond":
			sinkIn = append(sinkIn, id)
		}
	}
	if v.sink {
		v.watermark = taskWM
	}
	if v.source && v.sink {
		// The whole job is one chain: no records cross a vertex boundary,
		// so /jobs/:id's counts stay 0. What the source operators emit and
		// the sink operators take in, from Flink's one-minute rates; the
		// watermark is the source's own.
		v.in = srcOut
		if len(v.in) == 0 {
			v.in = taskOut
		}
		v.out = sinkIn
		if len(v.out) == 0 {
			v.out = v.in
		}
		v.watermark = srcWM
	}
	if v.names == 0 || v.lacking() {
		v.relists++
	} else {
		v.relists = 0
	}
}

func (t *Tracker) vertex(jobID, vertexID string) *vertex {
	j := t.jobs[jobID]
	if j == nil {
		return nil
	}
	for _, v := range j.vertices {
		if v.id == vertexID {
			return v
		}
	}
	return nil
}

// ObserveValues takes the aggregated values of a vertex, read now.
func (t *Tracker) ObserveValues(jobID, vertexID string, aggs []Agg) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.vertex(jobID, vertexID)
	if v == nil {
		return
	}
	j := t.jobs[jobID]
	now := t.clock()
	sum := func(ids []string) (float64, bool) {
		total, ok := 0.0, false
		for _, a := range aggs {
			if a.HasSum && contains(ids, a.ID) && !math.IsNaN(a.Sum) {
				total += a.Sum
				ok = true
			}
		}
		return total, ok
	}
	v.read = true
	v.pendingV, v.hasPending = sum(v.pending)
	v.lagMaxV, v.hasLagMax = sum(v.lagMax)
	v.inV, v.hasIn = sum(v.in)
	v.outV, v.hasOut = sum(v.out)
	if late, ok := sum(v.lateIDs); ok {
		// Flink's counters restart with the tasks: count what they added.
		d := late - v.lateRaw
		if !v.hasLateV || d < 0 {
			d = late
		}
		j.late += d
		j.hasLate = true
		v.lateRaw, v.hasLateV = late, true
	}
	wm := math.Inf(1)
	for _, a := range aggs {
		if a.HasMin && contains(v.watermark, a.ID) && a.Min < wm {
			wm = a.Min
		}
	}
	if math.IsInf(wm, 1) {
		wm = noWatermark
	}
	v.wm, v.wmAt = wm, now
}

// ObserveCounts takes the vertices' cumulative record counts of one
// /jobs/:id answer: what the sources wrote (records in) and what the sinks
// read (records out). A vertex that is both source and sink has neither;
// its rates come from its metrics.
func (t *Tracker) ObserveCounts(jobID string, counts []VertexCounts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.jobs[jobID]
	if j == nil {
		return
	}
	var in, out int64
	var hasIn, hasOut bool
	for _, c := range counts {
		for _, v := range j.vertices {
			if v.id != c.ID || (v.source && v.sink) {
				continue
			}
			if v.source {
				in, hasIn = in+c.Written, true
			}
			if v.sink {
				out, hasOut = out+c.Read, true
			}
		}
	}
	now := t.clock()
	if hasIn {
		j.in.add(now, in)
	}
	if hasOut {
		j.out.add(now, out)
	}
}

// Job returns the job's progress as last read; false when nothing was read.
func (t *Tracker) Job(jobID string) (Progress, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j := t.jobs[jobID]
	if j == nil {
		return Progress{}, false
	}
	now := t.clock()
	var p Progress
	read := false
	if !j.chained {
		p.RecordsIn, p.HasRecordsIn = j.in.rate(now)
		p.RecordsOut, p.HasRecordsOut = j.out.rate(now)
		read = p.HasRecordsIn || p.HasRecordsOut
	}
	var lagMax float64
	var hasLagMax bool
	wm, wmAt := math.Inf(1), time.Time{}
	for _, v := range j.vertices {
		if !v.read {
			continue
		}
		read = true
		if v.hasIn {
			p.RecordsIn += v.inV
			p.HasRecordsIn = true
		}
		if v.hasOut {
			p.RecordsOut += v.outV
			p.HasRecordsOut = true
		}
		if v.hasPending {
			p.Pending += v.pendingV
			p.HasPending = true
		}
		if v.hasLagMax {
			lagMax += v.lagMaxV
			hasLagMax = true
		}
		if v.sink && v.wm > noWatermark && v.wm < wm {
			wm, wmAt = v.wm, v.wmAt
		}
	}
	if !p.HasPending && hasLagMax {
		p.Pending, p.HasPending = lagMax, true
	}
	if !math.IsInf(wm, 1) {
		lag := wmAt.Sub(time.UnixMilli(int64(wm)))
		if lag < 0 {
			lag = 0 // the clocks of the agent and the TaskManagers differ
		}
		p.WatermarkLag, p.HasWatermark = lag, true
	}
	p.LateDropped, p.HasLate = j.late, j.hasLate
	return p, read
}

// Retain forgets the jobs not listed.
func (t *Tracker) Retain(jobIDs []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := make(map[string]bool, len(jobIDs))
	for _, id := range jobIDs {
		keep[id] = true
	}
	for id := range t.jobs {
		if !keep[id] {
			delete(t.jobs, id)
		}
	}
}
