package testbed

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// needFlink fails the test (never skips it) when `make tools` has not run.
func needFlink(t *testing.T) {
	t.Helper()
	v := FlinkVersion()
	for _, p := range []string{filepath.Join(FlinkHome(v), ".complete"), JobJar(v)} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("Flink %s test bed is missing (%v): run `make tools`", v, err)
		}
	}
	MustTool(t, "java")
}

// startFlink starts a cluster for t and stops it when t ends; on failure it
// keeps the logs in the test's temp dir and prints their tails.
func startFlink(t *testing.T, ctx context.Context, o FlinkOptions) *Flink {
	t.Helper()
	needFlink(t)
	if o.WorkDir == "" {
		o.WorkDir = t.TempDir()
	}
	start := time.Now()
	f, err := StartFlink(ctx, o)
	if err != nil {
		t.Fatalf("StartFlink: %v", err)
	}
	t.Logf("Flink %s up in %s: REST %s, logs in %s", f.Version, time.Since(start).Round(time.Millisecond), f.RESTURL(), f.LogDir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s (tail) ---\n%s", f.JMLog, tailFile(f.JMLog, 6000))
			t.Logf("--- %s (tail) ---\n%s", f.TMLog, tailFile(f.TMLog, 3000))
		}
		s := time.Now()
		f.Stop()
		t.Logf("Flink stopped in %s", time.Since(s).Round(time.Millisecond))
	})
	return f
}

// testLogDir is where a test's Flink logs go: its temp dir, or a directory
// that outlives the test when TESTBED_KEEP_LOGS is set (for post-mortems).
func testLogDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("TESTBED_KEEP_LOGS") == "" {
		return filepath.Join(t.TempDir(), "log")
	}
	d, err := os.MkdirTemp("", "testbed-logs-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keeping logs in %s", d)
	return d
}

// flinkLine is Flink's log4j layout:
// %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
var flinkLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S+ *\[\] - `)

// grepLog returns the first line of path matching re, or "".
func grepLog(t *testing.T, path string, re *regexp.Regexp) string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if re.MatchString(sc.Text()) {
			return sc.Text()
		}
	}
	return ""
}

// waitLog waits until a line of path matches re.
func waitLog(t *testing.T, ctx context.Context, path string, re *regexp.Regexp) string {
	t.Helper()
	for {
		if l := grepLog(t, path, re); l != "" {
			return l
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no line matching %q in %s", re, path)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func TestFlinkCheckpointFaults(t *testing.T) {
	NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logDir := testLogDir(t)
	f := startFlink(t, ctx, FlinkOptions{
		LogDir:             logDir,
		CheckpointInterval: time.Second,
		CheckpointTimeout:  3 * time.Second,
	})
	job, err := f.SubmitJob(ctx, JobOptions{Parallelism: 8})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.WaitCheckpoints(ctx, job, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after start: %+v", c)

	// A failing asynchronous phase: the tasks decline, the job keeps running.
	if err := f.SetFault(FaultFail, ""); err != nil {
		t.Fatal(err)
	}
	before := c
	c, err = f.WaitCheckpointsFunc(ctx, job, func(c CheckpointCounts) bool { return c.Failed > before.Failed })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("with fault %q: %+v", FaultFail, c)
	if c.Restored != before.Restored {
		t.Errorf("fault %q restarted the job: %+v -> %+v", FaultFail, before, c)
	}
	var cps struct {
		Latest struct {
			Failed *struct {
				ID             int64  `json:"id"`
				Status         string `json:"status"`
				ClassName      string `json:"className"`
				FailureMessage string `json:"failure_message"`
			} `json:"failed"`
		} `json:"latest"`
	}
	if err := f.GetJSON(ctx, "/jobs/"+job+"/checkpoints", &cps); err != nil {
		t.Fatal(err)
	}
	if lf := cps.Latest.Failed; lf == nil || lf.Status != "FAILED" || lf.ClassName != "failed" || lf.FailureMessage != "Asynchronous task checkpoint failed." {
		t.Errorf("latest.failed = %+v, want status FAILED, className failed, failure_message %q", lf, "Asynchronous task checkpoint failed.")
	}
	if err := f.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	completed := c.Completed
	if c, err = f.WaitCheckpoints(ctx, job, completed+2); err != nil {
		t.Fatal(err)
	}
	t.Logf("after clearing: %+v", c)

	// A snapshot that sleeps past the timeout: the checkpoint expires.
	if err := f.SetFault(FaultSleepMS, "4500"); err != nil {
		t.Fatal(err)
	}
	failedBefore := c.Failed
	if c, err = f.WaitCheckpointsFunc(ctx, job, func(c CheckpointCounts) bool { return c.Failed > failedBefore }); err != nil {
		t.Fatal(err)
	}
	t.Logf("with fault %q: %+v", FaultSleepMS, c)
	if err := f.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	if c, err = f.WaitCheckpoints(ctx, job, c.Completed+2); err != nil {
		t.Fatal(err)
	}
	t.Logf("after clearing: %+v", c)

	host, _ := os.Hostname()
	for _, name := range []string{"flink--standalonesession-0-" + host + ".log", "flink--taskexecutor-0-" + host + ".log"} {
		p := filepath.Join(logDir, name)
		if l := grepLog(t, p, flinkLine); l == "" {
			t.Errorf("%s: no line in Flink's layout", p)
		}
	}
	completedRe := regexp.MustCompile(`^\S+ \S+ INFO  org\.apache\.flink\.runtime\.checkpoint\.CheckpointCoordinator +\[\] - Completed checkpoint \d+ for job ` + job + ` \(\d+ bytes, checkpointDuration=\d+ ms, finalizationTime=\d+ ms\)\.$`)
	if !strings.HasPrefix(f.Version, "1.") {
		completedRe = regexp.MustCompile(`Completed checkpoint \d+ for job ` + job)
	}
	t.Logf("JobManager: %s", waitLog(t, ctx, f.JMLog, completedRe))
	t.Logf("JobManager: %s", waitLog(t, ctx, f.JMLog, regexp.MustCompile(`Checkpoint \d+ of job `+job+` expired before completing\.`)))
	t.Logf("JobManager: %s", waitLog(t, ctx, f.JMLog, regexp.MustCompile(`Decline checkpoint \d+ by task .* of job `+job)))
}
