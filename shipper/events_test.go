package shipper

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/logevent"
)

// TestEventCap: an event over logs.multiline.max_event_bytes is cut with a
// visible marker saying how much was dropped, also for a single line
// longer than the read buffer; the next event is intact.
func TestEventCap(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Logs.Multiline.MaxEventBytes = 4 << 10
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	var b bytes.Buffer
	b.WriteString(hdr + "huge stack trace\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "\tat org.example.Frame%03d.call(Frame.java:%d)\n", i, i)
	}
	long := strings.Repeat("x", 300<<10) // longer than the 128 KiB read buffer
	b.WriteString(hdr + "long line " + long + "\n")
	b.WriteString(hdr + "after\n")
	appendFile(t, filepath.Join(dir, "a.log"), b.Bytes())
	start(t, opts)
	eventually(t, 5*time.Second, "3 events", func() bool { return c.count() == 3 })
	evs := c.snapshot()
	for i, ev := range evs[:2] {
		if len(ev.Line) > 4<<10+100 || !bytes.Contains(ev.Line, []byte("[truncated by flink-agent: ")) {
			t.Errorf("event %d: %d bytes, ends %q", i, len(ev.Line), ev.Line[max(0, len(ev.Line)-80):])
		}
	}
	wantDropped := len(hdr+"long line "+long) - (4 << 10)
	if !bytes.HasSuffix(evs[1].Line, []byte(fmt.Sprintf("[truncated by flink-agent: %d bytes dropped]", wantDropped))) {
		t.Errorf("long line marker: %q", evs[1].Line[len(evs[1].Line)-60:])
	}
	if string(evs[2].Line) != hdr+"after" {
		t.Errorf("event after the cut: %q", evs[2].Line)
	}
}

// TestJSONMode: one event per line; level, logger, thread and time from
// the JSON fields of log4j's JsonTemplateLayout and JsonLayout.
func TestJSONMode(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Logs.Multiline.Mode = "json"
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	lines := []string{
		`{"@timestamp":"2024-05-01T12:00:00.123Z","log.level":"WARN","log.logger":"org.apache.flink.Foo","process.thread.name":"main","message":"a"}`,
		`{"instant":{"epochSecond":1714564800,"nanoOfSecond":5000000},"thread":"t1","level":"ERROR","loggerName":"org.Bar","message":"password=hunter2"}`,
		``,
		`{"timeMillis":1714564800999,"level":"info","message":"c"}`,
	}
	appendFile(t, filepath.Join(dir, "a.log"), []byte(strings.Join(lines, "\n")+"\n"))
	start(t, opts)
	eventually(t, 5*time.Second, "3 events", func() bool { return c.count() == 3 })
	evs := c.snapshot()
	want := []struct {
		level, logger, thread string
		time                  time.Time
	}{
		{"warn", "org.apache.flink.Foo", "main", time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.UTC)},
		{"error", "org.Bar", "t1", time.Unix(1714564800, 5e6)},
		{"info", "", "", time.UnixMilli(1714564800999)},
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Level != w.level || ev.Logger != w.logger || ev.Thread != w.thread || !ev.Time.Equal(w.time) {
			t.Errorf("event %d: level %q logger %q thread %q time %v, want %+v", i, ev.Level, ev.Logger, ev.Thread, ev.Time, w)
		}
	}
	if !strings.Contains(string(evs[1].Line), `password=[REDACTED]`) {
		t.Errorf("json event not redacted: %s", evs[1].Line)
	}
}

// TestLogMetrics is a golden /metrics test for the metrics derived from
// the logs: lines by level, exceptions by top-level class, redactions.
func TestLogMetrics(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Identity.Component = "jobmanager"
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	log := strings.Join([]string{
		hdr + "one",
		strings.Replace(hdr, "INFO ", "WARN ", 1) + "Failed to trigger checkpoint",
		"java.io.IOException: Could not flush",
		"\tat org.Foo.bar(Foo.java:1)",
		"Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: SlowDown",
		"\tat org.Foo.baz(Foo.java:2)",
		strings.Replace(hdr, "INFO ", "ERROR", 1) + "Task failed",
		"org.apache.flink.util.FlinkRuntimeException: boom",
		"\tat org.Foo.bar(Foo.java:1)",
		hdr + "s3.secret-key: abc password=def",
		"continuation without a header in front of it? no: it follows the line above",
	}, "\n") + "\n"
	appendFile(t, filepath.Join(dir, "a.log"), []byte(log))
	start(t, opts)
	eventually(t, 5*time.Second, "4 events", func() bool { return c.count() == 4 })
	time.Sleep(700 * time.Millisecond) // metrics are added every 500 ms
	want := `
# HELP flink_agent_redactions_total Secrets removed from log events before shipping, by rule.
# TYPE flink_agent_redactions_total counter
flink_agent_redactions_total{rule="api_key"} 0
flink_agent_redactions_total{rule="authorization"} 0
flink_agent_redactions_total{rule="aws_access_key_id"} 0
flink_agent_redactions_total{rule="aws_secret_access_key"} 0
flink_agent_redactions_total{rule="azure_account_key"} 0
flink_agent_redactions_total{rule="bearer_token"} 0
flink_agent_redactions_total{rule="github_token"} 0
flink_agent_redactions_total{rule="gitlab_token"} 0
flink_agent_redactions_total{rule="google_api_key"} 0
flink_agent_redactions_total{rule="jwt"} 0
flink_agent_redactions_total{rule="password"} 1
flink_agent_redactions_total{rule="private_key"} 0
flink_agent_redactions_total{rule="s3_access_key"} 0
flink_agent_redactions_total{rule="s3_secret_key"} 1
flink_agent_redactions_total{rule="s3a_secret_key"} 0
flink_agent_redactions_total{rule="secret"} 0
flink_agent_redactions_total{rule="signature"} 0
flink_agent_redactions_total{rule="slack_token"} 0
flink_agent_redactions_total{rule="token"} 0
flink_agent_redactions_total{rule="url_password"} 0
# HELP flink_log_exceptions_total Log events carrying a stack trace, by top-level exception class (at most 100 classes, then "other").
# TYPE flink_log_exceptions_total counter
flink_log_exceptions_total{component="jobmanager",exception="java.io.IOException"} 1
flink_log_exceptions_total{component="jobmanager",exception="org.apache.flink.util.FlinkRuntimeException"} 1
# HELP flink_log_lines_total Log events read from Flink's log files (a stack trace is one event), by level.
# TYPE flink_log_lines_total counter
flink_log_lines_total{component="jobmanager",level="debug"} 0
flink_log_lines_total{component="jobmanager",level="error"} 1
flink_log_lines_total{component="jobmanager",level="fatal"} 0
flink_log_lines_total{component="jobmanager",level="info"} 2
flink_log_lines_total{component="jobmanager",level="trace"} 0
flink_log_lines_total{component="jobmanager",level="unknown"} 0
flink_log_lines_total{component="jobmanager",level="warn"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flink_log_lines_total", "flink_log_exceptions_total", "flink_agent_redactions_total"); err != nil {
		t.Error(err)
	}
}
