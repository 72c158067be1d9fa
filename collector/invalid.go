package collector

import (
	"time"

	"github.com/flink-agent/flink-agent/checkpointwatch"
)

// Values that cannot be true are dropped, never used, and counted in
// flink_rest_invalid_values_total{field}: a counter that would jump by
// 9.22e18 on one answer's -9223372036854775808 stays where it was.
//
// Flink's checkpoint counts never go negative, the in-progress, completed
// and failed ones add up to the total, and none grows faster than one a
// millisecond (Flink's shortest checkpoint interval is 10 ms) — since the
// last answer, or since the job started.

// countsAt are a job's last valid counts and when they were read.
type countsAt struct {
	c  checkpointwatch.Counts
	at time.Time
}

// slack is what a count may exceed the one-a-millisecond bound by: clocks
// of the JobManager and the agent differ.
const slack = 1000

// validCounts checks an answer's counts against what can be true; false
// means they are unusable (each bad field counted).
func (s *scrape) validCounts(b *countsBody, js *jobState, start time.Time, now time.Time) (checkpointwatch.Counts, bool) {
	c := checkpointwatch.Counts{Restored: b.Restored.or(0), Total: b.Total.or(0), InProgress: b.InProgress.or(0),
		Completed: b.Completed.or(0), Failed: b.Failed.or(0)}
	ok := true
	bad := func(field string) {
		s.c.c.invalidValue(field)
		ok = false
	}
	fields := []struct {
		name string
		v    int64
		last int64
	}{
		{"counts.restored", c.Restored, js.counts.c.Restored}, {"counts.total", c.Total, js.counts.c.Total},
		{"counts.in_progress", c.InProgress, -1}, {"counts.completed", c.Completed, js.counts.c.Completed},
		{"counts.failed", c.Failed, js.counts.c.Failed},
	}
	for _, f := range fields {
		switch {
		case f.v < 0:
			bad(f.name)
		case f.last >= 0 && !js.counts.at.IsZero() && f.v-f.last > now.Sub(js.counts.at).Milliseconds()+slack:
			bad(f.name) // further than time allows since the last answer
		case f.last >= 0 && js.counts.at.IsZero() && !start.IsZero() && start.Before(now) && f.v > now.Sub(start).Milliseconds()+slack:
			bad(f.name) // more than the job's age allows
		}
	}
	if ok && c.InProgress > c.Total-c.Completed-c.Failed && b.Total.OK && b.InProgress.OK {
		bad("counts.total") // the parts exceed the whole
	}
	if ok {
		js.counts = countsAt{c: c, at: now}
	}
	return c, ok
}

// validEntry drops a history entry's impossible values; false: the entry
// itself is unusable (no positive id).
func (s *scrape) validEntry(e *checkpointEntry) bool {
	if e.ID.OK && e.ID.V <= 0 {
		s.c.c.invalidValue("history.id")
		return false
	}
	for _, f := range []struct {
		name string
		v    *integer
	}{
		{"history.end_to_end_duration", &e.Duration}, {"history.state_size", &e.StateSize},
		{"history.checkpointed_size", &e.CheckpointedSize},
	} {
		if f.v.OK && f.v.V < 0 {
			s.c.c.invalidValue(f.name)
			*f.v = integer{}
		}
	}
	return true
}
