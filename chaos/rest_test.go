package chaos

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// restCase starts a JobManager sidecar scraping jm every interval (and
// with the other flink keys in extra) while the canary is written, runs
// during (the hostile part), and returns the agent for the case's checks;
// the caller stops it.
func (e *env) restCase(name string, jm *fakeJM, interval string, r *result, w *writer, during func(a *agent), extra ...string) *agent {
	dir := filepath.Join(e.dir, name)
	mkdir(e, filepath.Join(dir, "log"))
	flink := fmt.Sprintf("rest_url: %q\n  scrape_interval: %s", jm.URL(), interval)
	for _, x := range extra {
		flink += "\n  " + x
	}
	cfg := strings.Replace(e.baseConfig(name, dir), `rest_url: ""`, flink, 1)
	a := e.startAgent(name, dir, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.canary(e.t, dir, name, 250) // 5 s of ordinary logs meanwhile
	}()
	during(a)
	<-done
	if _, err := a.get(e.ctx, "/healthz"); err != nil {
		r.fail("/healthz: %v", err)
	}
	e.deliveries(name, w, r, 20*time.Second)
	return a
}

// caseHugeAnswer: /jobs/overview answers 200 MB, every scrape.
func caseHugeAnswer(e *env, r *result) {
	jm := newFakeJM(e, jobsFor(3, "huge"), 0)
	var served atomic.Int64
	jm.setOverride(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path != "/jobs/overview" {
			return false
		}
		served.Add(1)
		hugeBody(w, 200<<20)
		return true
	})
	w := newWriter()
	a := e.restCase("rest-200mb", jm, "2s", r, w, func(*agent) {})
	bad := a.metric("flink_rest_decode_errors_total", `endpoint="/jobs/overview"`)
	r.check(bad >= 2, "flink_rest_decode_errors_total{endpoint=\"/jobs/overview\"} = %v after %d answers", bad, served.Load())
	a.stop(r)
}

// caseGzipBomb: /jobs/overview answers 1 GiB of gzip-compressed spaces
// (about 1 MB on the wire).
func caseGzipBomb(e *env, r *result) {
	jm := newFakeJM(e, jobsFor(3, "bomb"), 0)
	jm.setOverride(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path != "/jobs/overview" {
			return false
		}
		gzipBomb(w, 1024)
		return true
	})
	w := newWriter()
	a := e.restCase("rest-gzip-bomb", jm, "2s", r, w, func(*agent) {})
	bad := a.metric("flink_rest_decode_errors_total", `endpoint="/jobs/overview"`)
	r.check(bad >= 2, "flink_rest_decode_errors_total{endpoint=\"/jobs/overview\"} = %v", bad)
	a.stop(r)
}

// caseCounterMinInt64: one /checkpoints answer says counts.failed =
// -9223372036854775808; the counters must neither jump nor go backward,
// and the value is counted as invalid.
func caseCounterMinInt64(e *env, r *result) {
	jm := newFakeJM(e, jobsFor(1, "minint"), 0)
	var hostile atomic.Bool
	jm.setOverride(func(w http.ResponseWriter, req *http.Request) bool {
		if !hostile.Load() || !strings.HasSuffix(req.URL.Path, "/checkpoints") {
			return false
		}
		j, _ := find(jm.jobs, strings.Split(req.URL.Path, "/")[2])
		b := string(jm.fixtures["jobs_id_checkpoints.json"])
		b = strings.Replace(b, `"failed": 7`, `"failed": -9223372036854775808`, 1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, strings.ReplaceAll(b, fixtureJob, j.id))
		return true
	})
	w := newWriter()
	var before, failedBefore float64
	a := e.restCase("rest-minint64-count", jm, "1s", r, w, func(a *agent) {
		time.Sleep(2500 * time.Millisecond) // good scrapes: the baseline
		before = a.metric("flink_checkpoints_total")
		failedBefore = a.metric("flink_checkpoint_failures_total")
		hostile.Store(true)
		time.Sleep(2500 * time.Millisecond)
		hostile.Store(false)
	})
	time.Sleep(2 * time.Second) // good answers again
	// The fake's history never changes: nothing may be counted.
	after, failedAfter := a.metric("flink_checkpoints_total"), a.metric("flink_checkpoint_failures_total")
	r.check(after == before, "flink_checkpoints_total %v → %v", before, after)
	r.check(failedAfter == failedBefore, "flink_checkpoint_failures_total %v → %v", failedBefore, failedAfter)
	invalid := a.metric("flink_rest_invalid_values_total")
	r.check(invalid >= 1, "flink_rest_invalid_values_total = %v", invalid)
	a.stop(r)
}

