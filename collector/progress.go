package collector

import (
	"errors"
	"net/url"
	"strings"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/progress"
)

// Is a running job making progress? Records in and out per second come
// from the cumulative counts of the /jobs/:id answer the scrape reads
// anyway; backlog, watermarks and late records from at most one aggregated
// /jobs/:id/vertices/:vid/subtasks/metrics request per running job and
// scrape, the job's vertices of interest taking turns (package progress).

type jobProgress struct {
	name string
	p    progress.Progress
}

// progress feeds the job's tracker and makes the one request it plans.
func (s *scrape) progress(j *jobOverview, d *jobDetailsBody) {
	if d.State != "RUNNING" || len(d.Plan.Nodes) == 0 {
		return // restarting tasks report nothing worth reading
	}
	t := s.c.progress
	vs := make([]progress.Vertex, 0, len(d.Plan.Nodes))
	for _, n := range d.Plan.Nodes {
		v := progress.Vertex{ID: n.ID}
		for _, in := range n.Inputs {
			v.Inputs = append(v.Inputs, in.ID)
		}
		vs = append(vs, v)
	}
	req, ok := t.Plan(j.ID, vs)
	counts := make([]progress.VertexCounts, 0, len(d.Vertices))
	for _, v := range d.Vertices {
		if v.Metrics.ReadRecords.OK && v.Metrics.WriteRecords.OK {
			counts = append(counts, progress.VertexCounts{ID: v.ID, Read: v.Metrics.ReadRecords.V, Written: v.Metrics.WriteRecords.V})
		}
	}
	t.ObserveCounts(j.ID, counts)
	if ok {
		s.subtaskMetrics(j.ID, req)
	}
	if p, ok := t.Job(j.ID); ok {
		s.mu.Lock()
		s.snap.progress = append(s.snap.progress, jobProgress{name: j.Name, p: p})
		s.mu.Unlock()
	}
}

// subtaskMetrics makes the planned request: a vertex's metric names, or
// the aggregated values of some of them.
func (s *scrape) subtaskMetrics(jobID string, req progress.Request) {
	path := "/jobs/" + jobID + "/vertices/" + req.Vertex + "/subtasks/metrics"
	if !req.List {
		// Metric ids are Flink's escaped names: no comma inside one.
		path += "?get=" + url.QueryEscape(strings.Join(req.IDs, ",")) + "&agg=min,max,sum"
	}
	var body []metricValue
	if err := s.c.c.get(s.ctx, routeSubtasks, path, &body); err != nil {
		switch {
		case !errors.Is(err, errNotFound):
			s.fail(err)
		case req.List:
			// The job or vertex just went away (or this Flink serves no
			// subtask metrics): an empty list, asked again with backoff,
			// not at every scrape.
			s.c.progress.ObserveNames(jobID, req.Vertex, nil)
		}
		return
	}
	if req.List {
		names := make([]string, 0, len(body))
		for _, m := range body {
			names = append(names, m.ID)
		}
		s.c.progress.ObserveNames(jobID, req.Vertex, names)
		return
	}
	aggs := make([]progress.Agg, 0, len(body))
	for _, m := range body {
		aggs = append(aggs, progress.Agg{ID: m.ID, Min: m.Min.V, HasMin: m.Min.OK, Max: m.Max.V, HasMax: m.Max.OK,
			Sum: m.Sum.V, HasSum: m.Sum.OK})
	}
	s.c.progress.ObserveValues(jobID, req.Vertex, aggs)
}

// emitProgress sends the jobs' progress to DogStatsD: gauges, and the late
// records dropped since the previous scrape as a count.
func (s *scrape) emitProgress() {
	sd := s.c.sd
	for _, jp := range s.snap.progress {
		t, p := dogstatsd.Tag("job_name", jp.name), jp.p
		if p.HasRecordsIn {
			sd.Gauge(dogstatsd.JobRecordsIn, p.RecordsIn, t)
		}
		if p.HasRecordsOut {
			sd.Gauge(dogstatsd.JobRecordsOut, p.RecordsOut, t)
		}
		if p.HasPending {
			sd.Gauge(dogstatsd.JobSourcePending, p.Pending, t)
		}
		if p.HasWatermark {
			sd.Gauge(dogstatsd.JobWatermarkLag, p.WatermarkLag.Seconds(), t)
		}
		if p.HasLate {
			prev, seen := s.c.lateSent[jp.name]
			s.c.lateSent[jp.name] = p.LateDropped
			if seen && p.LateDropped > prev {
				sd.Count(dogstatsd.JobLateRecordsDropped, int64(p.LateDropped-prev), t)
			}
		}
	}
}
