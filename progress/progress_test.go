package progress

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// capture is a REST capture of the test bed's job (testbed/cmd/capture):
// a paced source chained with a map, a keyed counter and a one-second
// event-time window, each ending in a sink.
type capture struct {
	t        *testing.T
	dir      string
	vertices []Vertex
	now      time.Time // the capture's clock
}

func load(t *testing.T, version string) *capture {
	t.Helper()
	c := &capture{t: t, dir: filepath.Join("..", "collector", "testdata", "flink-"+version)}
	var j struct {
		Now  int64 `json:"now"`
		Plan struct {
			Nodes []struct {
				ID     string `json:"id"`
				Inputs []struct {
					ID string `json:"id"`
				} `json:"inputs"`
			} `json:"nodes"`
		} `json:"plan"`
		Vertices []struct {
			ID string `json:"id"`
		} `json:"vertices"`
	}
	c.read("jobs_id.json", &j)
	inputs := map[string][]string{}
	for _, n := range j.Plan.Nodes {
		for _, in := range n.Inputs {
			inputs[n.ID] = append(inputs[n.ID], in.ID)
		}
	}
	for _, v := range j.Vertices { // the vertex order of the capture's files
		c.vertices = append(c.vertices, Vertex{ID: v.ID, Inputs: inputs[v.ID]})
	}
	c.now = time.UnixMilli(j.Now)
	return c
}

func (c *capture) read(name string, v any) {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
}

// counts reads the vertices' record counts of a captured /jobs/:id answer.
func (c *capture) counts(name string) []VertexCounts {
	var j struct {
		Vertices []struct {
			ID      string `json:"id"`
			Metrics struct {
				Read    int64 `json:"read-records"`
				Written int64 `json:"write-records"`
			} `json:"metrics"`
		} `json:"vertices"`
	}
	c.read(name, &j)
	var out []VertexCounts
	for _, v := range j.Vertices {
		out = append(out, VertexCounts{ID: v.ID, Read: v.Metrics.Read, Written: v.Metrics.Written})
	}
	return out
}

func (c *capture) index(id string) int {
	for i, v := range c.vertices {
		if v.ID == id {
			return i
		}
	}
	c.t.Fatalf("no vertex %s", id)
	return -1
}

// answer serves a request from the capture's files; variant "" or "stalled".
func (c *capture) answer(tr *Tracker, job string, r Request, variant string) {
	c.t.Helper()
	i := c.index(r.Vertex)
	if r.List {
		var list []struct {
			ID string `json:"id"`
		}
		c.read(fmt.Sprintf("jobs_id_vertices_%d_subtasks_metrics_list.json", i), &list)
		names := make([]string, len(list))
		for k, m := range list {
			names[k] = m.ID
		}
		tr.ObserveNames(job, r.Vertex, names)
		return
	}
	name := fmt.Sprintf("jobs_id_vertices_%d_subtasks_metrics.json", i)
	if variant != "" {
		name = fmt.Sprintf("jobs_id_vertices_%d_subtasks_metrics_%s.json", i, variant)
	}
	var raw []struct {
		ID  string   `json:"id"`
		Min *float64 `json:"min"`
		Max *float64 `json:"max"`
		Sum *float64 `json:"sum"`
	}
	c.read(name, &raw)
	var aggs []Agg
	for _, m := range raw {
		if !contains(r.IDs, m.ID) {
			continue // Flink answers only what get= asked
		}
		a := Agg{ID: m.ID}
		if m.Min != nil {
			a.Min, a.HasMin = *m.Min, true
		}
		if m.Max != nil {
			a.Max, a.HasMax = *m.Max, true
		}
		if m.Sum != nil {
			a.Sum, a.HasSum = *m.Sum, true
		}
		aggs = append(aggs, a)
	}
	tr.ObserveValues(job, r.Vertex, aggs)
}