// caseManyJobs: 10,000 running jobs, every answer 5 ms late, read 16 at a
// time (a cluster this size gets flink.scrape_concurrency raised). Every
// job's checkpoints must be read within a few scrape intervals (jobs not
// reached in one scrape go first in the next), flink_up stays 1, and the
// agent's memory stays bounded (checkpoint state for 1,024 jobs).
func caseManyJobs(e *env, r *result) {
	const n = 10_000
	jm := newFakeJM(e, jobsFor(n, "many"), 5*time.Millisecond)
	w := newWriter()
	var up float64
	var took time.Duration
	a := e.restCase("rest-10000-jobs", jm, "5s", r, w, func(a *agent) {
		start := time.Now()
		for jm.observed() < n && time.Since(start) < 75*time.Second {
			time.Sleep(250 * time.Millisecond)
		}
		took = time.Since(start)
		up = a.metric("flink_up")
	}, "scrape_concurrency: 16")
	r.check(jm.observed() == n, "%d of %d jobs observed in %v", jm.observed(), n, took.Round(time.Second))
	r.check(up == 1, "flink_up = %v", up)
	e.t.Logf("10,000 jobs: every one read within %v", took.Round(100*time.Millisecond))
	a.stop(r)
}

// caseLongNames: 20 jobs named with 1 MB each. /metrics must stay small:
// label values are capped with a hash suffix.
func caseLongNames(e *env, r *result) {
	jobs := jobsFor(20, "")
	for i := range jobs {
		jobs[i].name = fmt.Sprintf("job-%02d-", i) + strings.Repeat("n", 1<<20)
	}
	jm := newFakeJM(e, jobs, 0)
	w := newWriter()
	var size int
	a := e.restCase("rest-1mb-job-names", jm, "2s", r, w, func(a *agent) {
		time.Sleep(3 * time.Second)
		body, _ := a.get(e.ctx, "/metrics")
		size = len(body)
	})
	r.check(size > 0 && size < 1<<20, "/metrics is %d bytes", size)
	a.stop(r)
}

// caseCheckConfig: check-config exits 2 naming the key for every
// configuration that used to break only at run time.
func caseCheckConfig(e *env, r *result) {
	dir := filepath.Join(e.dir, "check-config")
	mkdir(e, dir)
	for _, c := range []struct{ key, yaml string }{
		{"loki.headers", "loki:\n  url: http://loki:3100\n  headers: {X-A: \"a\\r\\nX-Injected: b\"}\n"},
		{"loki.external_labels", "loki:\n  external_labels: {\"1bad-name\": x}\n"},
		{"logs.redaction.rules[0].regex", "logs:\n  redaction:\n    rules: [{name: empty, regex: \"\"}]\n"},
		{"flink.stuck_ratio", "flink:\n  stuck_ratio: .nan\n"},
		{"pagerduty.consecutive_failures", "pagerduty:\n  routing_key_file: /etc/hostname\n  consecutive_failures: -3\n"},
		{"flink.scrape_interval", "flink:\n  scrape_interval: 1ns\n"},
		{"logs.poll_interval", "logs:\n  poll_interval: 1ns\n"},
		{"flink.rest_url", "flink:\n  rest_url: http://a:8081\n  rest_url: http://b:8081\n"},
		{"second YAML document", "flink:\n  rest_url: http://a:8081\n---\nflink:\n  rest_url: http://b:8081\n"},
	} {
		path := filepath.Join(dir, strings.NewReplacer(" ", "-", "[", "", "]", "").Replace(c.key)+".yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			e.t.Fatal(err)
		}
		code, out := run(e, "check-config", "--config.file", path)
		r.check(code == 2 && strings.Contains(out, c.key), "%s: exit %d, %q", c.key, code, strings.TrimSpace(out))
	}
	code, out := run(e, "check-config", "--web.listen-address", "127.0.0.1:99999")
	r.check(code == 2 && strings.Contains(out, "web.listen_address"), "--web.listen-address 127.0.0.1:99999: exit %d, %q", code, strings.TrimSpace(out))
}

func run(e *env, args ...string) (int, string) {
	cmd := exec.CommandContext(e.ctx, e.bin, args...)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}
