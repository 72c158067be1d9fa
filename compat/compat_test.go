package compat_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/collector"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
	cpsink "github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/logscan"
	"github.com/flink-agent/flink-agent/shipper"
	"github.com/flink-agent/flink-agent/testbed"
)

// row is one version's line of the compatibility table.
type row struct {
	version string
	// checkpoints counted by the agent and by Flink (REST counts).
	completed, flinkCompleted float64
	failed, flinkFailed       float64
	reasons                   map[string]float64 // flink_checkpoint_failures_total by reason
	// lifecycle lines: recognised by logscan / found in the log by this test.
	lines, logLines map[string]int
	unrecognized    float64
	requests        []float64 // per steady scrape
	progress        string    // records in/out per second, backlog, watermark lag
	lost            string    // reason of the lost TaskManager, and how fast
	passed          bool
}

// TestCompat runs, per Flink version of testbed.CompatVersions, one real
// cluster with the test bed's job and the agent's collector, shipper and
// log scanner beside it; it completes checkpoints, makes them fail three
// ways (declined, expired, task failure), kills the TaskManager (SIGKILL)
// and cancels the job, then checks:
//   - flink_checkpoints_total{status} equals Flink's counts (completed,
//     failed) and the failures by reason add up to Flink's failed count;
//   - every checkpoint lifecycle line of the JobManager log (triggered,
//     completed, failed, job state, lost TaskManager) reached the agent,
//     found independently with this file's regular expressions, and none
//     was unrecognised;
//   - a steady scrape makes at most 3 + 3·jobs REST requests
//     (configuration, details of new failures and exceptions aside);
//   - records flow in and out (flink_job_records_{in,out}_per_second > 0),
//     the source's backlog and the watermark lag are read;
//   - the lost TaskManager is reported from the log within seconds of its
//     line, reason unreachable, in flink_taskmanagers_lost_total.
//
// It prints the table and writes it to $COMPAT_TABLE (default
// $FLINK_AGENT_CACHE/compat-table.md).
func TestCompat(t *testing.T) {
	testbed.NeedsTools(t)
	var rows []*row
	for _, v := range testbed.CompatVersions() {
		r := &row{version: v}
		rows = append(rows, r)
		t.Run(v, func(t *testing.T) {
			runVersion(t, r)
			r.passed = !t.Failed()
		})
	}
	table := render(rows)
	t.Logf("compatibility table:\n%s", table)
	path := os.Getenv("COMPAT_TABLE")
	if path == "" {
		path = filepath.Join(testbed.CacheDir(), "compat-table.md")
	}
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		t.Errorf("writing the table: %v", err)
	}
}

func render(rows []*row) string {
	var b strings.Builder
	b.WriteString("| Flink | checkpoints counted = Flink's | failures by reason (total = Flink's) | lifecycle lines recognised | REST requests per scrape | progress | lost TaskManager | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		var reasons []string
		for _, k := range sortedKeys(r.reasons) {
			reasons = append(reasons, fmt.Sprintf("%s %g", k, r.reasons[k]))
		}
		var lines []string
		got, want := 0, 0
		for _, k := range sortedKeys(r.logLines) {
			got += r.lines[k]
			want += r.logLines[k]
			lines = append(lines, fmt.Sprintf("%s %d/%d", k, r.lines[k], r.logLines[k]))
		}
		result := "FAIL"
		if r.passed {
			result = "pass"
		}
		fmt.Fprintf(&b, "| %s | %g = %g | %s (%g = %g) | %d/%d (%s; unrecognised %g) | %s | %s | %s | %s |\n",
			r.version, r.completed, r.flinkCompleted, strings.Join(reasons, ", "), r.failed, r.flinkFailed,
			got, want, strings.Join(lines, ", "), r.unrecognized, fmtRequests(r.requests), r.progress, r.lost, result)
	}
	return b.String()
}