// TestCapturedProgress replays every version's capture: the vertices are
// listed once (sources and sinks first), then one values request per scrape
// takes the source and the two sinks in turn; the job's progress matches
// what the answers say, and with the source stalled the backlog and the
// watermark lag grow.
func TestCapturedProgress(t *testing.T) {
	for _, version := range []string{"1.18.1", "1.19.3", "1.20.5", "2.0.2", "2.1.3", "2.2.1"} {
		t.Run(version, func(t *testing.T) {
			c := load(t, version)
			now := c.now
			tr := New(func() time.Time { return now })
			const job = "j"
			lists, gets := 0, map[string]int{}
			scrape := func(variant string) {
				t.Helper()
				r, ok := tr.Plan(job, c.vertices)
				if !ok {
					t.Fatal("nothing planned")
				}
				if r.List {
					lists++
				} else {
					gets[r.Vertex]++
				}
				c.answer(tr, job, r, variant)
			}
			// Three scrapes list the three vertices (sources and sinks
			// first), then one values request per scrape takes them in turn.
			for range 6 {
				scrape("")
			}
			if lists != 3 {
				t.Errorf("%d names lists for 3 vertices", lists)
			}
			for i, v := range c.vertices {
				if gets[v.ID] != 1 {
					t.Errorf("vertex %d read %d times in 3 value scrapes, want once", i, gets[v.ID])
				}
			}
			p, ok := tr.Job(job)
			if !ok || !p.HasPending || !p.HasWatermark || !p.HasLate {
				t.Fatalf("progress %+v (%v): backlog, watermark and late records should be known", p, ok)
			}
			if p.HasRecordsIn || p.HasRecordsOut {
				t.Errorf("progress %+v: records per second from the metrics, not from /jobs/:id's counts", p)
			}
			// The capture waited for dropped late records before these answers.
			if p.LateDropped <= 0 {
				t.Errorf("progress %+v", p)
			}
			// Records are read as they arrive; the watermark trails the
			// newest by the 200 ms out-of-orderness and the metric fetcher's
			// age (10 s at most).
			if p.Pending > 100 || p.WatermarkLag > 15*time.Second {
				t.Errorf("running normally: backlog %v, watermark lag %v", p.Pending, p.WatermarkLag)
			}
			before := p
			// The stalled answers, read a scrape later: the vertices' counts
			// of /jobs/:id stand still over a minute.
			stalled := c.counts("jobs_id_stalled.json")
			for range 6 {
				now = now.Add(15 * time.Second)
				tr.ObserveCounts(job, stalled)
				scrape("stalled")
			}
			p, _ = tr.Job(job)
			t.Logf("running: %+v; stalled: %+v", before, p)
			if p.Pending < 500 || p.Pending <= before.Pending {
				t.Errorf("stalled: backlog %v, want it grown past 500 (the capture waited for that)", p.Pending)
			}
			if p.WatermarkLag <= before.WatermarkLag {
				t.Errorf("stalled: watermark lag %v, not above %v", p.WatermarkLag, before.WatermarkLag)
			}
			if p.LateDropped < before.LateDropped {
				t.Errorf("late records total went down: %v → %v", before.LateDropped, p.LateDropped)
			}
			if !p.HasRecordsIn || !p.HasRecordsOut || p.RecordsIn != 0 || p.RecordsOut != 0 {
				t.Errorf("stalled: records in %v (%v), out %v (%v): want 0 per second, known", p.RecordsIn, p.HasRecordsIn, p.RecordsOut, p.HasRecordsOut)
			}
		})
	}
}

func TestLateCounterSurvivesRestarts(t *testing.T) {
	tr := New(nil)
	vs := []Vertex{{ID: "src"}, {ID: "win", Inputs: []string{"src"}}}
	tr.Plan("j", vs)
	tr.ObserveNames("j", "win", []string{"window.numLateRecordsDropped", "currentInputWatermark", "numRecordsInPerSecond"})
	for _, raw := range []float64{5, 9, 2, 4} { // the tasks restarted after 9
		tr.ObserveValues("j", "win", []Agg{{ID: "window.numLateRecordsDropped", Sum: raw, HasSum: true}})
	}
	if p, _ := tr.Job("j"); p.LateDropped != 9+2+2 {
		t.Errorf("late total %v, want 13", p.LateDropped)
	}
}

func TestNoEventTimeNoWatermarkLag(t *testing.T) {
	tr := New(nil)
	vs := []Vertex{{ID: "src"}, {ID: "sink", Inputs: []string{"src"}}}
	tr.Plan("j", vs)
	tr.ObserveNames("j", "sink", []string{"currentInputWatermark", "numRecordsInPerSecond"})
	tr.ObserveValues("j", "sink", []Agg{{ID: "currentInputWatermark", Min: -9.223372036854776e18, HasMin: true}, {ID: "numRecordsInPerSecond", Sum: 3, HasSum: true}})
	if p, ok := tr.Job("j"); !ok || p.HasWatermark {
		t.Errorf("progress %+v: no watermark lag without event time", p)
	}
}

