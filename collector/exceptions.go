package collector

import (
	"errors"
	"strconv"
	"strings"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/excerpt"
	"github.com/flink-agent/flink-agent/internal/labelvalue"
)

// /jobs/:id/exceptions?maxExceptions=N is read only when a job restarted:
// the entries of Flink's exception history newer than the last look become
// JobException events (flink_job_exceptions_total, a Datadog event with the
// root cause). Flink 2.x answers only exceptionHistory; 1.x also has the
// deprecated root-exception, read when the history is empty.

// maxExceptions is how many history entries are asked for: enough for the
// restarts between two scrapes, small enough to keep the answer small (each
// entry carries a whole stack trace).
const maxExceptions = 5

var exceptionsPath = "/exceptions?maxExceptions=" + strconv.Itoa(maxExceptions)

type exceptionsBody struct {
	History struct {
		Entries []exceptionEntry `json:"entries"`
	} `json:"exceptionHistory"`
	Root      string  `json:"root-exception"` // until 2.0
	Timestamp integer `json:"timestamp"`
}

type exceptionEntry struct {
	Name          string            `json:"exceptionName"`
	Stacktrace    string            `json:"stacktrace"`
	Timestamp     integer           `json:"timestamp"`
	TaskName      string            `json:"taskName"`
	Endpoint      string            `json:"endpoint"` // 1.19+
	Location      string            `json:"location"` // until 1.20
	FailureLabels map[string]string `json:"failureLabels"`
}

const (
	// maxCause bounds the exception line in the restart log and event.
	maxCause = 500
	// rootCauseFrames is how many stack frames of the root cause are kept.
	rootCauseFrames = 5
)

// newExceptions returns the entries newer than since (JobManager ms),
// newest first, and the newest timestamp seen.
func (b *exceptionsBody) newExceptions(since int64) ([]checkpointwatch.JobException, int64) {
	entries := b.History.Entries
	if len(entries) == 0 && strings.TrimSpace(b.Root) != "" {
		// Before the exception history (and beside it until 2.0): the
		// latest root exception only.
		entries = []exceptionEntry{{Name: className(b.Root), Stacktrace: b.Root, Timestamp: b.Timestamp}}
	}
	newest := since
	var out []checkpointwatch.JobException
	for i := range entries {
		e := &entries[i]
		ts := e.Timestamp.or(0)
		if ts <= since {
			continue
		}
		newest = max(newest, ts)
		out = append(out, e.toEvent())
	}
	return out, newest
}

func (e *exceptionEntry) toEvent() checkpointwatch.JobException {
	name := strings.TrimSpace(e.Name)
	if name == "" {
		name = className(e.Stacktrace)
	}
	where := e.Endpoint
	if where == "" {
		where = e.Location
	}
	x := checkpointwatch.JobException{
		Class:         name,
		Message:       excerpt.Bytes(excerpt.FirstLine(e.Stacktrace), maxCause),
		RootCause:     rootCause(e.Stacktrace),
		Time:          epochMillis(e.Timestamp),
		Task:          e.TaskName,
		Location:      where,
		FailureLabels: e.FailureLabels,
	}
	if x.Message == "" {
		x.Message = name
	}
	return x
}

// className is the exception class of a stack trace's first line
// ("java.io.IOException: message"); "unknown" when there is none.
func className(trace string) string {
	l := excerpt.FirstLine(trace)
	if i := strings.IndexByte(l, ':'); i >= 0 {
		l = l[:i]
	}
	if l == "" || strings.ContainsAny(l, " \t") {
		return "unknown"
	}
	return l
}

// rootCause is the innermost "Caused by:" of a stack trace with its first
// frames, "" when the exception has no cause. Causes that crossed an RPC
// read "SerializedThrowable: <original class>: …"; they are kept as Flink
// wrote them.
func rootCause(trace string) string {
	lines := strings.Split(trace, "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "Caused by: ") {
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	out := []string{strings.TrimSpace(lines[last])}
	for _, l := range lines[last+1:] {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "at ") || len(out) > rootCauseFrames {
			break
		}
		out = append(out, "\t"+t)
	}
	return excerpt.Bytes(strings.Join(out, "\n"), 2*maxCause)
}

// restarted reads the exceptions that are new since the last look and
// reports the restart.
func (s *scrape) restarted(j *jobOverview, js *jobState, n int64) {
	var b exceptionsBody
	var exs []checkpointwatch.JobException
	if err := s.c.c.get(s.ctx, routeExceptions, "/jobs/"+j.ID+exceptionsPath, &b); err != nil {
		if !errors.Is(err, errNotFound) {
			s.fail(err)
		}
	} else {
		exs, js.excSince = b.newExceptions(js.excSince)
	}
	for i := range exs {
		exs[i].Label = s.c.exceptionLabel(exs[i].Class)
	}
	cause := ""
	if len(exs) > 0 {
		e := exs[0]
		cause = e.Message
		if e.Task != "" {
			cause += " (task " + e.Task + " at " + e.Location + ")"
		}
	}
	s.c.log.Warn("Flink job restarted", "job_name", j.Name, "job_id", j.ID, "restarts", n, "cause", cause,
		"new_exceptions", len(exs))
	s.c.watch.Emit(checkpointwatch.JobRestarted{Job: checkpointwatch.JobRef{ID: j.ID, Name: j.Name}, Restarts: n, Cause: cause,
		Exceptions: exs})
}

// exceptionLabel bounds the exception label: the first
// MaxExceptionClasses classes keep their (capped) name, later ones are
// "other". Jobs are read concurrently.
func (c *Collector) exceptionLabel(class string) string {
	class = labelvalue.Cap(class)
	c.excMu.Lock()
	defer c.excMu.Unlock()
	if c.excClasses[class] {
		return class
	}
	if len(c.excClasses) >= checkpointwatch.MaxExceptionClasses {
		return "other"
	}
	c.excClasses[class] = true
	return class
}