func fmtRequests(rs []float64) string {
	if len(rs) == 0 {
		return "-"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%g", r)
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// countingSink is the checkpoint watch with a tally of what logscan fed it:
// distinct checkpoints per lifecycle kind, job state lines, lost
// TaskManagers.
type countingSink struct {
	*checkpointwatch.Watch
	mu     sync.Mutex
	seen   map[string]map[string]bool // kind → job/checkpoint
	states int
	lost   map[string]logscan.LossReason
	lostAt time.Time
}

func newCountingSink(w *checkpointwatch.Watch) *countingSink {
	return &countingSink{Watch: w, seen: map[string]map[string]bool{}, lost: map[string]logscan.LossReason{}}
}

func (c *countingSink) note(kind, job string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[kind] == nil {
		c.seen[kind] = map[string]bool{}
	}
	c.seen[kind][fmt.Sprintf("%s/%d", job, id)] = true
}

func (c *countingSink) ObserveLogTriggered(job string, id int64, t time.Time, savepoint bool) {
	c.note("triggered", job, id)
	c.Watch.ObserveLogTriggered(job, id, t, savepoint)
}

func (c *countingSink) ObserveLogCompleted(job string, id int64, t time.Time, bytes int64, d time.Duration) {
	c.note("completed", job, id)
	c.Watch.ObserveLogCompleted(job, id, t, bytes, d)
}

func (c *countingSink) ObserveLogFailed(job string, id int64, t time.Time, r checkpointwatch.Reason, msg string, s3 bool) {
	c.note("failed", job, id)
	c.Watch.ObserveLogFailed(job, id, t, r, msg, s3)
}

func (c *countingSink) ObserveLogJobState(job, name, from, to string, t time.Time) {
	c.mu.Lock()
	c.states++
	c.mu.Unlock()
	c.Watch.ObserveLogJobState(job, name, from, to, t)
}

func (c *countingSink) ObserveTaskManagerLost(id string, reason logscan.LossReason, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lost[id] = reason
	if c.lostAt.IsZero() {
		c.lostAt = time.Now()
	}
}

func (c *countingSink) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{"job_state": c.states, "taskmanager_lost": len(c.lost)}
	for _, k := range []string{"triggered", "completed", "failed"} {
		out[k] = len(c.seen[k])
	}
	return out
}

// The lifecycle lines as this test finds them in the JobManager log: log4j
// headers only (stack traces quote some of these messages).
var (
	reHeader    = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} `)
	reTriggered = regexp.MustCompile(` - Triggering checkpoint (\d+) \(type=.*\) @ \d+ for job ([0-9a-f]{32})\.$`)
	reCompleted = regexp.MustCompile(` - Completed checkpoint (\d+) for job ([0-9a-f]{32}) \(`)
	reFailure   = regexp.MustCompile(` - (?:Checkpoint (\d+) of job ([0-9a-f]{32}) expired before completing\.|Decline checkpoint (\d+) by task \S+ of job ([0-9a-f]{32}) |Failed to trigger or complete checkpoint (\d+) for job ([0-9a-f]{32})\.)`)
	reJobState  = regexp.MustCompile(` - Job .* \([0-9a-f]{32}\) switched from state [A-Z]+ to [A-Z]+\.$`)
	reLostTM    = regexp.MustCompile(` - (?:The heartbeat of TaskManager with id (\S+) timed out\.|Heartbeat of TaskManager with id (\S+) timed out\.|TaskManager with id (\S+) is no longer reachable\.)$`)
)

// logCounts counts the lifecycle lines of a JobManager log as countingSink
// counts what logscan reports.
func logCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	seen := map[string]map[string]bool{"triggered": {}, "completed": {}, "failed": {}, "taskmanager_lost": {}}
	states := 0
	first := func(m []string) string {
		for _, s := range m[1:] {
			if s != "" {
				return s
			}
		}
		return ""
	}
	pair := func(m []string) string {
		for i := 1; i+1 < len(m); i += 2 {
			if m[i] != "" {
				return m[i+1] + "/" + m[i]
			}
		}
		return ""
	}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !reHeader.MatchString(l) {
			continue
		}
		if m := reTriggered.FindStringSubmatch(l); m != nil {
			seen["triggered"][m[2]+"/"+m[1]] = true
		} else if m := reCompleted.FindStringSubmatch(l); m != nil {
			seen["completed"][m[2]+"/"+m[1]] = true
		} else if m := reFailure.FindStringSubmatch(l); m != nil {
			seen["failed"][pair(m)] = true
		} else if reJobState.MatchString(l) {
			states++
		} else if m := reLostTM.FindStringSubmatch(l); m != nil {
			seen["taskmanager_lost"][first(m)] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{"job_state": states}
	for k, v := range seen {
		out[k] = len(v)
	}
	return out
}

// firstLossLine is the time of the JobManager log's first lost-TaskManager
// line (log4j writes local time, to the millisecond).
func firstLossLine(t *testing.T, path string) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if reHeader.MatchString(l) && reLostTM.MatchString(l) {
			ts, err := time.ParseInLocation("2006-01-02 15:04:05,000", l[:23], time.Local)
			if err != nil {
				t.Fatal(err)
			}
			return ts
		}
	}
	t.Fatalf("no lost TaskManager line in %s", path)
	return time.Time{}
}

func runVersion(t *testing.T, r *row) {
	v := r.version
	for _, p := range []string{filepath.Join(testbed.FlinkHome(v), ".complete"), testbed.JobJar(v)} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("Flink %s is not installed (%v): run `FLINK_VERSIONS=%s scripts/tools.sh flink job` (or `make tools`)", v, err, v)
		}
	}
	testbed.MustTool(t, "java")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	if os.Getenv("TESTBED_KEEP_LOGS") != "" {
		var err error
		if work, err = os.MkdirTemp("", "compat-"+v+"-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping Flink's files in %s", work)
	}
	const timeout = 3 * time.Second
	f, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		Version:            v,
		WorkDir:            filepath.Join(work, "flink"),
		CheckpointInterval: time.Second,
		CheckpointTimeout:  timeout,
		Slots:              2,
		// Flink notices a dead TaskManager at its next heartbeat (10 s by
		// default): sooner here, so the test does not wait.
		Extra: map[string]string{"heartbeat.interval": "2000"},
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

	// The agent, as a JobManager sidecar: collector, shipper tailing the
	// JobManager's log, scanner feeding the watch.
	id := identity.Identity{Cluster: "compat", Namespace: "compat", Pod: "jm-0", Component: "jobmanager"}
	logs := &testbed.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()
	cfg := config.Default()
	cfg.Flink.RestURL = f.RESTURL()
	cfg.Flink.ScrapeInterval = config.Duration(time.Second)
	cfg.Flink.ScrapeTimeout = config.Duration(5 * time.Second)
	scrapes := make(chan bool, 1000)
	watch, err := cpsink.Watch(cpsink.Options{Registerer: reg, Identity: id, Logger: log, StuckRatio: cfg.Flink.StuckRatio})
	if err != nil {
		t.Fatal(err)
	}
	coll, err := collector.New(collector.Options{Flink: cfg.Flink, Registerer: reg, Logger: log, Watch: watch,
		OnScrape: func(ok bool) { scrapes <- ok }})
	if err != nil {
		t.Fatal(err)
	}
	sink := newCountingSink(watch)
	scanner, err := logscan.New(logscan.Options{Registerer: reg, Logger: log, Identity: id, Checkpoints: sink, TaskManagers: sink,
		ThrottleWindow: cfg.Logs.ThrottleWindow.D()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logs.Paths = []string{f.JMLog}
	cfg.Logs.PositionsFile = filepath.Join(work, "positions.json")
	sh, err := shipper.New(shipper.Options{Logs: cfg.Logs, Loki: cfg.Loki, Identity: id, Registerer: reg,
		Logger: log, Observers: []logevent.Observer{scanner}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{coll.Run, sh.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(runCtx) }()
	}
	defer func() { stop(); wg.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("--- agent log ---\n%s", logs.String())
		}
	}()
	next := func() bool {
		t.Helper()
		select {
		case ok := <-scrapes:
			return ok
		case <-ctx.Done():
			t.Fatal("no scrape")
			return false
		}
	}
	// The first successful scrape sees no job.
	for ok := false; !ok; {
		ok = next()
	}

	job, err := f.SubmitJob(ctx, testbed.JobOptions{Parallelism: 2})
	must(t, err)
	must(t, f.WaitJobRunning(ctx, job))
	cs, err := f.WaitCheckpoints(ctx, job, 3)
	must(t, err)

	// REST economy: requests of steady scrapes, between two scrapes so
	// that none is half counted. A scrape whose time budget (four fifths
	// of the 1 s interval) ran out before it reached the job leaves it to
	// the next one: not a steady scrape.
	for deferred := 0; len(r.requests) < 3; {
		drain(scrapes)
		next()
		before := requestsByRoute(t, reg)
		if !next() {
			continue
		}
		after := requestsByRoute(t, reg)
		if after["/jobs/:jobid"] == before["/jobs/:jobid"] {
			deferred++
			if deferred > 10 {
				t.Fatal("10 scrapes did not reach the job")
			}
			continue
		}
		n := 0.0
		for route, c := range after {
			switch route {
			case "/jobs/:jobid/checkpoints/config", "/jobs/:jobid/checkpoints/details/:checkpointid", "/jobs/:jobid/exceptions":
			default:
				n += c - before[route]
			}
		}
		r.requests = append(r.requests, n)
	}
	for _, n := range r.requests {
		if n < 3+2*1 || n > 3+3*1 {
			t.Errorf("a steady scrape made %v requests besides configuration, details and exceptions; want 3 + 2·1 to 3 + 3·1 (all: %v)", n, r.requests)
		}
	}

	// Checkpoint failures three ways, each until Flink counts it.
	inject := func(kind, value string, until func(c testbed.CheckpointCounts) bool) {
		t.Helper()
		must(t, f.SetFault(kind, value))
		c, err := f.WaitCheckpointsFunc(ctx, job, until)
		must(t, err)
		must(t, f.ClearFaults())
		must(t, f.WaitJobRunning(ctx, job))
		cs, err = f.WaitCheckpoints(ctx, job, c.Completed+2)
		must(t, err)
	}
	before := cs
	inject(testbed.FaultFail, "", func(c testbed.CheckpointCounts) bool { return c.Failed > before.Failed })
	before = cs
	inject(testbed.FaultSleepMS, fmt.Sprint((timeout + 1500*time.Millisecond).Milliseconds()), func(c testbed.CheckpointCounts) bool { return c.Failed > before.Failed })
	before = cs
	inject(testbed.FaultFailSync, "", func(c testbed.CheckpointCounts) bool { return c.Restored > before.Restored })

	// The agent's counts against Flink's, right after a scrape (Flink
	// serves the counts from a cache refreshed every 3 s, so the scrape
	// and this read see the same counts unless a refresh falls between
	// them): a checkpoint counted twice or missed never matches.
	eventually(t, ctx, "flink_checkpoints_total equal to Flink's counts", func() (bool, string) {
		drain(scrapes)
		next()
		c, err := f.Checkpoints(ctx, job)
		must(t, err)
		mfs := gather(t, reg)
		r.flinkCompleted, r.flinkFailed = float64(c.Completed), float64(c.Failed)
		r.completed = sum(mfs, "flink_checkpoints_total", "status", "completed", "kind", "checkpoint")
		r.failed = sum(mfs, "flink_checkpoints_total", "status", "failed", "kind", "checkpoint")
		r.reasons = byLabel(mfs, "flink_checkpoint_failures_total", "reason")
		return r.completed == r.flinkCompleted && r.failed == r.flinkFailed,
			fmt.Sprintf("completed %g (Flink %g), failed %g (Flink %g)", r.completed, r.flinkCompleted, r.failed, r.flinkFailed)
	})
	total := 0.0
	for _, n := range r.reasons {
		total += n
	}
	if total != r.flinkFailed {
		t.Errorf("failures by reason %v add up to %g, Flink counted %g failed", r.reasons, total, r.flinkFailed)
	}
	for _, want := range []string{"async_failure", "expired", "task_failure"} {
		if r.reasons[want] < 1 {
			t.Errorf("no failure with reason %s: %v", want, r.reasons)
		}
	}

	// The job's progress, read as the collector reads it (/jobs/:id counts
	// and one subtask-metrics request per scrape): records flow in and
	// out, the source reports its backlog, event time has a watermark.
	eventually(t, ctx, "the job's progress", func() (bool, string) {
		mfs := gather(t, reg)
		var got []string
		ok := true
		for _, m := range []struct {
			name     string
			positive bool
		}{
			{"flink_job_records_in_per_second", true}, {"flink_job_records_out_per_second", true},
			{"flink_job_source_pending_records", false}, {"flink_job_watermark_lag_seconds", false},
		} {
			v, found := value(mfs, m.name)
			ok = ok && found && (!m.positive || v > 0)
			got = append(got, fmt.Sprintf("%s %.3g", strings.TrimPrefix(m.name, "flink_job_"), v))
		}
		r.progress = strings.Join(got, ", ")
		return ok, r.progress
	})

	// A lost TaskManager: its JVM killed as the OOM killer would.
	killed := time.Now()
	must(t, f.TM.Signal(syscall.SIGKILL))
	eventually(t, ctx, "the lost TaskManager reported from the log", func() (bool, string) {
		c := sink.counts()
		return c["taskmanager_lost"] > 0, fmt.Sprintf("%v", c)
	})
	logged := firstLossLine(t, f.JMLog)
	sink.mu.Lock()
	for _, reason := range sink.lost {
		// Flink takes up to a heartbeat interval to notice; the agent reads
		// the line within its poll interval (1 s), far within a scrape
		// interval (15 s by default).
		lag := sink.lostAt.Sub(logged)
		r.lost = fmt.Sprintf("%s, %s after the kill, %s after the log line", reason,
			logged.Sub(killed).Round(100*time.Millisecond), lag.Round(10*time.Millisecond))
		if reason != logscan.LossUnreachable {
			t.Errorf("lost TaskManager reason %s, want %s", reason, logscan.LossUnreachable)
		}
		if lag > 5*time.Second {
			t.Errorf("lost TaskManager reported %s after the JobManager logged it, want within 5 s (poll interval 1 s)", lag)
		}
	}
	sink.mu.Unlock()
	mfs := gather(t, reg)
	if n, u := sum(mfs, logscan.MetricTaskManagersLost), sum(mfs, logscan.MetricTaskManagersLost, "reason", "unreachable"); n != 1 || u != 1 {
		t.Errorf("%s: %g in all, %g unreachable; want 1 unreachable", logscan.MetricTaskManagersLost, n, u)
	}

	// Cancel the job: the log stops growing.
	must(t, f.CancelJob(ctx, job))
	must(t, f.WaitJobState(ctx, job, "CANCELED"))

	eventually(t, ctx, "every lifecycle line of the JobManager log recognised", func() (bool, string) {
		r.lines, r.logLines = sink.counts(), logCounts(t, f.JMLog)
		return fmt.Sprint(r.lines) == fmt.Sprint(r.logLines), fmt.Sprintf("logscan %v, log %v", r.lines, r.logLines)
	})
	r.unrecognized = sum(gather(t, reg), "flink_agent_logscan_unrecognized_lines_total")
	if r.unrecognized != 0 {
		t.Errorf("%g lifecycle lines in an unknown form:\n%s", r.unrecognized, logs.String())
	}
}

// eventually is testbed.Eventually with a minute to wait.
func eventually(t *testing.T, ctx context.Context, what string, f func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	testbed.Eventually(ctx, t, what, f)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
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

func gather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// sum adds a family's series whose labels include the pairs given.
func sum(mfs []*dto.MetricFamily, name string, labels ...string) float64 {
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			l := testbed.LabelsOf(m)
			for i := 0; i+1 < len(labels); i += 2 {
				if l[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// value is a family's only series' value, and whether it has one.
func value(mfs []*dto.MetricFamily, name string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return sum(mfs, name), true
		}
	}
	return 0, false
}

// byLabel sums a counter family by one label's values.
func byLabel(mfs []*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				out[testbed.LabelsOf(m)[label]] += v
			}
		}
	}
	return out
}

// requestsByRoute sums flink_rest_requests_total per endpoint.
func requestsByRoute(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, mf := range gather(t, g) {
		if mf.GetName() != "flink_rest_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[testbed.LabelsOf(m)["endpoint"]] += m.GetCounter().GetValue()
		}
	}
	return out
}
