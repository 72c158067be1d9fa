package shipper

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
	"github.com/flink-agent/flink-agent/testbed"
)

// startLoki starts the real Loki for one test.
func startLoki(t *testing.T) *testbed.Loki {
	t.Helper()
	testbed.MustTool(t, "loki")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := testbed.StartLoki(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

// TestLokiEndToEnd ships synthetic Flink logs (with stack traces, a
// rename rotation and a file appearing later) to the real Loki and reads
// every event back: each exactly once, stack traces whole, with the
// labels, structured metadata and timestamps of the line.
func TestLokiEndToEnd(t *testing.T) {
	testbed.NeedsTools(t)
	l := startLoki(t)
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Loki.URL = l.URL() // base URL: the client adds /loki/api/v1/push
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	g := &flinklog.Gen{MultilineEvery: 10, Start: time.Now().Add(-time.Minute).Truncate(time.Millisecond), Step: time.Millisecond}
	tm := filepath.Join(dir, "flink--taskexecutor-0-host.log")
	jm := filepath.Join(dir, "flink--standalonesession-0-host.log")
	write := func(path string, n int) {
		var b []byte
		for i := 0; i < n; i++ {
			b = g.Append(b)
		}
		appendFile(t, path, b)
	}
	// Flink logs some lines twice in one millisecond; a rotation can put
	// the two into different files of one stream. Loki drops an entry
	// equal to one it holds in stream, time and line, so each must reach
	// it with a time of its own.
	twin := []byte(g.Start.Add(-30*time.Second).Format("2006-01-02 15:04:05,000") +
		" INFO  org.apache.flink.runtime.state.StateBackendLoader          [] - twin line\n")
	const twins = 3
	write(tm, 500)
	r := start(t, opts)
	write(tm, 500)
	appendFile(t, tm, twin)
	appendFile(t, tm, twin)
	// log4j rename rolling, then a new file.
	if err := rename(tm, tm+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, tm, twin)
	write(tm, 500)
	write(jm, 500)
	const total = 2000
	eventually(t, 30*time.Second, "all events acknowledged", func() bool {
		return testutil.ToFloat64(r.s.m.sent) >= total+twins
	})
	ctx := context.Background()
	entries, err := l.QueryAll(ctx, `{cluster="c1"}`, g.Start.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]int)
	twinTimes := make(map[time.Time]bool)
	for _, e := range entries {
		if strings.HasSuffix(e.Line, "twin line") {
			twinTimes[e.Time] = true
			continue
		}
		seq := flinklog.SeqOf([]byte(e.Line))
		if seq < 0 {
			t.Fatalf("entry without seq: %q", e.Line)
		}
		seen[seq]++
		wantLines := g.TraceLines(seq)
		if got := strings.Count(e.Line, "\n") + 1; got != wantLines {
			t.Errorf("seq %d: %d lines in Loki, want %d", seq, got, wantLines)
		}
		if want := g.Start.Add(time.Duration(seq) * time.Millisecond); e.Time.Sub(want) < 0 || e.Time.Sub(want) >= time.Millisecond {
			t.Errorf("seq %d: time %v, want %v (+ <1ms order offset)", seq, e.Time, want)
		}
		md := e.Metadata
		wantComp := "taskmanager"
		if strings.Contains(md["filename"], "standalonesession") {
			wantComp = "jobmanager"
		}
		if md["component"] != wantComp || md["namespace"] != "ns" || md["pod"] != "pod-0" || md["container"] != "flink-main-container" {
			t.Errorf("seq %d: labels %v", seq, md)
		}
		if fn := md["filename"]; fn != filepath.Base(tm) && fn != filepath.Base(jm) {
			t.Errorf("seq %d: filename %q (rotated files keep the base name)", seq, fn)
		}
		if md["logger"] == "" || (md["level"] != "info" && md["level"] != "warn") {
			t.Errorf("seq %d: structured metadata %v", seq, md)
		}
	}
	for seq := int64(0); seq < total; seq++ {
		if seen[seq] != 1 {
			t.Errorf("seq %d is in Loki %d times", seq, seen[seq])
		}
	}
	if len(twinTimes) != twins {
		t.Errorf("Loki has the twin line at %d distinct times, want %d: %v", len(twinTimes), twins, twinTimes)
	}
	if len(entries) != total+twins {
		t.Errorf("Loki has %d entries, want %d", len(entries), total+twins)
	}
	warn := func() float64 {
		return testutil.ToFloat64(r.s.m.lines.WithLabelValues("taskmanager", "warn")) + testutil.ToFloat64(r.s.m.lines.WithLabelValues("jobmanager", "warn"))
	}
	eventually(t, 5*time.Second, "flink_log_lines_total{level=warn} = 200", func() bool { return warn() == total/10 })
}
