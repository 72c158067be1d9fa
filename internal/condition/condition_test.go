package condition

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/testbed"
)

func logger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}

// A run of 1,000 failures is two lines: the start, with the first
// failure's details, and the end, with the count and duration.
func TestWarningOncePerRun(t *testing.T) {
	var buf bytes.Buffer
	w := New(logger(&buf), "Loki push failing")
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	if w.OK() {
		t.Error("OK without a run logged an end")
	}
	for i := 0; i < 1000; i++ {
		if started := w.Fail("err", "connection refused"); started != (i == 0) {
			t.Fatalf("failure %d: started = %v", i, started)
		}
	}
	now = now.Add(90 * time.Second)
	if !w.Active() || !w.OK() || w.Active() || w.OK() {
		t.Error("run state wrong")
	}
	w.Fail("err", "timeout") // a second run starts afresh
	w.OK()
	want := `level=WARN msg="Loki push failing" condition=started err="connection refused"
level=INFO msg="Loki push failing" condition=ended occurrences=1000 duration=1m30s
level=WARN msg="Loki push failing" condition=started err=timeout
level=INFO msg="Loki push failing" condition=ended occurrences=1 duration=0s
`
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// Keys run independently; a key that ends frees its memory.
func TestSetPerKey(t *testing.T) {
	var buf bytes.Buffer
	s := NewSet[string](logger(&buf), "cannot read log file", "file")
	for i := 0; i < 50; i++ {
		s.Fail("/a.log", "err", "permission denied")
		s.Fail("/b.log", "err", "permission denied")
	}
	if s.Active() != 2 {
		t.Fatalf("active %d", s.Active())
	}
	s.OK("/a.log")
	s.OK("/c.log") // never failed: nothing logged
	if s.Active() != 1 {
		t.Fatalf("active %d after /a.log ended", s.Active())
	}
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d lines:\n%s", n, out)
	}
	if !strings.Contains(out, `file=/a.log condition=ended occurrences=50`) {
		t.Errorf("no end line with the count:\n%s", out)
	}
}

// Concurrent failures log the start exactly once.
func TestWarningConcurrent(t *testing.T) {
	var buf testbed.SyncBuffer
	w := New(slog.New(slog.NewTextHandler(&buf, nil)), "x")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				w.Fail()
			}
		}()
	}
	wg.Wait()
	w.OK()
	if out := buf.String(); strings.Count(out, "condition=started") != 1 || !strings.Contains(out, "occurrences=8000") {
		t.Errorf("log:\n%s", out)
	}
}
