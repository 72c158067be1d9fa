package collector

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/testbed"
)

// gatherValue returns a series' value (a histogram's count), or -1 when it
// does not exist.
func gatherValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, err := testbed.GatherValue(g, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// requestsByRoute sums flink_rest_requests_total per endpoint.
func requestsByRoute(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "flink_rest_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "endpoint" {
					out[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func cancelJob(ctx context.Context, f *testbed.Flink, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, f.RESTURL()+"/jobs/"+id+"?mode=cancel", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cancel %s: %s", id, resp.Status)
	}
	return nil
}

// completedInLog counts the distinct checkpoint ids the JobManager logged
// as completed for job.
func completedInLog(t *testing.T, path, job string) int {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	re := regexp.MustCompile(`Completed checkpoint (\d+) for job ` + job + ` `)
	ids := map[string]bool{}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			ids[m[1]] = true
		}
	}
	return len(ids)
}

const e2eJobName = "flink-agent testbed checkpointing job"

// TestEndToEndOnFlink runs the collector beside a real Flink (the test bed)
// with DogStatsD going to a real statsd_exporter:
//   - REST requests per steady scrape are at most 3 + 3·jobs at parallelism 1 and 8;
//   - after N completed checkpoints, flink_checkpoints_total{completed}
//     equals Flink's counts.completed and the duration histogram's count
//     equals the distinct completed ids the JobManager logged;
//   - a snapshot sleeping past the timeout makes flink_checkpoint_stuck 1
//     before the checkpoint expires, and failures{reason="expired"} rise
//     within a scrape of Flink reporting it;
//   - statsd_exporter shows the DogStatsD counterparts with their tags.
func TestEndToEndOnFlink(t *testing.T) {
	testbed.NeedsTools(t)
	testbed.MustTool(t, "java")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	se, err := testbed.StartStatsdExporter(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer se.Stop()
	const timeoutMS = 10000
	work := t.TempDir()
	f, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		WorkDir:            work,
		CheckpointInterval: time.Second,
		CheckpointTimeout:  timeoutMS * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("JobManager log: %s", f.JMLog)
		}
	}()

	sd, err := dogstatsd.New(se.UDPAddr, edgeIdentity.Tags(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	reg := prometheus.NewRegistry()
	fc := config.Default().Flink
	fc.RestURL = f.RESTURL()
	fc.ScrapeInterval = config.Duration(time.Second)
	fc.ScrapeTimeout = config.Duration(5 * time.Second)
	scrapes := make(chan bool, 1000)
	w := testWatch(t, sink.Options{Registerer: reg, Statsd: sd, StuckRatio: fc.StuckRatio, Identity: edgeIdentity})
	c, err := New(Options{Flink: fc, Registerer: reg, Statsd: sd, Watch: w,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnScrape: func(ok bool) { scrapes <- ok }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = c.Run(runCtx) }()
	defer func() { stopRun(); wg.Wait() }()

	next := func() bool { // waits for the next scrape
		t.Helper()
		select {
		case ok := <-scrapes:
			return ok
		case <-ctx.Done():
			t.Fatal("no scrape")
			return false
		}
	}
	// The first successful scrape sees no job: jobs submitted later are
	// counted from their first checkpoint.
	for ok := false; !ok; {
		ok = next()
	}

	// REST economy at parallelism 1 and 8: the requests of steady scrapes,
	// beyond the once-per-job configuration, the details of new failed or
	// slow checkpoints and the exceptions of a restart.
	steady := map[int][]float64{}
	var job string
	var jobs []string // both run under one name: its series sum them
	var cancelled time.Time
	for _, par := range []int{1, 8} {
		if job != "" {
			must(t, cancelJob(ctx, f, job))
			cancelled = time.Now()
		}
		job, err = f.SubmitJob(ctx, testbed.JobOptions{Parallelism: par, RecordsPerSecond: 50})
		must(t, err)
		jobs = append(jobs, job)
		must(t, f.WaitJobRunning(ctx, job))
		_, err = f.WaitCheckpoints(ctx, job, 2)
		must(t, err)
		// The cancelled job's statistics are read for finalWindow more.
		time.Sleep(time.Until(cancelled.Add(finalWindow + fc.ScrapeInterval.D())))
		for deferred := 0; len(steady[par]) < 4; {
			// Between two scrapes (1 s apart), so that none is half counted.
			drain(scrapes)
			next()
			before := requestsByRoute(t, reg)
			if !next() {
				continue
			}
			after := requestsByRoute(t, reg)
			if after[routeJob] == before[routeJob] {
				// The scrape's time budget (four fifths of the interval) ran
				// out before it reached the job: the next one reads it first.
				deferred++
				if deferred > 10 {
					t.Fatal("10 scrapes did not reach the job")
				}
				continue
			}
			n := 0.0
			for route, v := range after {
				switch route {
				case routeCPConfig, routeCPDetails, routeExceptions:
				default:
					n += v - before[route]
				}
			}
			steady[par] = append(steady[par], n)
		}
		// Per job /jobs/:id, its checkpoints and at most one subtask-metrics
		// request for its progress.
		for _, n := range steady[par] {
			if n < 3+2*1 || n > 3+3*1 {
				t.Errorf("parallelism %d: a scrape made %v requests besides configuration, details and exceptions; want 3 + 2·1 to 3 + 3·1 (all: %v)", par, n, steady[par])
			}
		}
	}
	t.Logf("requests per steady scrape: parallelism 1 %v, parallelism 8 %v", steady[1], steady[8])

	// N completed checkpoints of the parallelism-8 job, then a snapshot that
	// sleeps past the timeout: completions stop, the checkpoint in progress
	// ages, is stuck, and expires.
	const n = 8
	_, err = f.WaitCheckpoints(ctx, job, n)
	must(t, err)
	must(t, f.SetFault(testbed.FaultSleepMS, "15000"))
	var stuckAt, expiredAt time.Time
	expiredBefore := gatherValue(t, reg, "flink_checkpoint_failures_total", "job_name", e2eJobName, "reason", "expired")
	for expiredAt.IsZero() {
		select {
		case <-ctx.Done():
			t.Fatalf("no expiry seen (stuck at %v)", stuckAt)
		case <-time.After(50 * time.Millisecond):
		}
		if stuckAt.IsZero() && gatherValue(t, reg, "flink_checkpoint_stuck", "job_name", e2eJobName) == 1 {
			stuckAt = time.Now()
		}
		if gatherValue(t, reg, "flink_checkpoint_failures_total", "job_name", e2eJobName, "reason", "expired") > expiredBefore {
			expiredAt = time.Now()
		}
	}
	var latest struct {
		Latest struct {
			Failed *struct {
				ID             int64  `json:"id"`
				Trigger        int64  `json:"trigger_timestamp"`
				FailureTime    int64  `json:"failure_timestamp"`
				FailureMessage string `json:"failure_message"`
			} `json:"failed"`
		} `json:"latest"`
	}
	must(t, f.GetJSON(ctx, "/jobs/"+job+"/checkpoints", &latest))
	lf := latest.Latest.Failed
	if lf == nil || !strings.Contains(lf.FailureMessage, "expired") {
		t.Fatalf("Flink's latest failed checkpoint: %+v", lf)
	}
	failedAt := time.UnixMilli(lf.FailureTime)
	t.Logf("checkpoint %d: triggered %s, stuck=1 after %v, expired in Flink after %v, counted %v after that",
		lf.ID, time.UnixMilli(lf.Trigger).Format(time.StampMilli), stuckAt.Sub(time.UnixMilli(lf.Trigger)).Round(time.Millisecond),
		failedAt.Sub(time.UnixMilli(lf.Trigger)).Round(time.Millisecond), expiredAt.Sub(failedAt).Round(time.Millisecond))
	if stuckAt.IsZero() || !stuckAt.Before(failedAt) {
		t.Errorf("flink_checkpoint_stuck went to 1 at %v, not before the expiry at %v", stuckAt, failedAt)
	}
	// Flink serves checkpoint statistics from a cache refreshed every
	// web.refresh-interval (3 s): one scrape after that shows the expiry.
	if d := expiredAt.Sub(failedAt); d > 3*time.Second+fc.ScrapeInterval.D()+2*time.Second {
		t.Errorf("failures{reason=expired} rose %v after the expiry: more than one scrape after REST showed it", d)
	}

	// Completions are frozen while the fault is on: compare the counts,
	// summed over the cancelled parallelism-1 job and the running one (the
	// cancelled one's last checkpoints were read once after it stopped).
	// Expiries go on under the fault: compare in a window where Flink's
	// counts did not move across two scrapes.
	sum := func() (c testbed.CheckpointCounts) {
		for _, id := range jobs {
			x, err := f.Checkpoints(ctx, id)
			must(t, err)
			c.Completed += x.Completed
			c.Failed += x.Failed
		}
		return c
	}
	var counts testbed.CheckpointCounts
	var got, hist, failedTotal float64
	for try := 0; ; try++ {
		before := sum()
		next()
		next()
		got = gatherValue(t, reg, "flink_checkpoints_total", "job_name", e2eJobName, "kind", "checkpoint", "status", "completed")
		hist = gatherValue(t, reg, "flink_checkpoint_duration_seconds", "job_name", e2eJobName, "kind", "checkpoint")
		failedTotal = gatherValue(t, reg, "flink_checkpoints_total", "job_name", e2eJobName, "kind", "checkpoint", "status", "failed")
		if counts = sum(); counts == before {
			break
		}
		if try == 10 {
			t.Fatalf("Flink's counts never held still for two scrapes: %+v → %+v", before, counts)
		}
	}
	distinct := 0
	for _, id := range jobs {
		distinct += completedInLog(t, f.JMLog, id)
	}
	t.Logf("Flink counts (both jobs) %+v; flink_checkpoints_total{completed} %v; histogram count %v; distinct completed ids in the JobManager log %d",
		counts, got, hist, distinct)
	if got != float64(counts.Completed) {
		t.Errorf("flink_checkpoints_total{completed} = %v, Flink's counts.completed = %d", got, counts.Completed)
	}
	if hist != float64(distinct) {
		t.Errorf("duration histogram count = %v, distinct completed ids in the log = %d", hist, distinct)
	}
	if failedTotal != float64(counts.Failed) {
		t.Errorf("flink_checkpoints_total{failed} = %v, Flink's counts.failed = %d", failedTotal, counts.Failed)
	}

	// The cluster, JVM, job and vertex gauges from the same scrapes.
	for _, c := range []struct {
		name     string
		labels   []string
		min, max float64
	}{
		{"flink_up", nil, 1, 1},
		{"flink_cluster_taskmanagers", nil, 1, 1},
		{"flink_cluster_slots_total", nil, 8, 8},
		{"flink_cluster_jobs", []string{"state", "RUNNING"}, 1, 1},
		{"flink_cluster_jobs", []string{"state", "CANCELED"}, 1, 1},
		{"flink_job_info", []string{"job_id", job, "state", "RUNNING"}, 1, 1},
		{"flink_job_uptime_seconds", []string{"job_name", e2eJobName}, 1, 600},
		{"flink_jvm_heap_used_bytes", []string{"component", "jobmanager"}, 1 << 20, 1 << 30},
		{"flink_jvm_heap_used_bytes", []string{"component", "taskmanager"}, 1 << 20, 1 << 30},
		{"flink_jvm_heap_max_bytes", []string{"component", "taskmanager"}, 1 << 20, 1 << 30},
		{"flink_jvm_gc_time_seconds_total", []string{"component", "jobmanager"}, 0, 600},
		{"flink_jvm_gc_time_seconds_total", []string{"component", "taskmanager"}, 0, 600},
		{"flink_vertex_busy_ratio", []string{"job_name", e2eJobName, "vertex", "Source: sequence -> throttle"}, 0, 1},
		{"flink_vertex_backpressure_ratio", []string{"job_name", e2eJobName, "vertex", "Source: sequence -> throttle"}, 0, 1},
		{"flink_checkpoint_timeout_seconds", []string{"job_name", e2eJobName}, timeoutMS / 1000, timeoutMS / 1000},
		{"flink_checkpoint_interval_seconds", []string{"job_name", e2eJobName}, 1, 1},
	} {
		if v := gatherValue(t, reg, c.name, c.labels...); v < c.min || v > c.max {
			t.Errorf("%s%v = %v, want within [%v, %v]", c.name, c.labels, v, c.min, c.max)
		}
	}

	// The DogStatsD side, in a real statsd_exporter.
	must(t, sd.Flush())
	tags := func(extra ...string) map[string]string {
		l := map[string]string{"cluster": "c1", "namespace": "streaming", "pod": "orders-jm-0", "component": "jobmanager", "job_name": e2eJobName}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	var last string
	err = testbed.WaitFor(ctx, se.Proc, 250*time.Millisecond, func(ctx context.Context) error {
		mfs, err := se.Metrics(ctx)
		if err != nil {
			return err
		}
		checks := []struct {
			name string
			l    map[string]string
			want float64
		}{
			{"flink_checkpoint_completed", tags("kind", "checkpoint"), float64(counts.Completed)},
			{"flink_checkpoint_duration", tags("kind", "checkpoint"), float64(distinct)},
		}
		for _, ch := range checks {
			if v, ok := find(mfs[ch.name], ch.l); !ok || v != ch.want {
				last = fmt.Sprintf("%s%v = %v (found %v), want %v", ch.name, ch.l, v, ok, ch.want)
				return fmt.Errorf("%s", last)
			}
		}
		if v, ok := find(mfs["flink_checkpoint_failed"], tags("kind", "checkpoint", "reason", "expired")); !ok || v < 1 {
			last = fmt.Sprintf("flink_checkpoint_failed{reason=expired} = %v (found %v)", v, ok)
			return fmt.Errorf("%s", last)
		}
		return nil
	})
	if err != nil {
		t.Errorf("statsd_exporter: %s", last)
	}
	must(t, f.ClearFaults())
}

func drain(ch chan bool) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
