package pager

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JobsFromGatherer reads the jobs' checkpoint state from the agent's own
// metrics (checkpointwatch's flink_checkpoint_consecutive_failures,
// flink_checkpoint_stuck and flink_checkpoint_oldest_in_progress_age_seconds,
// by job_name), so that paging sees exactly what dashboards and alert rules
// see. lastFailure, when set, supplies the latest failure message of a job
// (logscan.Scanner.LastFailure). A gather error yields no jobs: conditions
// then look clear, which resolves nothing that is still failing, because
// the next successful evaluation triggers again with the same dedup_key.
func JobsFromGatherer(g prometheus.Gatherer, lastFailure func(job string) string) func() []JobStatus {
	return func() []JobStatus {
		mfs, err := g.Gather()
		if err != nil && len(mfs) == 0 {
			return nil
		}
		by := map[string]*JobStatus{}
		get := func(name string) *JobStatus {
			j := by[name]
			if j == nil {
				j = &JobStatus{JobName: name}
				by[name] = j
			}
			return j
		}
		for _, mf := range mfs {
			var set func(*JobStatus, float64)
			switch mf.GetName() {
			case "flink_checkpoint_consecutive_failures":
				set = func(j *JobStatus, v float64) { j.ConsecutiveFailures = int(v) }
			case "flink_checkpoint_stuck":
				set = func(j *JobStatus, v float64) { j.Stuck = v >= 1 }
			case "flink_checkpoint_oldest_in_progress_age_seconds":
				set = func(j *JobStatus, v float64) { j.InProgressFor = time.Duration(v * float64(time.Second)) }
			default:
				continue
			}
			for _, m := range mf.GetMetric() {
				var name string
				for _, l := range m.GetLabel() {
					if l.GetName() == "job_name" {
						name = l.GetValue()
					}
				}
				if name == "" {
					continue
				}
				set(get(name), m.GetGauge().GetValue())
			}
		}
		out := make([]JobStatus, 0, len(by))
		for _, j := range by {
			if lastFailure != nil && j.ConsecutiveFailures > 0 {
				j.LastFailure = lastFailure(j.JobName)
			}
			out = append(out, *j)
		}
		return out
	}
}
