package collector

import (
	"sort"
	"strings"
)

// /jobmanager/metrics and /taskmanagers/metrics: JVM heap and GC time of the
// JobManager, and of all TaskManagers in ONE aggregated call. The
// JobManager call also brings the cluster gauges (TaskManagers, slots), so
// no /overview call is needed. Both answer a bare JSON array from the
// JobManager's metric fetcher cache (metrics.fetcher.update-interval).

const (
	gcPrefix     = "Status.JVM.GarbageCollector."
	mHeapUsed    = "Status.JVM.Memory.Heap.Used"
	mHeapMax     = "Status.JVM.Memory.Heap.Max"
	mGCAll       = gcPrefix + "All.Time" // Flink 1.18+
	mTaskManager = "numRegisteredTaskManagers"
	mSlotsTotal  = "taskSlotsTotal"
	mSlotsAvail  = "taskSlotsAvailable"
)

// gcCollectors are summed when the "All" aggregate is absent (older Flink):
// the names of HotSpot's G1, parallel and serial collectors.
var gcCollectors = []string{
	"Status.JVM.GarbageCollector.G1_Young_Generation.Time",
	"Status.JVM.GarbageCollector.G1_Old_Generation.Time",
	"Status.JVM.GarbageCollector.PS_Scavenge.Time",
	"Status.JVM.GarbageCollector.PS_MarkSweep.Time",
	"Status.JVM.GarbageCollector.Copy.Time",
	"Status.JVM.GarbageCollector.MarkSweepCompact.Time",
}

// The JobManager's unaggregated answer leaves out names it does not know.
var jmMetricsPath = "/jobmanager/metrics?get=" + strings.Join(append([]string{mHeapUsed, mHeapMax, mGCAll, mTaskManager, mSlotsTotal, mSlotsAvail}, gcCollectors...), ",")

// The aggregated TaskManager answer is empty as a whole when one requested
// name is unknown (seen on Flink 1.20 and 2.2), so the names are chosen from
// the TaskManagers' own list: one /taskmanagers/metrics request, in place of
// the aggregated one, whenever the aggregated answer comes back empty.

// metricValue is one entry of a metrics answer: "value" unaggregated (a
// string), "sum"/"max"/… with agg=.
type metricValue struct {
	ID    string `json:"id"`
	Value number `json:"value"`
	Sum   number `json:"sum"`
	Max   number `json:"max"`
	Min   number `json:"min"`
}

func (s *scrape) jobManager() {
	var body []metricValue
	if err := s.c.c.get(s.ctx, routeJMMetrics, jmMetricsPath, &body); err != nil {
		s.fail(err)
		return
	}
	st := jvmStats{component: "jobmanager"}
	var gc gcTime
	for _, m := range body {
		switch m.ID {
		case mHeapUsed:
			st.used = m.Value
		case mHeapMax:
			st.max = m.Value
		case mTaskManager:
			s.snap.cluster.taskManagers = m.Value
		case mSlotsTotal:
			s.snap.cluster.slotsTotal = m.Value
		case mSlotsAvail:
			s.snap.cluster.slotsAvailable = m.Value
		default:
			gc.add(m.ID, m.Value)
		}
	}
	st.gcMS = gc.ms()
	s.addJVM(st)
}

func (s *scrape) taskManagers() {
	c := s.c
	if c.tmPath == "" {
		s.discoverTaskManagerMetrics()
		return
	}
	var body []metricValue
	if err := c.c.get(s.ctx, routeTMMetrics, c.tmPath, &body); err != nil {
		s.fail(err)
		return
	}
	if len(body) == 0 {
		// No TaskManager, none fetched yet, or a name went away: choose
		// the names again next scrape.
		c.tmPath = ""
		return
	}
	st := jvmStats{component: "taskmanager"}
	var gc gcTime
	for _, m := range body {
		switch m.ID {
		case mHeapUsed:
			st.used, st.usedMax = m.Sum, m.Max
		case mHeapMax:
			st.max = m.Sum
		default:
			gc.add(m.ID, m.Sum)
		}
	}
	st.gcMS = gc.ms()
	s.addJVM(st)
}

// gcTime is a JVM's GC time: Flink's "All" metric (1.18+), else the sum of
// the collectors' own.
type gcTime struct{ all, sum number }

func (g *gcTime) add(id string, v number) {
	switch {
	case id == mGCAll:
		g.all = v
	case v.OK && strings.HasPrefix(id, gcPrefix):
		g.sum.V += v.V
		g.sum.OK = true
	}
}

func (g *gcTime) ms() number {
	if g.all.OK {
		return g.all
	}
	return g.sum
}

// addJVM keeps st unless the answer held none of its metrics.
func (s *scrape) addJVM(st jvmStats) {
	if st.used.OK || st.max.OK || st.gcMS.OK {
		s.snap.jvm = append(s.snap.jvm, st)
	}
}

// discoverTaskManagerMetrics lists the TaskManagers' metric names and keeps
// the aggregated request to those that exist: heap used and max, and the
// "All" GC time or else each collector's.
func (s *scrape) discoverTaskManagerMetrics() {
	var list []struct {
		ID string `json:"id"`
	}
	if err := s.c.c.get(s.ctx, routeTMMetrics, "/taskmanagers/metrics", &list); err != nil {
		s.fail(err)
		return
	}
	have := make(map[string]bool, len(list))
	for _, m := range list {
		have[m.ID] = true
	}
	var get []string
	for _, n := range []string{mHeapUsed, mHeapMax} {
		if have[n] {
			get = append(get, n)
		}
	}
	if have[mGCAll] {
		get = append(get, mGCAll)
	} else {
		var gcs []string
		for n := range have {
			if strings.HasPrefix(n, gcPrefix) && strings.HasSuffix(n, ".Time") {
				gcs = append(gcs, n)
			}
		}
		sort.Strings(gcs)
		get = append(get, gcs...)
	}
	if len(get) > 0 {
		s.c.tmPath = "/taskmanagers/metrics?get=" + strings.Join(get, ",") + "&agg=sum,max"
	}
}
