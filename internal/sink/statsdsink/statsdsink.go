// Package statsdsink turns checkpointwatch's events into DogStatsD counts,
// gauges, distributions and the flink.checkpoint.can_complete service
// check.
package statsdsink

import (
	"fmt"
	"math"

	"github.com/DataDog/datadog-go/v5/statsd"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// Sink sends to a DogStatsD client (buffered: Handle does not block).
type Sink struct{ sd *dogstatsd.Client }

// New returns the sink; a nil or disabled client sends nothing.
func New(sd *dogstatsd.Client) Sink { return Sink{sd: sd} }

func jobTag(j cw.JobRef) string { return dogstatsd.Tag("job_name", j.Name) }

func kindTag(savepoint bool) string { return dogstatsd.Tag("kind", cw.Kind(savepoint)) }

// Handle sends what an event changes.
func (s Sink) Handle(ev cw.Event) {
	sd := s.sd
	if !sd.Enabled() {
		return
	}
	switch e := ev.(type) {
	case cw.CheckpointCompleted:
		kt := kindTag(e.Checkpoint.Savepoint)
		sd.Count(dogstatsd.CheckpointCompleted, 1, jobTag(e.Job), kt)
		if d := e.Checkpoint.Duration; d >= 0 {
			sd.Distribution(dogstatsd.CheckpointDuration, d.Seconds(), jobTag(e.Job), kt)
		}
	case cw.CheckpointFailed:
		sd.Count(dogstatsd.CheckpointFailed, 1, jobTag(e.Job), kindTag(e.Checkpoint.Savepoint), dogstatsd.Tag("reason", string(e.Reason)))
		if e.Throttled {
			sd.Count(dogstatsd.CheckpointFailedS3Throttled, 1, jobTag(e.Job))
		}
	case cw.ThrottlingAttributed:
		sd.Count(dogstatsd.CheckpointFailedS3Throttled, 1, jobTag(e.Job))
	case cw.CheckpointsUncounted:
		kt := kindTag(false)
		if e.Status == cw.Completed {
			sd.Count(dogstatsd.CheckpointCompleted, e.N, jobTag(e.Job), kt)
		} else {
			sd.Count(dogstatsd.CheckpointFailed, e.N, jobTag(e.Job), kt, dogstatsd.Tag("reason", string(cw.ReasonOther)))
		}
	case cw.LatestCompleted:
		sd.Gauge(dogstatsd.CheckpointSize, float64(e.Checkpoint.StateSize), jobTag(e.Job), dogstatsd.Tag("type", "full"))
		if e.Checkpoint.CheckpointedSize >= 0 {
			sd.Gauge(dogstatsd.CheckpointSize, float64(e.Checkpoint.CheckpointedSize), jobTag(e.Job), dogstatsd.Tag("type", "incremental"))
		}
	case cw.JobRestarted:
		sd.Count(dogstatsd.JobRestarts, e.Restarts, jobTag(e.Job))
		for _, x := range e.Exceptions {
			sd.Count(dogstatsd.JobExceptions, 1, jobTag(e.Job), dogstatsd.Tag("exception", x.Label))
		}
	case cw.JobState:
		s.state(e)
	}
}

func (s Sink) state(e cw.JobState) {
	sd, jt := s.sd, jobTag(e.Job)
	sd.Gauge(dogstatsd.CheckpointConsecutiveFailed, float64(e.Consecutive), jt)
	if e.HasConfig && e.Config.Enabled {
		sd.Gauge(dogstatsd.CheckpointFailuresUntilFail, float64(e.Until), jt)
		if e.Config.Interval > 0 {
			sd.Gauge(dogstatsd.CheckpointInterval, e.Config.Interval.Seconds(), jt)
		}
		sd.Gauge(dogstatsd.CheckpointTimeout, e.Config.Timeout.Seconds(), jt)
	}
	sd.Gauge(dogstatsd.CheckpointInProgress, float64(e.InProgress), jt)
	sd.Gauge(dogstatsd.CheckpointOldestInProgress, e.Oldest.Seconds(), jt)
	sd.Gauge(dogstatsd.CheckpointStuck, b2f(e.Stuck), jt)
	if !e.LastCompleted.IsZero() {
		sd.Gauge(dogstatsd.CheckpointLastCompletedAge, math.Max(0, e.At.Sub(e.LastCompleted).Seconds()), jt)
	}
	sd.ServiceCheck(serviceCheck(e))
}

// serviceCheck is flink.checkpoint.can_complete: CRITICAL while a
// checkpoint is stuck or the next counted failure fails the job after
// failures already began, WARNING while failures accumulate, OK otherwise.
func serviceCheck(e cw.JobState) *statsd.ServiceCheck {
	st, msg := statsd.Ok, "checkpoints complete"
	switch {
	case e.Stuck:
		st, msg = statsd.Critical, fmt.Sprintf("a checkpoint is in progress for longer than %.0f%% of the timeout", e.StuckRatio*100)
	case e.Consecutive > 0 && e.Until >= 0 && e.Until <= 1:
		st, msg = statsd.Critical, fmt.Sprintf("%d consecutive checkpoint failures; Flink fails the job after %d more", e.Consecutive, e.Until)
	case e.Consecutive > 0:
		st, msg = statsd.Warn, fmt.Sprintf("%d consecutive checkpoint failures", e.Consecutive)
	}
	return &statsd.ServiceCheck{
		Name:      dogstatsd.ServiceCheckCanComplete,
		Status:    st,
		Timestamp: e.At,
		Message:   msg,
		Tags:      []string{dogstatsd.Tag("job_name", e.Job.Name)},
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
