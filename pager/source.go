package pager

import "github.com/flink-agent/flink-agent/checkpointwatch"

// JobsFromWatch reads the jobs' checkpoint state from the watch, typed: the
// same state the flink_checkpoint_* series show, so paging sees what
// dashboards and alert rules see. lastFailure, when set, supplies a job's
// latest failure message as the log showed it (logscan.Scanner.LastFailure,
// by job name); the watch's own, from REST or the log, is the fallback.
func JobsFromWatch(statuses func() []checkpointwatch.JobStatus, lastFailure func(job string) string) func() []JobStatus {
	return func() []JobStatus {
		st := statuses()
		out := make([]JobStatus, 0, len(st))
		for _, s := range st {
			j := JobStatus{JobName: s.Job.Name, JobID: s.Job.ID, ConsecutiveFailures: s.Consecutive,
				Stuck: s.Stuck, InProgressFor: s.OldestInProgress}
			if j.ConsecutiveFailures > 0 {
				if lastFailure != nil {
					j.LastFailure = lastFailure(j.JobName)
				}
				if j.LastFailure == "" {
					j.LastFailure = s.LastFailure
				}
			}
			out = append(out, j)
		}
		return out
	}
}
