package collector

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flink-agent/flink-agent/checkpointwatch"
)

// /jobs/:id/checkpoints every scrape, /jobs/:id/checkpoints/config once per
// job id (404: checkpointing disabled), and
// /jobs/:id/checkpoints/details/:cid for new failed or slow checkpoints and
// those a sink sampled, …/subtasks/:vid for the slowest vertices of the
// ones whose subtasks it wants (within Options.DetailBudget).

type countsBody struct {
	Restored   integer `json:"restored"`
	Total      integer `json:"total"`
	InProgress integer `json:"in_progress"`
	Completed  integer `json:"completed"`
	Failed     integer `json:"failed"`
}

type checkpointsBody struct {
	Counts *countsBody `json:"counts"`
	Latest struct {
		Completed *checkpointEntry `json:"completed"`
	} `json:"latest"`
	History []checkpointEntry `json:"history"`
}

// checkpointEntry is one history entry. The type discriminator is
// "className" from Flink 1.15 and "@class" before; status says the same and
// is read first. Enumerations decode without allocating: a scrape reads
// every history entry of every job.
type checkpointEntry struct {
	ClassName        statusField `json:"className"`
	Class            statusField `json:"@class"`
	ID               integer     `json:"id"`
	Status           statusField `json:"status"`
	IsSavepoint      bool        `json:"is_savepoint"`
	CheckpointType   typeField   `json:"checkpoint_type"`
	Trigger          integer     `json:"trigger_timestamp"`
	LatestAck        integer     `json:"latest_ack_timestamp"`
	StateSize        integer     `json:"state_size"`
	CheckpointedSize integer     `json:"checkpointed_size"` // absent before 1.15
	Duration         integer     `json:"end_to_end_duration"`
	FailureTimestamp integer     `json:"failure_timestamp"`
	FailureMessage   string      `json:"failure_message"`
}

// statusField is COMPLETED/FAILED/IN_PROGRESS, or the discriminator's
// completed/failed/in_progress.
type statusField checkpointwatch.Status

func (s *statusField) UnmarshalJSON(b []byte) error {
	b = unquote(b)
	switch {
	case bytes.EqualFold(b, []byte("COMPLETED")):
		*s = statusField(checkpointwatch.Completed)
	case bytes.EqualFold(b, []byte("FAILED")):
		*s = statusField(checkpointwatch.Failed)
	case bytes.EqualFold(b, []byte("IN_PROGRESS")):
		*s = statusField(checkpointwatch.InProgress)
	default:
		*s = statusField(checkpointwatch.StatusUnknown)
	}
	return nil
}

// typeField is checkpoint_type: true for SAVEPOINT and SYNC_SAVEPOINT.
type typeField bool

func (t *typeField) UnmarshalJSON(b []byte) error {
	*t = typeField(bytes.Contains(b, []byte("SAVEPOINT")))
	return nil
}

func (e *checkpointEntry) status() checkpointwatch.Status {
	for _, s := range []statusField{e.Status, e.ClassName, e.Class} {
		if s != statusField(checkpointwatch.StatusUnknown) {
			return checkpointwatch.Status(s)
		}
	}
	return checkpointwatch.StatusUnknown
}

func (e *checkpointEntry) toWatch() checkpointwatch.Checkpoint {
	cp := checkpointwatch.Checkpoint{
		ID:               e.ID.V,
		Status:           e.status(),
		Savepoint:        e.IsSavepoint || bool(e.CheckpointType),
		Trigger:          epochMillis(e.Trigger),
		Ack:              epochMillis(e.LatestAck),
		Failure:          epochMillis(e.FailureTimestamp),
		Duration:         -1,
		StateSize:        e.StateSize.or(0),
		CheckpointedSize: e.CheckpointedSize.or(-1),
		FailureMessage:   e.FailureMessage,
	}
	if d, ok := millis(e.Duration.V); ok && e.Duration.OK {
		cp.Duration = d
	}
	return cp
}

type checkpointConfigBody struct {
	Interval  integer `json:"interval"`
	Timeout   integer `json:"timeout"`
	Tolerable integer `json:"tolerable_failed_checkpoints"`
}

var errNoCounts = errors.New(`no "counts" object`)

// checkpointsOf reads the job's checkpoint statistics into the watch and
// returns Flink's restore count.
func (s *scrape) checkpointsOf(j *jobOverview, js *jobState) (restored int64, ok bool) {
	if j.State == "INITIALIZING" {
		return 0, false // no execution graph yet
	}
	if !js.cfgDone {
		s.checkpointConfig(j.ID, js)
	}
	if js.cpDisabled {
		return 0, false
	}
	return s.checkpoints(j, js, true)
}

