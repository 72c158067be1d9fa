package collector

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// rewrite copies a captured answer into dir with edit applied to its JSON.
func rewrite(t *testing.T, src, dir string, edit func(map[string]any)) string {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	edit(v)
	out, _ := json.Marshal(v)
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestRESTEconomyIndependentOfParallelism counts the requests of steady
// scrapes and of a scrape that sees new failed checkpoints, for the
// captured job at parallelism 1 and 8: the same counts, within
// 3 + 3·jobs + new checkpoint details (per job /jobs/:id, its checkpoints and
// one subtask-metrics request for its progress).
func TestRESTEconomyIndependentOfParallelism(t *testing.T) {
	dir := filepath.Join("testdata", "flink-1.20.0")
	counts := map[int][3]int{}
	for _, par := range []int{1, 8} {
		tmp := t.TempDir()
		setPar := func(v map[string]any) {
			for _, vx := range v["vertices"].([]any) {
				vx.(map[string]any)["parallelism"] = par
			}
		}
		noRestore := func(v map[string]any) {
			v["counts"].(map[string]any)["restored"] = 0
			for _, h := range v["history"].([]any) {
				h.(map[string]any)["num_subtasks"] = 2 * par
			}
		}
		base, jobID := captured(t, dir, nil)
		jp := "/jobs/" + jobID
		base[jp] = rewrite(t, filepath.Join(dir, "jobs_id.json"), tmp, setPar)
		first := clone(base)
		first[jp+"/checkpoints"] = filepath.Join(dir, "jobs_id_checkpoints_before_first.json")
		later := clone(base)
		later[jp+"/checkpoints"] = rewrite(t, filepath.Join(dir, "jobs_id_checkpoints.json"), tmp, noRestore)

		srv := newFixtureServer(t)
		h := newHarness(t, srv, capturedNow(t, dir), nil)
		srv.stage(first)
		must(t, h.scrape())
		srv.requests() // the first scrape also reads the configuration
		must(t, h.scrape())
		steady, _ := srv.requests()
		srv.stage(later)
		must(t, h.scrape())
		withFailures, hits := srv.requests()
		must(t, h.scrape())
		steadyAgain, _ := srv.requests()
		counts[par] = [3]int{steady, withFailures, steadyAgain}

		const jobs, newFailed = 1, 2 // checkpoints 19 and 20 of the capture
		// Per job at most one subtask-metrics request: none while no
		// vertex is due (this capture serves none, so each list answers
		// 404 and is asked again only after a while).
		for _, n := range []int{steady, steadyAgain} {
			if n < 3+2*jobs || n > 3+3*jobs {
				t.Errorf("parallelism %d: steady scrapes made %d and %d requests, want %d to %d", par, steady, steadyAgain, 3+2*jobs, 3+3*jobs)
			}
		}
		if withFailures > 3+3*jobs+newFailed {
			t.Errorf("parallelism %d: the scrape with %d new failures made %d requests (%v), bound %d", par, newFailed, withFailures, hits, 3+3*jobs+newFailed)
		}
	}
	if counts[1] != counts[8] {
		t.Errorf("requests per scrape differ with parallelism: 1 → %v, 8 → %v", counts[1], counts[8])
	}
	t.Logf("requests per scrape (steady, with 2 new failures, steady) at parallelism 1: %v, at 8: %v", counts[1], counts[8])
}

func clone(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
