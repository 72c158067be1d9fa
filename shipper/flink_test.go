package shipper

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/testbed"
)

// TestFlinkLogsToLoki runs a real Flink (JobManager and TaskManager, log4j
// rolling every 32 KB) with the test bed's checkpointing job, makes its
// checkpoints fail for a while (stack traces in the JobManager log), and
// ships the logs to the real Loki. Afterwards every event of every file,
// rotated ones included, is in Loki exactly once: stack traces as one
// entry, with the component and file name labels and the line's timestamp.
func TestFlinkLogsToLoki(t *testing.T) {
	testbed.NeedsTools(t)
	testbed.MustTool(t, "java")
	l := startLoki(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		LogDir:             t.TempDir(), // kept after Stop: the files are the expectation
		CheckpointInterval: 500 * time.Millisecond,
		LogMaxFileSize:     "32KB",
		LogMaxFiles:        50, // nothing is deleted: the files are the expectation
		Slots:              2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	opts := testOptions(t, f.LogDir)
	opts.Loki.URL = l.PushURL()
	opts.Identity.Component = "" // inferred per file
	opts.Logs.Multiline.IdleTimeout = config.Duration(500 * time.Millisecond)
	r := start(t, opts)

	job, err := f.SubmitJob(ctx, testbed.JobOptions{Parallelism: 2, RecordsPerSecond: 200})
	if err != nil {
		t.Fatal(err)
	}
	base, err := f.WaitCheckpoints(ctx, job, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Failing checkpoints: declines with stack traces in the JobManager
	// log. Counted from here: on a loaded machine checkpoints may also
	// have expired before.
	if err := f.SetFault(testbed.FaultFail, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCheckpointsFunc(ctx, job, func(c testbed.CheckpointCounts) bool { return c.Failed >= base.Failed+5 }); err != nil {
		t.Fatal(err)
	}
	if err := f.ClearFaults(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitCheckpoints(ctx, job, 8); err != nil {
		t.Fatal(err)
	}
	f.Stop() // the files are final now

	// Expected: every event of every file on disk.
	files, _ := filepath.Glob(filepath.Join(f.LogDir, "*.log*"))
	want := map[string]int{}
	var wantN, traces, rotated int
	for _, p := range files {
		if strings.HasSuffix(p, ".out") {
			continue
		}
		if _, n := splitSuffix(p); n > 0 {
			rotated++
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range splitEvents(b) {
			want[filepath.Base(p)+"\x00"+string(ev)]++
			wantN++
			if strings.Contains(string(ev), "\n\tat ") {
				traces++
			}
		}
	}
	if rotated == 0 || traces == 0 {
		t.Fatalf("the test bed produced %d rotated files and %d stack traces; want some of each", rotated, traces)
	}
	eventually(t, time.Minute, "every event acknowledged", func() bool {
		return testutil.ToFloat64(r.s.m.sent) >= float64(wantN)
	})

	entries, err := l.QueryAll(context.Background(), `{cluster="c1"}`, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range entries {
		fn := e.Metadata["filename"]
		// The entry came from fn or one of its rotated files.
		key := ""
		for _, p := range files {
			b := filepath.Base(p)
			if base, _ := splitSuffix(b); base == fn && want[b+"\x00"+e.Line] > got[b+"\x00"+e.Line] {
				key = b + "\x00" + e.Line
				break
			}
		}
		if key == "" {
			t.Errorf("unexpected or duplicated entry in %s: %.300q", fn, e.Line)
			continue
		}
		got[key]++
		comp := "taskmanager"
		if strings.Contains(fn, "standalonesession") {
			comp = "jobmanager"
		}
		if e.Metadata["component"] != comp || e.Metadata["container"] != "flink-main-container" || e.Metadata["pod"] != "pod-0" {
			t.Errorf("labels %v for %s", e.Metadata, fn)
		}
		if ts, ok := lineTime(e.Line); ok {
			if d := e.Time.Sub(ts); d < 0 || d >= time.Millisecond {
				t.Errorf("entry time %v, line says %v: %.100q", e.Time, ts, e.Line)
			}
		}
		if strings.Contains(e.Line, "\n\tat ") && e.Metadata["level"] == "" {
			t.Errorf("stack trace without level: %.200q", e.Line)
		}
	}
	var missing []string
	for k, n := range want {
		if got[k] != n {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for i, k := range missing {
		if i == 10 {
			t.Errorf("… %d more", len(missing)-10)
			break
		}
		t.Errorf("event in %s not in Loki exactly %d times: %.300q", strings.SplitN(k, "\x00", 2)[0], want[k], strings.SplitN(k, "\x00", 2)[1])
	}
	t.Logf("RESULT %s: %d events (%d stack traces) in %d files (%d rotated) → %d Loki entries, %d missing or duplicated",
		t.Name(), wantN, traces, len(files), rotated, len(entries), len(missing))
}

// The test's own reading of log4j files, independent of the shipper's.
var (
	log4jStart = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}`)
	rotated    = regexp.MustCompile(`^(.+)\.(\d{1,6})$`)
)

// splitSuffix splits log4j's rolled "x.log.3" into ("x.log", 3); n is 0
// for a live file.
func splitSuffix(p string) (string, int) {
	m := rotated.FindStringSubmatch(p)
	if m == nil {
		return p, 0
	}
	n, _ := strconv.Atoi(m[2])
	if n == 0 {
		return p, 0
	}
	return m[1], n
}

// splitEvents splits a log4j file into events at the timestamp pattern.
func splitEvents(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if len(out) == 0 || log4jStart.Match(l) {
			out = append(out, append([]byte(nil), l...))
			continue
		}
		last := &out[len(out)-1]
		*last = append(append(*last, '\n'), l...)
	}
	return out
}

// lineTime is the time an event's line starts with, in the local zone.
func lineTime(line string) (time.Time, bool) {
	if !log4jStart.MatchString(line) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05,000", line[:23], time.Local)
	return t, err == nil
}