// finalCheckpoints reads a job's statistics once more after it stopped:
// its last checkpoints happened while it was running.
func (s *scrape) finalCheckpoints(j *jobOverview, js *jobState) {
	if !js.cpDisabled {
		s.checkpoints(j, js, false)
	}
}

func (s *scrape) checkpointConfig(id string, js *jobState) {
	var b checkpointConfigBody
	err := s.c.c.get(s.ctx, routeCPConfig, "/jobs/"+id+"/checkpoints/config", &b)
	if errors.Is(err, errNotFound) {
		js.cfgDone, js.cpDisabled = true, true
		s.c.watch.SetConfig(id, checkpointwatch.Config{Enabled: false})
		return
	}
	if err != nil {
		s.fail(err) // read again next scrape
		return
	}
	cfg := checkpointwatch.Config{Enabled: true, Tolerable: int(b.Tolerable.or(0))}
	// Long.MAX_VALUE (no periodic checkpoints) does not fit a Duration:
	// millis refuses it and the interval stays 0.
	if iv, ok := millis(b.Interval.V); ok && b.Interval.OK && b.Interval.V > 0 {
		cfg.Interval = iv
	}
	if to, ok := millis(b.Timeout.V); ok && b.Timeout.OK {
		cfg.Timeout = to
	}
	s.c.watch.SetConfig(id, cfg)
	js.cfgDone = true
}

func (s *scrape) checkpoints(j *jobOverview, js *jobState, details bool) (int64, bool) {
	var b checkpointsBody
	err := s.c.c.get(s.ctx, routeCheckpoints, "/jobs/"+j.ID+"/checkpoints", &b)
	if errors.Is(err, errNotFound) {
		return 0, false // checkpointing not enabled, or the job just went away
	}
	if err != nil {
		s.fail(err)
		return 0, false
	}
	if b.Counts == nil {
		s.fail(s.c.c.markBad(routeCheckpoints, errNoCounts))
		return 0, false
	}
	counts, valid := s.validCounts(b.Counts, js, epochMillis(j.Start), time.Now())
	if !valid {
		return 0, false // counted; the next answer may be sane again
	}
	snap := checkpointwatch.Snapshot{Counts: counts, History: s.c.scratch()}
	for i := range b.History {
		e := &b.History[i]
		if !e.ID.OK || e.status() == checkpointwatch.StatusUnknown || !s.validEntry(e) {
			continue
		}
		snap.History = append(snap.History, e.toWatch())
	}
	defer s.c.cpScratch.Put(&snap.History)
	if lc := b.Latest.Completed; lc != nil && lc.ID.OK && s.validEntry(lc) {
		cp := lc.toWatch()
		cp.Status = checkpointwatch.Completed
		snap.LatestCompleted = &cp
	}
	o := checkpointwatch.ObserveOptions{Baseline: js.preexisting, BaselineSince: s.c.started, Details: details, Sample: s.c.opts.SampleDetails}
	wanted := s.c.watch.ObserveREST(checkpointwatch.Job{ID: j.ID, Name: j.Name, Start: epochMillis(j.Start)}, snap, o)
	s.mu.Lock()
	for _, req := range wanted {
		s.wanted = append(s.wanted, detailWant{req: req, js: js})
	}
	s.mu.Unlock()
	return snap.Counts.Restored, true
}

// detailWant is a details request of the watch and the job it is about.
type detailWant struct {
	req checkpointwatch.DetailsRequest
	js  *jobState
}

// errDetailBudget answers sampled details that did not fit the scrape's
// DetailBudget.
var errDetailBudget = errors.New("not fetched: traces.max_detail_requests_per_scrape reached")

// subtaskVertices is how many vertices' subtasks are read per checkpoint
// whose subtasks a sink wants: the ones that did not acknowledge, then the
// slowest.
const subtaskVertices = 2

