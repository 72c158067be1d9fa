package collector

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestGoldenCaptured replays REST answers captured from real Flink
// (testbed/cmd/capture): 1.20.0 and 2.2.0 with the job's first shape, and
// every version of testbed/flink-versions.txt (1.18.1 to 2.2.1) with the
// paced source and the window. A first scrape right after the job started
// (the baseline), then one after completed, declined and expired
// checkpoints and a task failure with restarts, whose exceptions are read.
func TestGoldenCaptured(t *testing.T) {
	for _, v := range []string{"1.20.0", "2.2.0", "1.18.1", "1.19.3", "1.20.5", "2.0.2", "2.1.3", "2.2.1"} {
		t.Run(v, func(t *testing.T) {
			dir := filepath.Join("testdata", "flink-"+v)
			srv := newFixtureServer(t)
			first, jobID := captured(t, dir, map[string]string{"/jobs/:jobid/checkpoints": "jobs_id_checkpoints_before_first.json"})
			// Read right after the job started: what happened later (the
			// task failures of the exception history) is news.
			first["/jobs/"+jobID] = rewrite(t, filepath.Join(dir, "jobs_id.json"), t.TempDir(), func(v map[string]any) {
				v["now"] = v["start-time"]
			})
			srv.stage(first)
			// The capture's clock: the "now" of its /jobs/:id answer.
			h := newHarness(t, srv, capturedNow(t, dir), nil)
			if err := h.scrape(); err != nil {
				t.Fatalf("first scrape: %v", err)
			}
			h.golden("flink-" + v + "-first")
			later, _ := captured(t, dir, nil)
			srv.stage(later)
			if err := h.scrape(); err != nil {
				t.Fatalf("second scrape: %v", err)
			}
			h.golden("flink-" + v + "-second")
			// A minute and a half of scrapes, 15 s apart: the vertices'
			// names are listed, then their metrics read in turn (backlog,
			// watermarks, late records); records per second from /jobs/:id's
			// counts, which the capture holds still.
			for range 6 {
				h.now = h.now.Add(15 * time.Second)
				if err := h.scrape(); err != nil {
					t.Fatalf("progress scrape: %v", err)
				}
			}
			h.golden("flink-" + v + "-progress")
		})
	}
}

func capturedNow(t *testing.T, dir string) time.Time {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "jobs_id.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Now int64 `json:"now"`
	}
	if err := json.Unmarshal(raw, &d); err != nil || d.Now == 0 {
		t.Fatalf("jobs_id.json: no now: %v", err)
	}
	return time.UnixMilli(d.Now)
}

const (
	edgeT  = 1795477600000 // job A's start in testdata/edge
	edgeA  = "a0000000000000000000000000000001"
	edgeA2 = "a0000000000000000000000000000002"
	edgeB  = "b0000000000000000000000000000001"
)

func edgeRoutes(files map[string]string) map[string]string {
	r := map[string]string{
		"/jobmanager/metrics":        "jobmanager_metrics.json",
		"/taskmanagers/metrics":      "taskmanagers_metrics_agg.json",
		"/taskmanagers/metrics#list": "taskmanagers_metrics_list.json",
	}
	for p, f := range files {
		r[p] = f
	}
	for p, f := range r {
		r[p] = filepath.Join("testdata", "edge", f)
	}
	return r
}

// TestGoldenEdgeCases replays edited answers: Flink 1.14's "@class" without
// checkpointed_size, "NaN" and absent percentiles, an entry without status,
// more completions and failures than the history holds, a savepoint, a stuck
// checkpoint, a restart, busy time "NaN", no periodic checkpoints, an
// overlong SQL vertex name, a finished job; then the job resubmitted under a
// new id while another one fails.
func TestGoldenEdgeCases(t *testing.T) {
	srv := newFixtureServer(t)
	h := newHarness(t, srv, time.UnixMilli(edgeT+125000), nil)
	h.c.finalWindow = 0 // a stopped job's statistics are read once more, then never
	A, B, A2 := "/jobs/"+edgeA, "/jobs/"+edgeB, "/jobs/"+edgeA2

	srv.stage(edgeRoutes(map[string]string{
		"/jobs/overview": "jobs_overview_1.json",
		A:                "job_A_1.json", A + "/checkpoints": "checkpoints_A_1.json", A + "/checkpoints/config": "config_A.json",
		B: "job_B_1.json", B + "/checkpoints": "checkpoints_B_1.json", B + "/checkpoints/config": "config_B.json",
	}))
	if err := h.scrape(); err != nil {
		t.Fatal(err)
	}
	if n, hits := srv.requests(); n != 3+2*2+2 { // + the two configurations, once
		t.Errorf("first scrape made %d requests: %v", n, hits)
	}
	h.golden("edge-1")

	// 255 s later: checkpoint 33 has been in progress for 50 s of a 60 s timeout.
	h.now = time.UnixMilli(edgeT + 380000)
	srv.stage(edgeRoutes(map[string]string{
		"/jobs/overview": "jobs_overview_2.json",
		A:                "job_A_2.json", A + "/checkpoints": "checkpoints_A_2.json",
		A + "/checkpoints/details/32": "details_A_32.json", A + "/exceptions": "exceptions_A.json",
		B: "job_B_2.json", B + "/checkpoints": "checkpoints_B_2.json",
	}))
	if err := h.scrape(); err != nil {
		t.Fatal(err)
	}
	// 3 + 2 per job, details of the two new failures (30 is gone: 404), and
	// the exceptions of the restarted job.
	if n, hits := srv.requests(); n != 3+2*2+2+1 {
		t.Errorf("second scrape made %d requests: %v", n, hits)
	}
	h.golden("edge-2")

	// A was cancelled and resubmitted as A2 under the same name; B failed.
	h.now = time.UnixMilli(edgeT + 630000)
	srv.stage(edgeRoutes(map[string]string{
		"/jobs/overview": "jobs_overview_3.json",
		A2:               "job_A2_3.json", A2 + "/checkpoints": "checkpoints_A2_3.json", A2 + "/checkpoints/config": "config_A2.json",
		B + "/checkpoints": "checkpoints_B_2.json",
	}))
	if err := h.scrape(); err != nil {
		t.Fatal(err)
	}
	h.golden("edge-3")
	// B stopped: after its last read, nothing more is asked about it and its
	// series are gone (its flink_job_info stays while Flink lists it).
	srv.requests()
	if err := h.scrape(); err != nil {
		t.Fatal(err)
	}
	if n, hits := srv.requests(); n != 3+2*1 {
		t.Errorf("steady scrape made %d requests: %v", n, hits)
	}
	h.golden("edge-4")
}

// TestBaselineSurvivesAFailedFirstRead: a job listed at the agent's first
// scrape whose checkpoints could not be read then is still a baseline when
// they are read: its history since it started is not counted as news.
func TestBaselineSurvivesAFailedFirstRead(t *testing.T) {
	dir := filepath.Join("testdata", "flink-1.20.0")
	srv := newFixtureServer(t)
	routes, jobID := captured(t, dir, map[string]string{"/jobs/:jobid/checkpoints": ""})
	srv.stage(routes) // /checkpoints answers 404 at first
	h := newHarness(t, srv, capturedNow(t, dir), nil)
	_ = h.scrape()
	full, _ := captured(t, dir, nil)
	srv.stage(full)
	must(t, h.scrape())
	if v := gatherValue(t, h.reg, "flink_checkpoints_total", "status", "completed", "kind", "checkpoint"); v != 0 {
		t.Errorf("job %s: %v completed checkpoints counted from before the agent's first look", jobID, v)
	}
}
