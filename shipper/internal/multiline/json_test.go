package multiline

import (
	"strings"
	"testing"
	"time"
)

// TestJSONTopLevelKeys: json mode reads the record's own keys with a real
// parser — never a key of the same name inside a nested object or a
// string — and decodes escapes.
func TestJSONTopLevelKeys(t *testing.T) {
	ts := func(s string) int64 { tm, _ := time.Parse(time.RFC3339Nano, s); return tm.UnixNano() }
	for _, tc := range []struct {
		line           string
		level          Level
		logger, thread string
		time           int64
	}{
		// The case: the MDC's level is not the record's.
		{`{"mdc":{"level":"DEBUG"},"level":"ERROR"}`, LevelError, "", "", 0},
		{`{"level":"ERROR","mdc":{"level":"DEBUG"}}`, LevelError, "", "", 0},
		{`{"message":"\"level\":\"DEBUG\" in text","severity":"warning"}`, LevelWarn, "", "", 0},
		{`{"context":{"logger":"nested","thread":"nested","@timestamp":"2020-01-01T00:00:00Z"},"log.logger":"org.Foo","threadName":"main"}`, LevelUnknown, "org.Foo", "main", 0},
		{`{"@timestamp":"2024-05-01T12:00:00.123Z","log.level":"INFO","logger_name":"a\u002eb","thread_name":"pool-1 \"x\""}`, LevelInfo, "a.b", `pool-1 "x"`, ts("2024-05-01T12:00:00.123Z")},
		// An empty value does not hide the next name.
		{`{"level":"","log.level":"warn","loggerName":"","logger":"org.Bar"}`, LevelWarn, "org.Bar", "", 0},
		// Times: epoch in several units, as strings or numbers; GELF's
		// fractional seconds; JsonLayout's instant, top level only.
		{`{"timeMillis":1714564800999}`, LevelUnknown, "", "", 1714564800999e6},
		{`{"time":"1714564800"}`, LevelUnknown, "", "", 1714564800e9},
		{`{"timestamp":1714564800.25,"level":"DEBUG"}`, LevelDebug, "", "", 1714564800250e6},
		{`{"instant":{"epochSecond":1714564800,"nanoOfSecond":5000000}}`, LevelUnknown, "", "", 1714564800005e6},
		{`{"data":{"instant":{"epochSecond":1714564800}}}`, LevelUnknown, "", "", 0},
		// Not an object: shipped, but it says nothing.
		{`not json "level":"ERROR"`, LevelUnknown, "", "", 0},
		{`{"level":"ERROR"`, LevelUnknown, "", "", 0},
		{`["level","ERROR"]`, LevelUnknown, "", "", 0},
	} {
		var got []Event
		p := New(Settings{JSON: true, MaxEventBytes: 1 << 20, Location: time.UTC})
		g := p.Grouper(func(ev *Event) error { e := *ev; e.Text = nil; got = append(got, e); return nil }, nil)
		if err := g.Line([]byte(tc.line), int64(len(tc.line)+1), false); err != nil {
			t.Fatal(err)
		}
		if err := g.Flush(); err != nil { // the idle flush, for a line that does not end an object
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d events", tc.line, len(got))
		}
		ev := got[0]
		if ev.Level != tc.level || ev.Logger != tc.logger || ev.Thread != tc.thread || ev.Time != tc.time || ev.End != int64(len(tc.line)+1) {
			t.Errorf("%s:\n got level %v logger %q thread %q time %d end %d\nwant level %v logger %q thread %q time %d",
				tc.line, ev.Level, ev.Logger, ev.Thread, ev.Time, ev.End, tc.level, tc.logger, tc.thread, tc.time)
		}
	}
}

// TestJSONLineInPieces: a record longer than the read buffer comes in
// pieces; it is one event, parsed whole, and a line ending an object is
// handed on at once.
func TestJSONLineInPieces(t *testing.T) {
	var got []Event
	var texts []string
	p := New(Settings{JSON: true, MaxEventBytes: 1 << 20, Location: time.UTC})
	g := p.Grouper(func(ev *Event) error {
		got, texts = append(got, *ev), append(texts, string(ev.Text))
		return nil
	}, nil)
	long := `{"level":"WARN","message":"` + strings.Repeat("é", 100) + `","logger":"org.Foo"}`
	for i, piece := range []string{long[:11], long[11:51], long[51:]} { // the second cut splits an é
		if err := g.Line([]byte(piece), int64(i), i > 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || texts[0] != long || got[0].Level != LevelWarn || got[0].Logger != "org.Foo" {
		t.Fatalf("%d events %q, level %v logger %q", len(got), texts, got[0].Level, got[0].Logger)
	}
	if err := g.Line([]byte(`{"level":"INFO"}`), 99, false); err != nil || len(got) != 2 {
		t.Fatalf("a whole record was not handed on at once: %d events, %v", len(got), err)
	}
}

// BenchmarkJSONLine is json mode's cost per event (EcsLayout's shape).
func BenchmarkJSONLine(b *testing.B) {
	line := []byte(`{"@timestamp":"2024-05-01T12:00:00.123Z","log.level":"INFO","message":"Completed checkpoint 17 for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b (128734 bytes, checkpointDuration=412 ms, finalizationTime=3 ms).","ecs.version":"1.2.0","process.thread.name":"jobmanager-io-thread-3","log.logger":"org.apache.flink.runtime.checkpoint.CheckpointCoordinator"}`)
	p := New(Settings{JSON: true, MaxEventBytes: 1 << 20, Location: time.UTC})
	g := p.Grouper(func(*Event) error { return nil }, nil)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = g.Line(line, 0, false)
	}
}