// fetchDetails makes the detail requests the watch asked for during this
// scrape, after every job was observed, outside the watch's lock: a slow
// answer holds up this scrape only, never the log reader. New failures'
// and slow checkpoints' details are always read; the ones only a sink
// sampled, and subtask details, share Options.DetailBudget in this order:
// the details of checkpoints whose subtasks are wanted (failed, slow), the
// subtasks of their first vertex, the other sampled details, the subtasks
// of their second vertex.
func (s *scrape) fetchDetails() {
	budget := s.c.opts.DetailBudget
	spend := func() bool {
		if budget <= 0 {
			return false
		}
		budget--
		return true
	}
	got := make([]checkpointwatch.CheckpointDetails, len(s.wanted))
	fetch := func(subtasks bool) {
		for i, w := range s.wanted {
			if w.req.Subtasks != subtasks {
				continue
			}
			if w.req.Why == checkpointwatch.DetailsSampled && !spend() {
				got[i] = checkpointwatch.CheckpointDetails{Job: w.req.Job, CheckpointID: w.req.Checkpoint.ID,
					Why: w.req.Why, Err: errDetailBudget}
				continue
			}
			got[i] = s.details(w.req, w.js)
		}
	}
	orders := make([][]int, len(s.wanted))
	round := func(r int) {
		for i, w := range s.wanted {
			if w.req.Subtasks && got[i].Err == nil {
				if orders[i] == nil {
					orders[i] = subtaskOrder(got[i].Tasks)
				}
				if r < len(orders[i]) && spend() {
					s.subtasks(&got[i], orders[i][r])
				}
			}
		}
	}
	fetch(true)
	round(0)
	fetch(false)
	for r := 1; r < subtaskVertices; r++ {
		round(r)
	}
	for _, d := range got {
		s.c.watch.Emit(d)
	}
	s.wanted = nil
}

type checkpointDetailsBody struct {
	Status string                    `json:"status"`
	Tasks  map[string]taskCheckpoint `json:"tasks"`
}

type taskCheckpoint struct {
	Status           string  `json:"status"`
	Acked            integer `json:"num_acknowledged_subtasks"`
	Subtasks         integer `json:"num_subtasks"`
	Duration         integer `json:"end_to_end_duration"`
	LatestAck        integer `json:"latest_ack_timestamp"`
	StateSize        integer `json:"state_size"`
	CheckpointedSize integer `json:"checkpointed_size"`
}

// subtasksBody is /jobs/:id/checkpoints/details/:cid/subtasks/:vid. A
// subtask that did not acknowledge has only index and status
// ("pending_or_failed").
type subtasksBody struct {
	Subtasks []subtaskCheckpoint `json:"subtasks"`
}

type subtaskCheckpoint struct {
	Index            integer `json:"index"`
	Status           string  `json:"status"`
	Ack              integer `json:"ack_timestamp"`
	Duration         integer `json:"end_to_end_duration"`
	StateSize        integer `json:"state_size"`
	CheckpointedSize integer `json:"checkpointed_size"`
	Checkpoint       struct {
		Sync  integer `json:"sync"`
		Async integer `json:"async"`
	} `json:"checkpoint"`
	Alignment struct {
		Processed integer `json:"processed"`
		Persisted integer `json:"persisted"`
		Duration  integer `json:"duration"`
	} `json:"alignment"`
	StartDelay integer `json:"start_delay"`
	Unaligned  bool    `json:"unaligned_checkpoint"`
	Aborted    bool    `json:"aborted"`
}

// details fetches one checkpoint's per-vertex details, which the watch
// asked for: who did not acknowledge a failed one, who was slowest in a slow
// one. This is the one place checkpoint details are read; a sink that
// samples checkpoints (traces) gets them through the same request.
func (s *scrape) details(req checkpointwatch.DetailsRequest, js *jobState) checkpointwatch.CheckpointDetails {
	cp := req.Checkpoint
	d := checkpointwatch.CheckpointDetails{Job: req.Job, CheckpointID: cp.ID, Why: req.Why}
	var b checkpointDetailsBody
	path := "/jobs/" + req.Job.ID + "/checkpoints/details/" + strconv.FormatInt(cp.ID, 10)
	if err := s.c.c.get(s.ctx, routeCPDetails, path, &b); err != nil {
		if !errors.Is(err, errNotFound) {
			s.fail(err)
		}
		s.c.log.Debug("checkpoint details unavailable", "job_id", req.Job.ID, "checkpoint_id", cp.ID, "err", err)
		d.Err = err
		return d
	}
	d.Tasks = tasksOf(&b, js.vertexNames)
	d.Summary = summarizeDetails(d.Tasks)
	if req.Why == checkpointwatch.DetailsSlow {
		s.c.log.Info("slow checkpoint", "job_name", req.Job.Name, "job_id", req.Job.ID, "checkpoint_id", cp.ID,
			"duration", cp.Duration, "details", d.Summary)
	}
	return d
}

