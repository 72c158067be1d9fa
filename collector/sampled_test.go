package collector

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/testbed"
)

// detailsRecorder keeps the CheckpointDetails the collector sends.
type detailsRecorder struct {
	got []checkpointwatch.CheckpointDetails
}

func (r *detailsRecorder) Handle(ev checkpointwatch.Event) {
	if d, ok := ev.(checkpointwatch.CheckpointDetails); ok {
		r.got = append(r.got, d)
	}
}

// A scrape that sees 2 new failures and 8 new completions, all sampled
// (failures with their subtasks): the failures' details are read as
// without traces; their first vertices' subtasks, the completions' details
// and then their second vertices' subtasks share DetailBudget; what does not
// fit is answered with an error, never fetched.
func TestSampledDetailsWithinBudget(t *testing.T) {
	dir := filepath.Join("testdata", "flink-1.20.0")
	for _, tc := range []struct {
		name                  string
		budget                int
		details, subtasks, ok int
	}{
		// The failures' details (free), their first vertex's subtasks, two
		// completions' details.
		{"budget 4", 4, 2 + 2, 2, 4},
		{"budget 7", 7, 2 + 5, 2, 7},
		// Everything: then the failures' second vertex too.
		{"budget 12", 12, 2 + 8, 4, 10},
		{"no budget", 0, 2, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, jobID := captured(t, dir, nil)
			jp := "/jobs/" + jobID
			later := clone(base)
			for _, id := range []int{19, 20} {
				p := jp + "/checkpoints/details/" + strconv.Itoa(id)
				later[p] = filepath.Join(dir, "jobs_id_checkpoints_details_failed_declined.json")
				for _, v := range []string{"90bea66de1c231edf33913ecd54406c1", "cbc357ccb763df2852fee8c4fc7d55f2", "08a489791a4e7fcd83ae029ef13928c6"} {
					later[p+"/subtasks/"+v] = filepath.Join("testdata", "subtasks", "failed_mixed.json")
				}
			}
			for id := 13; id <= 22; id++ {
				if id != 19 && id != 20 {
					later[jp+"/checkpoints/details/"+strconv.Itoa(id)] = filepath.Join(dir, "jobs_id_checkpoints_details_completed.json")
				}
			}
			first := clone(base)
			first[jp+"/checkpoints"] = filepath.Join(dir, "jobs_id_checkpoints_before_first.json")

			rec := &detailsRecorder{}
			srv := newFixtureServer(t)
			h := newHarness(t, srv, capturedNow(t, dir), func(o *Options) {
				o.SampleDetails = func(_ checkpointwatch.JobRef, cp checkpointwatch.Checkpoint) checkpointwatch.Detail {
					if cp.Status == checkpointwatch.Failed {
						return checkpointwatch.DetailSubtasks
					}
					return checkpointwatch.DetailVertices
				}
				o.DetailBudget = tc.budget
				o.Watch = testWatch(t, sink.Options{Registerer: o.Registerer, Extra: []checkpointwatch.Sink{rec}})
			})
			srv.stage(first)
			must(t, h.scrape())
			srv.stage(later)
			srv.requests()
			must(t, h.scrape())
			_, hits := srv.requests()
			details, subtasks := 0, 0
			for p, n := range hits {
				switch {
				case !strings.Contains(p, "/checkpoints/details/"):
					// e.g. the progress metrics' …/vertices/:vid/subtasks/metrics
				case filepath.Base(filepath.Dir(p)) == "subtasks":
					subtasks += n
				case filepath.Base(filepath.Dir(p)) == "details":
					details += n
				}
			}
			if details != tc.details || subtasks != tc.subtasks {
				t.Errorf("%d details and %d subtask requests (%v), want %d and %d", details, subtasks, hits, tc.details, tc.subtasks)
			}
			if len(rec.got) != 10 {
				t.Fatalf("%d CheckpointDetails, want one per new checkpoint (10)", len(rec.got))
			}
			ok, withSubtasks := 0, 0
			for _, d := range rec.got {
				switch {
				case d.Err == nil:
					ok++
				case !errors.Is(d.Err, errDetailBudget):
					t.Errorf("checkpoint %d: %v", d.CheckpointID, d.Err)
				}
				for _, task := range d.Tasks {
					if task.SubtaskDetails == nil {
						continue
					}
					withSubtasks++
					st := task.SubtaskDetails
					if len(st) != 2 || !st[0].Acknowledged || st[1].Acknowledged || st[0].Async.Milliseconds() != 7 ||
						st[0].Sync.Milliseconds() != 1 || st[0].Alignment.Milliseconds() != 5 || st[0].StartDelay.Milliseconds() != 9 ||
						st[0].Duration.Milliseconds() != 42 || st[1].Duration >= 0 || !st[0].Aborted {
						t.Errorf("checkpoint %d vertex %s subtasks %+v", d.CheckpointID, task.Vertex, st)
					}
				}
			}
			if ok != tc.ok || withSubtasks != tc.subtasks {
				t.Errorf("%d details answered, %d vertices with subtasks; want %d and %d", ok, withSubtasks, tc.ok, tc.subtasks)
			}
			got, err := testbed.GatherValue(h.reg, "flink_rest_requests_total", "endpoint", routeCPSubtasks, "code", "200")
			if err != nil {
				t.Fatal(err)
			}
			if tc.subtasks == 0 {
				got = max(got, 0) // no such series
			}
			if got != float64(tc.subtasks) {
				t.Errorf("flink_rest_requests_total{endpoint=%q} = %v, want %d", routeCPSubtasks, got, tc.subtasks)
			}
		})
	}
}
