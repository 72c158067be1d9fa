package shipper

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/logevent"
)

// TestTruncateAfterReading: a file read (but for its last event, which
// waits for the idle timeout), truncated or deleted and written again to
// the same size, over and over — the chaos test's case: each event once.
// Only the content tells the rounds apart: the inode and the size stay.
func TestTruncateAfterReading(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Logs.PollInterval = config.Duration(time.Second) // the default: scans see each change late
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	w := newLogWriter(t, dir)
	start(t, opts)
	total := int64(0)
	for i := range 20 {
		var b []byte
		for j := range 100 {
			b = fmt.Appendf(b, "%s INFO  org.apache.flink.runtime.taskexecutor.TaskExecutor [] - round line seq=%06d\n",
				time.Now().Format("2006-01-02 15:04:05,000"), total+int64(j))
		}
		appendFile(t, w.path, b)
		total += 100
		eventually(t, 10*time.Second, fmt.Sprintf("round %d's events", i), func() bool { return int64(len(seqCounts(c))) >= total-1 })
		if i < 10 {
			if err := os.Truncate(w.path, 0); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(w.path); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the last event", func() bool { return int64(len(seqCounts(c))) >= total })
	time.Sleep(time.Second)
	dups := 0
	for _, n := range seqCounts(c) {
		dups += n - 1
	}
	if dups > 0 {
		t.Errorf("%d events written, %d observed: %d duplicates", total, c.count(), dups)
	}
}