func TestKafkaLagWhenNoPendingRecords(t *testing.T) {
	tr := New(nil)
	vs := []Vertex{{ID: "src"}} // one chain: source and sink
	tr.Plan("j", vs)
	lag := "Source__orders.KafkaSourceReader.KafkaConsumer.records-lag-max"
	tr.ObserveNames("j", "src", []string{lag, "Source__orders.numRecordsOutPerSecond"})
	r, ok := tr.Plan("j", vs)
	if !ok || r.List || !contains(r.IDs, lag) {
		t.Fatalf("plan %+v", r)
	}
	tr.ObserveValues("j", "src", []Agg{{ID: lag, Sum: 1200, HasSum: true}, {ID: "Source__orders.numRecordsOutPerSecond", Sum: 50, HasSum: true}})
	if p, _ := tr.Job("j"); !p.HasPending || p.Pending != 1200 || p.RecordsIn != 50 || p.RecordsOut != 50 {
		t.Errorf("progress %+v", p)
	}
}

func TestRetainAndGraphChange(t *testing.T) {
	tr := New(nil)
	tr.Plan("a", []Vertex{{ID: "x"}})
	tr.Plan("b", []Vertex{{ID: "y"}})
	tr.Retain([]string{"b"})
	if _, ok := tr.jobs["a"]; ok {
		t.Error("job a not forgotten")
	}
	tr.ObserveNames("b", "y", []string{"numRecordsOutPerSecond"})
	if r, ok := tr.Plan("b", []Vertex{{ID: "y"}, {ID: "z", Inputs: []string{"y"}}}); !ok || !r.List || r.Vertex != "y" {
		t.Errorf("a new graph is listed again from its sources: %+v", r)
	}
}

// simulated is a job whose sources emit rate records a second, counted by
// Flink's metric fetcher every refresh and read by scrapes every interval.
func simulated(t *testing.T, rate float64, refresh, interval, run time.Duration, stallAt time.Duration) (tr *Tracker, now *time.Time) {
	t.Helper()
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := start
	tr = New(func() time.Time { return clock })
	vs := []Vertex{{ID: "src"}, {ID: "sink", Inputs: []string{"src"}}}
	tr.Plan("j", vs)
	for el := time.Duration(0); el <= run; el += interval {
		clock = start.Add(el)
		// The cache holds the count of its last refresh.
		fetched := el.Truncate(refresh) + 3*time.Second // refreshes 3 s after the grid
		if fetched > el {
			fetched -= refresh
		}
		if stallAt > 0 && fetched > stallAt {
			fetched = stallAt
		}
		n := int64(rate * max(0, fetched.Seconds()))
		tr.ObserveCounts("j", []VertexCounts{{ID: "src", Written: n}, {ID: "sink", Read: n}})
	}
	return tr, &clock
}

// Records per second come from /jobs/:id's counts, refreshed by Flink every
// 10 s, whether the agent scrapes every 15 s (the default) or every second.
func TestRecordsPerSecond(t *testing.T) {
	for _, interval := range []time.Duration{time.Second, 15 * time.Second, 30 * time.Second} {
		tr, _ := simulated(t, 100, 10*time.Second, interval, 10*time.Minute, 0)
		p, _ := tr.Job("j")
		if !p.HasRecordsIn || !p.HasRecordsOut || p.RecordsIn < 80 || p.RecordsIn > 120 || p.RecordsOut != p.RecordsIn {
			t.Errorf("scrapes every %s: in %v, out %v; want 100 ± 20 %%", interval, p.RecordsIn, p.RecordsOut)
		}
	}
	// Stalled at 5 min: 0 once a minute passed without a change.
	tr, now := simulated(t, 100, 10*time.Second, 15*time.Second, 7*time.Minute, 5*time.Minute)
	p, _ := tr.Job("j")
	if p.RecordsIn != 0 || p.RecordsOut != 0 || !p.HasRecordsOut {
		t.Errorf("stalled for 2 min at %s: in %v, out %v; want 0", now.Format(time.TimeOnly), p.RecordsIn, p.RecordsOut)
	}
}

