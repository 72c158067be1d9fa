package collector

import (
	"github.com/prometheus/client_golang/prometheus"
)

// snapshot is what one scrape saw: the gauges exported until the next
// scrape replaces it whole, so a job or vertex that disappears takes its
// series with it and /metrics never shows half a scrape.
type snapshot struct {
	cluster     clusterStats
	jobsByState map[string]int
	jobs        []jobInfo
	uptime      []nameValue // by job name
	vertices    []vertexRatio
	jvm         []jvmStats
	progress    []jobProgress
}

type clusterStats struct {
	taskManagers, slotsTotal, slotsAvailable number
}

type jobInfo struct{ id, name, state string }

type nameValue struct {
	name  string
	value float64
}

type vertexRatio struct {
	job, vertex    string
	bp, busy       float64
	hasBP, hasBusy bool
}

type jvmStats struct {
	component       string
	used, max, gcMS number
	usedMax         number // largest single TaskManager (taskmanager only)
}

// jobStates are Flink's JobStatus values, always exported so that a state
// going to zero is a value, not a vanished series.
var jobStates = []string{"CREATED", "INITIALIZING", "RUNNING", "FAILING", "FAILED", "CANCELLING", "CANCELED",
	"FINISHED", "RESTARTING", "SUSPENDED", "RECONCILING"}

type snapDescs struct {
	taskManagers, slotsTotal, slotsAvailable, jobs *prometheus.Desc
	jobInfo, uptime                                *prometheus.Desc
	backpressure, busy                             *prometheus.Desc
	recordsIn, recordsOut, pending, wmLag, late    *prometheus.Desc
	heapUsed, heapMax, gcTime, heapUsedMax         *prometheus.Desc
}

func newSnapDescs() snapDescs {
	jn := []string{"job_name"}
	comp := []string{"component"}
	return snapDescs{
		taskManagers:   prometheus.NewDesc("flink_cluster_taskmanagers", "Registered TaskManagers.", nil, nil),
		slotsTotal:     prometheus.NewDesc("flink_cluster_slots_total", "Task slots of all TaskManagers.", nil, nil),
		slotsAvailable: prometheus.NewDesc("flink_cluster_slots_available", "Free task slots.", nil, nil),
		jobs:           prometheus.NewDesc("flink_cluster_jobs", "Jobs the JobManager lists, by state.", []string{"state"}, nil),
		jobInfo:        prometheus.NewDesc("flink_job_info", "Jobs the JobManager lists (value 1).", []string{"job_id", "job_name", "state"}, nil),
		uptime:         prometheus.NewDesc("flink_job_uptime_seconds", "Time since the job last switched to RUNNING (0 while it is not running).", jn, nil),
		backpressure: prometheus.NewDesc("flink_vertex_backpressure_ratio",
			"Share of the vertex's subtask time spent back-pressured since the previous scrape.", []string{"job_name", "vertex"}, nil),
		busy: prometheus.NewDesc("flink_vertex_busy_ratio",
			"Share of the vertex's subtask time spent busy since the previous scrape.", []string{"job_name", "vertex"}, nil),
		recordsIn: prometheus.NewDesc("flink_job_records_in_per_second",
			"Records the job's sources emit per second, over the last minute.", jn, nil),
		recordsOut: prometheus.NewDesc("flink_job_records_out_per_second",
			"Records the job's sinks take in per second, over the last minute.", jn, nil),
		pending: prometheus.NewDesc("flink_job_source_pending_records",
			"The sources' backlog: pendingRecords summed over their subtasks, else Kafka's records-lag-max.", jn, nil),
		wmLag: prometheus.NewDesc("flink_job_watermark_lag_seconds",
			"How far the lowest watermark reaching a sink was behind the clock when read (event-time jobs only).", jn, nil),
		late: prometheus.NewDesc("flink_job_late_records_dropped_total",
			"Records the job's windows dropped as late: Flink's count when the agent first read it, then what the tasks added, across task restarts.", jn, nil),
		heapUsed:    prometheus.NewDesc("flink_jvm_heap_used_bytes", "JVM heap used (TaskManagers summed).", comp, nil),
		heapMax:     prometheus.NewDesc("flink_jvm_heap_max_bytes", "JVM heap maximum (TaskManagers summed).", comp, nil),
		gcTime:      prometheus.NewDesc("flink_jvm_gc_time_seconds_total", "Time spent in garbage collection (TaskManagers summed).", comp, nil),
		heapUsedMax: prometheus.NewDesc("flink_jvm_heap_used_max_bytes", "Largest JVM heap used by a single TaskManager.", comp, nil),
	}
}

