package multiline

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flink-agent/flink-agent/internal/config"
)

var fuzzSeeds = []string{
	"2024-05-01 12:00:00,123 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 17 for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b (128734 bytes).",
	"2024-05-01 12:00:00,123 WARN  org.apache.flink.runtime.taskmanager.Task [Source: x (1/2)#0] - failed\njava.io.IOException: boom\n\tat a.b.C.d(C.java:1)\nCaused by: x.Y: z\n\t... 3 more",
	"2024-05-01 12:00:00,123 [main] ERROR org.Foo - msg",
	"2026-12-02 03:00:00,000 o.a.f.k.o.r.d.AbstractJobReconciler [WARN ][ns/app] Savepoint failed",
	`{"@timestamp":"2024-05-01T12:00:00.123Z","level":"INFO","logger_name":"org.Foo","thread_name":"main","message":"hi \"x\" \u00e9"}`,
	`{"time":1714564800123,"level":"warn","logger":"a","message":"b"}`,
	"\tat org.Foo.bar(Foo.java:1)\n2024-05-01 12:00:00,123 INFO x - y",
	"2024-05-01 12:00:00,123 ÉRROR \xff\xfe - \xe2\x82",
}

// FuzzLog4jHeader: whatever follows a timestamp (the grouper parses a
// header only after one), the header's spans lie inside the line and in
// order.
func FuzzLog4jHeader(f *testing.F) {
	for _, s := range fuzzSeeds {
		if len(s) > 23 {
			f.Add([]byte(s[23:]))
		}
	}
	f.Fuzz(func(t *testing.T, rest []byte) {
		line := append([]byte("2024-05-01 12:00:00,123"), rest...)
		var h header
		parseHeader(line, &h)
		for _, sp := range [][2]int{{h.loggerStart, h.loggerEnd}, {h.threadStart, h.threadEnd}, {h.nsStart, h.nsEnd}, {h.nameStart, h.nameEnd}} {
			if sp[0] < 0 || sp[0] > sp[1] || sp[1] > len(line) {
				t.Fatalf("span %v outside %q", sp, line)
			}
		}
		if h.msgStart < 0 || h.msgStart > len(line) || h.level >= NumLevels {
			t.Fatalf("msgStart %d level %d for %q", h.msgStart, h.level, line)
		}
	})
}

// FuzzGrouper feeds lines (log4j or json mode, with lines split into read
// buffer pieces) through a grouper with a small event cap: every event is
// within the cap plus its marker, valid UTF-8 when the input is, its
// message start and names inside it, offsets only grow, and in log4j mode
// every line lands in exactly one event.
func FuzzGrouper(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false, uint16(256), uint8(0))
		f.Add([]byte(s), true, uint16(64), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, json bool, maxEvent uint16, piece uint8) {
		limit := 16 + int(maxEvent)%4096
		start := config.Default().Logs.Multiline.StartPattern.Regexp
		p := New(Settings{JSON: json, StartPattern: start, MaxEventBytes: limit, Location: time.UTC})
		var lines, events int
		var lastEnd int64
		valid := utf8.Valid(data)
		g := p.Grouper(func(ev *Event) error {
			events++
			lines += ev.Lines
			const marker = len(" … [truncated by flink-agent: 18446744073709551615 bytes dropped]")
			if len(ev.Text) > limit+marker {
				t.Fatalf("event of %d bytes, cap %d", len(ev.Text), limit)
			}
			if valid && !utf8.Valid(ev.Text) {
				t.Fatalf("invalid UTF-8 out of valid input: %q", ev.Text)
			}
			if ev.MsgStart < 0 || ev.MsgStart > len(ev.Text) || ev.Lines < 1 || ev.End < lastEnd {
				t.Fatalf("msgStart %d lines %d end %d (last %d) of %q", ev.MsgStart, ev.Lines, ev.End, lastEnd, ev.Text)
			}
			lastEnd = ev.End
			if !json && (!bytes.Contains(ev.Text, []byte(ev.Logger)) || !bytes.Contains(ev.Text, []byte(ev.Thread))) {
				t.Fatalf("logger %q or thread %q not in %q", ev.Logger, ev.Thread, ev.Text)
			}
			return nil
		}, nil)
		var off int64
		fed := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			off += int64(len(l)) + 1
			fed++
			n := int(piece)
			if n == 0 || n >= len(l) {
				_ = g.Line(l, off, false)
				continue
			}
			// A line longer than the read buffer comes in pieces.
			_ = g.Line(l[:n], off-int64(len(l)-n)-1, false)
			for rest := l[n:]; len(rest) > 0; {
				k := min(n, len(rest))
				_ = g.Line(rest[:k], off, true)
				rest = rest[k:]
			}
		}
		_ = g.Flush()
		if !json && lines != fed {
			t.Fatalf("%d lines fed, %d in %d events", fed, lines, events)
		}
	})
}

// FuzzExceptionClass: the class found is part of the event.
func FuzzExceptionClass(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ev []byte) {
		if c := ExceptionClass(ev); c != nil && !bytes.Contains(ev, c) {
			t.Fatalf("class %q not in %q", c, ev)
		}
	})
}