func tasksOf(b *checkpointDetailsBody, names map[string]string) []checkpointwatch.TaskDetails {
	tasks := make([]checkpointwatch.TaskDetails, 0, len(b.Tasks))
	for id, t := range b.Tasks {
		n := names[id]
		if n == "" {
			n = id
		}
		td := checkpointwatch.TaskDetails{VertexID: id, Vertex: n, Acknowledged: t.Acked.or(0), Subtasks: t.Subtasks.or(0),
			Duration: duration(t.Duration), StateSize: t.StateSize.or(-1), CheckpointedSize: t.CheckpointedSize.or(-1),
			LatestAck: epochMillis(t.LatestAck)}
		tasks = append(tasks, td)
	}
	sort.Slice(tasks, func(a, c int) bool { return tasks[a].Vertex < tasks[c].Vertex })
	return tasks
}

func summarizeDetails(tasks []checkpointwatch.TaskDetails) string {
	var pending []string
	for _, t := range tasks {
		if t.Acknowledged < t.Subtasks {
			pending = append(pending, fmt.Sprintf("%s (%d/%d subtasks)", t.Vertex, t.Acknowledged, t.Subtasks))
		}
	}
	if len(pending) > 0 {
		return "not acknowledged by: " + strings.Join(pending, ", ")
	}
	var slow *checkpointwatch.TaskDetails
	for i := range tasks {
		if slow == nil || tasks[i].Duration > slow.Duration {
			slow = &tasks[i]
		}
	}
	if slow == nil || slow.Duration < 0 {
		return ""
	}
	return fmt.Sprintf("slowest vertex: %s (%s)", slow.Vertex, slow.Duration.String())
}

// subtaskOrder is the order in which a checkpoint's vertices' subtasks are
// worth reading: the vertices that did not acknowledge, then the slowest.
func subtaskOrder(tasks []checkpointwatch.TaskDetails) []int {
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ta, tb := &tasks[order[a]], &tasks[order[b]]
		if pa, pb := ta.Acknowledged < ta.Subtasks, tb.Acknowledged < tb.Subtasks; pa != pb {
			return pa
		}
		return ta.Duration > tb.Duration
	})
	return order
}

// subtasks reads the subtask details of the checkpoint's i-th vertex.
func (s *scrape) subtasks(d *checkpointwatch.CheckpointDetails, i int) {
	t := &d.Tasks[i]
	var b subtasksBody
	path := "/jobs/" + d.Job.ID + "/checkpoints/details/" + strconv.FormatInt(d.CheckpointID, 10) + "/subtasks/" + t.VertexID
	if err := s.c.c.get(s.ctx, routeCPSubtasks, path, &b); err != nil {
		if !errors.Is(err, errNotFound) {
			s.fail(err)
		}
		s.c.log.Debug("checkpoint subtask details unavailable", "job_id", d.Job.ID, "checkpoint_id", d.CheckpointID,
			"vertex", t.Vertex, "err", err)
		return
	}
	t.SubtaskDetails = subtasksOf(&b)
}

func subtasksOf(b *subtasksBody) []checkpointwatch.SubtaskDetails {
	out := make([]checkpointwatch.SubtaskDetails, 0, len(b.Subtasks))
	for i := range b.Subtasks {
		st := &b.Subtasks[i]
		if !st.Index.OK {
			continue
		}
		out = append(out, checkpointwatch.SubtaskDetails{
			Index:              int(st.Index.V),
			Acknowledged:       strings.EqualFold(st.Status, "completed"),
			Ack:                epochMillis(st.Ack),
			Duration:           duration(st.Duration),
			StartDelay:         duration(st.StartDelay),
			Alignment:          duration(st.Alignment.Duration),
			Sync:               duration(st.Checkpoint.Sync),
			Async:              duration(st.Checkpoint.Async),
			StateSize:          st.StateSize.or(-1),
			CheckpointedSize:   st.CheckpointedSize.or(-1),
			AlignmentProcessed: st.Alignment.Processed.or(-1),
			AlignmentPersisted: st.Alignment.Persisted.or(-1),
			Unaligned:          st.Unaligned,
			Aborted:            st.Aborted,
		})
	}
	return out
}

// duration is a millisecond duration field; negative when absent or
// unknown (Flink writes -1).
func duration(n integer) time.Duration {
	if d, ok := millis(n.V); ok && n.OK {
		return d
	}
	return -1
}