// A count that goes down (the tasks restarted) starts over; the rate is
// never negative, and is known again after two changes.
func TestRecordsPerSecondAfterRestart(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tr := New(func() time.Time { return now })
	tr.Plan("j", []Vertex{{ID: "src"}, {ID: "sink", Inputs: []string{"src"}}})
	for _, n := range []int64{0, 1000, 2000, 3000, 50, 1050} {
		tr.ObserveCounts("j", []VertexCounts{{ID: "src", Written: n}, {ID: "sink", Read: n}})
		p, _ := tr.Job("j")
		if p.RecordsIn < 0 {
			t.Fatalf("negative rate %v after count %d", p.RecordsIn, n)
		}
		now = now.Add(10 * time.Second)
	}
	if p, _ := tr.Job("j"); !p.HasRecordsIn || p.RecordsIn != 100 {
		t.Errorf("after the restart: %v (%v), want 100/s", p.RecordsIn, p.HasRecordsIn)
	}
}

// Plan never asks for more than one request per scrape, names lists
// included, and asks for nothing a vertex does not have.
func TestOneRequestPerScrape(t *testing.T) {
	c := load(t, "2.2.1")
	tr := New(func() time.Time { return c.now })
	seen := map[string]bool{}
	for range 12 {
		r, ok := tr.Plan("j", c.vertices)
		if !ok {
			t.Fatal("nothing planned")
		}
		seen[fmt.Sprint(r.List, r.Vertex)] = true
		c.answer(tr, "j", r, "")
		for _, id := range r.IDs {
			if strings.HasSuffix(id, "PerSecond") {
				t.Errorf("asked for %s: records per second come from /jobs/:id", id)
			}
		}
	}
	if len(seen) != 6 {
		t.Errorf("requests %v: want each vertex listed once and read in turn", seen)
	}
}

// A vertex listed while Flink had only part of its metrics (the operators
// register theirs after the task's, Flink fetches every 10 s) is listed
// again after 15 s, then 30 s, 60 s, … at most 5 minutes apart; once its
// list has what a source or sink has, no more lists.
func TestRelistWhatLacked(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tr := New(func() time.Time { return now })
	vs := []Vertex{{ID: "src"}, {ID: "sink", Inputs: []string{"src"}}}
	lists := func(d time.Duration) (at []time.Duration) {
		start := now
		for el := time.Duration(0); el < d; el += time.Second {
			now = start.Add(el)
			if r, ok := tr.Plan("j", vs); ok && r.List {
				at = append(at, el)
				switch r.Vertex {
				case "src":
					tr.ObserveNames("j", "src", []string{"numRecordsOutPerSecond"}) // the task's only
				case "sink":
					tr.ObserveNames("j", "sink", []string{"currentInputWatermark"})
				}
			}
		}
		return at
	}
	got := fmt.Sprint(lists(13 * time.Minute))
	// The sink is complete at once; the source at 0, then +15 s, +30 s, +1m,
	// +2m, +4m, +5m.
	if want := "[0s 1s 15s 45s 1m45s 3m45s 7m45s 12m45s]"; got != want {
		t.Errorf("lists at %s, want %s", got, want)
	}
	tr.ObserveNames("j", "src", []string{"Source__orders.pendingRecords"})
	if at := lists(20 * time.Minute); len(at) != 0 {
		t.Errorf("a complete source listed again at %v", at)
	}
}

// Beyond MaxJobs jobs, new jobs are not tracked (memory stays bounded with
// thousands of jobs); a forgotten job makes room.
func TestMaxJobs(t *testing.T) {
	tr := New(nil)
	vs := []Vertex{{ID: "src"}, {ID: "sink", Inputs: []string{"src"}}}
	for i := range MaxJobs {
		if _, ok := tr.Plan(fmt.Sprint(i), vs); !ok {
			t.Fatalf("job %d not planned", i)
		}
	}
	if _, ok := tr.Plan("one too many", vs); ok || len(tr.jobs) != MaxJobs {
		t.Errorf("job %d planned: %d jobs tracked", MaxJobs+1, len(tr.jobs))
	}
	tr.Retain([]string{"0", "one too many"})
	if _, ok := tr.Plan("one too many", vs); !ok {
		t.Error("no room after Retain")
	}
}