// snapCollector exports the current snapshot.
type snapCollector struct{ c *Collector }

func (sc snapCollector) Describe(ch chan<- *prometheus.Desc) {
	d := sc.c.snapDescs
	for _, x := range []*prometheus.Desc{d.taskManagers, d.slotsTotal, d.slotsAvailable, d.jobs, d.jobInfo, d.uptime,
		d.backpressure, d.busy, d.recordsIn, d.recordsOut, d.pending, d.wmLag, d.late,
		d.heapUsed, d.heapMax, d.gcTime, d.heapUsedMax} {
		ch <- x
	}
}

func (sc snapCollector) Collect(ch chan<- prometheus.Metric) {
	sc.c.snapMu.RLock()
	s := sc.c.snap
	sc.c.snapMu.RUnlock()
	d := sc.c.snapDescs
	gauge := func(desc *prometheus.Desc, n number, labels ...string) {
		if n.OK {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, n.V, labels...)
		}
	}
	gauge(d.taskManagers, s.cluster.taskManagers)
	gauge(d.slotsTotal, s.cluster.slotsTotal)
	gauge(d.slotsAvailable, s.cluster.slotsAvailable)
	if s.jobsByState != nil {
		for _, st := range jobStates {
			ch <- prometheus.MustNewConstMetric(d.jobs, prometheus.GaugeValue, float64(s.jobsByState[st]), st)
		}
	}
	for _, j := range s.jobs {
		ch <- prometheus.MustNewConstMetric(d.jobInfo, prometheus.GaugeValue, 1, j.id, j.name, j.state)
	}
	for _, u := range s.uptime {
		ch <- prometheus.MustNewConstMetric(d.uptime, prometheus.GaugeValue, u.value, u.name)
	}
	for _, v := range s.vertices {
		if v.hasBP {
			ch <- prometheus.MustNewConstMetric(d.backpressure, prometheus.GaugeValue, v.bp, v.job, v.vertex)
		}
		if v.hasBusy {
			ch <- prometheus.MustNewConstMetric(d.busy, prometheus.GaugeValue, v.busy, v.job, v.vertex)
		}
	}
	for _, jp := range s.progress {
		p := jp.p
		opt := func(desc *prometheus.Desc, t prometheus.ValueType, v float64, ok bool) {
			if ok {
				ch <- prometheus.MustNewConstMetric(desc, t, v, jp.name)
			}
		}
		opt(d.recordsIn, prometheus.GaugeValue, p.RecordsIn, p.HasRecordsIn)
		opt(d.recordsOut, prometheus.GaugeValue, p.RecordsOut, p.HasRecordsOut)
		opt(d.pending, prometheus.GaugeValue, p.Pending, p.HasPending)
		opt(d.wmLag, prometheus.GaugeValue, p.WatermarkLag.Seconds(), p.HasWatermark)
		opt(d.late, prometheus.CounterValue, p.LateDropped, p.HasLate)
	}
	for _, j := range s.jvm {
		gauge(d.heapUsed, j.used, j.component)
		gauge(d.heapMax, j.max, j.component)
		gauge(d.heapUsedMax, j.usedMax, j.component)
		if j.gcMS.OK {
			ch <- prometheus.MustNewConstMetric(d.gcTime, prometheus.CounterValue, j.gcMS.V/1e3, j.component)
		}
	}
}
