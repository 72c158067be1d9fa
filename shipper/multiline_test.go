package shipper

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

func TestMultilineGrouping(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	g := &flinklog.Gen{MultilineEvery: 4, Start: time.Date(2024, 5, 1, 12, 0, 0, 0, time.Local), Step: time.Millisecond}
	var b []byte
	for i := 0; i < 40; i++ {
		b = g.Append(b)
	}
	path := filepath.Join(dir, "flink--taskexecutor-0-host.log")
	appendFile(t, path, b)
	start(t, opts)
	eventually(t, 5*time.Second, "40 events", func() bool { return c.count() == 40 })
	evs := c.snapshot()
	for i, ev := range evs {
		if got := flinklog.SeqOf(ev.Line); got != int64(i) {
			t.Fatalf("event %d has seq %d: %q", i, got, ev.Line)
		}
		if lines := strings.Count(string(ev.Line), "\n") + 1; lines != g.TraceLines(int64(i)) {
			t.Errorf("event %d has %d lines, want %d", i, lines, g.TraceLines(int64(i)))
		}
		wantTime := g.Start.Add(time.Duration(i) * time.Millisecond)
		if !ev.Time.Equal(wantTime) {
			t.Errorf("event %d time %v, want %v", i, ev.Time, wantTime)
		}
		if ev.Component != "taskmanager" || ev.File != path {
			t.Errorf("event %d component %q file %q", i, ev.Component, ev.File)
		}
		if ev.Logger == "" || !strings.HasPrefix(ev.Logger, "org.apache.flink.") {
			t.Errorf("event %d logger %q", i, ev.Logger)
		}
		want := "info"
		if g.Multiline(int64(i)) {
			want = "warn"
		}
		if ev.Level != want {
			t.Errorf("event %d level %q, want %q", i, ev.Level, want)
		}
	}
}
