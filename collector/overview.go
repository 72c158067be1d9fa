package collector

import (
	"errors"
	"fmt"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/labelvalue"
)

// /jobs/overview: every job the JobManager lists, with its state. It is the
// scrape's anchor: when it fails, Flink is down for us.

type jobsOverviewBody struct {
	Jobs *[]jobOverview `json:"jobs"`
}

type jobOverview struct {
	ID    string  `json:"jid"`
	Name  string  `json:"name"`
	State string  `json:"state"`
	Start integer `json:"start-time"`
}

// isActive: the job has an execution graph that may still checkpoint.
// SUSPENDED is terminal for this JobManager (another one takes over).
func isActive(state string) bool {
	switch state {
	case "FINISHED", "CANCELED", "FAILED", "SUSPENDED":
		return false
	}
	return true
}

var errNoJobsField = errors.New(`no "jobs" list`)

func (s *scrape) jobsOverview() ([]jobOverview, error) {
	var body jobsOverviewBody
	if err := s.c.c.get(s.ctx, routeJobsOverview, "/jobs/overview", &body); err != nil {
		return nil, err
	}
	if body.Jobs == nil {
		return nil, s.c.c.markBad(routeJobsOverview, errNoJobsField)
	}
	jobs := *body.Jobs
	s.snap.jobsByState = make(map[string]int, len(jobStates))
	s.snap.jobs = make([]jobInfo, 0, len(jobs))
	valid := jobs[:0]
	drift := 0
	for _, j := range jobs {
		// The name is a label value, a tag and an event title from here on.
		j.Name = labelvalue.Cap(j.Name)
		if j.ID == "" || j.State == "" {
			// A job without id or state is schema drift, not a job.
			drift++
			continue
		}
		valid = append(valid, j)
		s.snap.jobsByState[j.State]++
		s.snap.jobs = append(s.snap.jobs, jobInfo{id: j.ID, name: j.Name, state: j.State})
	}
	if drift > 0 {
		s.fail(s.c.c.markBad(routeJobsOverview, fmt.Errorf("%d of %d jobs without jid or state", drift, len(jobs))))
	}
	return valid, nil
}

// emitStatsd sends the scrape's gauges to DogStatsD.
func (s *scrape) emitStatsd() {
	sd := s.c.sd
	if !sd.Enabled() {
		return
	}
	snap := s.snap
	if v := snap.cluster.taskManagers; v.OK {
		sd.Gauge(dogstatsd.ClusterTaskManagers, v.V)
	}
	if v := snap.cluster.slotsTotal; v.OK {
		sd.Gauge(dogstatsd.ClusterSlotsTotal, v.V)
	}
	if v := snap.cluster.slotsAvailable; v.OK {
		sd.Gauge(dogstatsd.ClusterSlotsAvailable, v.V)
	}
	for _, st := range jobStates {
		sd.Gauge(dogstatsd.ClusterJobs, float64(snap.jobsByState[st]), dogstatsd.Tag("state", st))
	}
	for _, j := range snap.jobs {
		if isActive(j.state) {
			sd.Gauge(dogstatsd.JobRunning, b2f(j.state == "RUNNING"),
				dogstatsd.Tag("job_name", j.name), dogstatsd.Tag("job_id", j.id), dogstatsd.Tag("state", j.state))
		}
	}
	for _, u := range snap.uptime {
		sd.Gauge(dogstatsd.JobUptime, u.value, dogstatsd.Tag("job_name", u.name))
	}
	for _, v := range snap.vertices {
		tags := []string{dogstatsd.Tag("job_name", v.job), dogstatsd.Tag("vertex", v.vertex)}
		if v.hasBP {
			sd.Gauge(dogstatsd.VertexBackpressureRatio, v.bp, tags...)
		}
		if v.hasBusy {
			sd.Gauge(dogstatsd.VertexBusyRatio, v.busy, tags...)
		}
	}
	s.emitProgress()
	for _, j := range snap.jvm {
		t := dogstatsd.Tag("flink_component", j.component)
		if j.used.OK {
			sd.Gauge(dogstatsd.JVMHeapUsed, j.used.V, t)
		}
		if j.max.OK {
			sd.Gauge(dogstatsd.JVMHeapMax, j.max.V, t)
		}
		if j.gcMS.OK {
			prev, seen := s.c.gcPrev[j.component]
			s.c.gcPrev[j.component] = j.gcMS.V
			if seen && j.gcMS.V > prev {
				sd.Count(dogstatsd.JVMGCTime, int64(j.gcMS.V-prev), t)
			}
		}
	}
}
