package shipper

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

// logWriter appends generated events to a file and rotates it.
type logWriter struct {
	t    testing.TB
	path string
	g    flinklog.Gen
}

func newLogWriter(t testing.TB, dir string) *logWriter {
	return &logWriter{t: t, path: filepath.Join(dir, "flink--taskexecutor-0-host.log"),
		g: flinklog.Gen{MultilineEvery: 7, Start: time.Now().Add(-time.Hour).Truncate(time.Millisecond), Step: time.Millisecond}}
}

func (w *logWriter) write(n int) {
	var b []byte
	for i := 0; i < n; i++ {
		b = w.g.Append(b)
	}
	appendFile(w.t, w.path, b)
}

// shift renames path.i to path.i+1 for i = keep-1 … 1 and deletes path.keep.
func (w *logWriter) shift(keep int) {
	os.Remove(fmt.Sprintf("%s.%d", w.path, keep))
	for i := keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", w.path, i), fmt.Sprintf("%s.%d", w.path, i+1)) // a missing .i is fine
	}
}

func (w *logWriter) renameRotate(keep int) {
	w.shift(keep)
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		w.t.Fatal(err)
	}
}

func (w *logWriter) copyTruncate(keep int) {
	w.shift(keep)
	src, err := os.Open(w.path)
	if err != nil {
		w.t.Fatal(err)
	}
	dst, err := os.Create(w.path + ".1")
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		w.t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if err := os.Truncate(w.path, 0); err != nil {
		w.t.Fatal(err)
	}
}

// checkOnce asserts that events 0..n-1 were each observed exactly once.
func checkOnce(t *testing.T, c *collector, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int64(c.count()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // duplicates would arrive now
	seen := map[int64]int{}
	for _, ev := range c.snapshot() {
		seen[flinklog.SeqOf(ev.Line)]++
	}
	bad := 0
	for i := int64(0); i < n; i++ {
		if seen[i] != 1 && bad < 10 {
			t.Errorf("event %d seen %d times", i, seen[i])
			bad++
		}
	}
	if len(seen) != int(n) {
		t.Errorf("%d distinct events, want %d", len(seen), n)
	}
}

func TestRotationWhileRunning(t *testing.T) {
	for _, kind := range []string{"rename", "copytruncate", "mixed"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, dir)
			c := &collector{}
			opts.Observers = []logevent.Observer{c}
			w := newLogWriter(t, dir)
			w.write(100)
			start(t, opts)
			for i := 0; i < 12; i++ {
				w.write(200)
				if i%3 == 0 {
					time.Sleep(150 * time.Millisecond) // sometimes the reader catches up
				}
				if kind == "rename" || kind == "mixed" && i%2 == 0 {
					w.renameRotate(5)
				} else {
					w.copyTruncate(5)
				}
			}
			w.write(100)
			checkOnce(t, c, 100+12*200+100)
		})
	}
}

func TestRotationWhileStopped(t *testing.T) {
	for _, kind := range []string{"rename", "copytruncate", "mixed"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, dir)
			c := &collector{}
			opts.Observers = []logevent.Observer{c}
			w := newLogWriter(t, dir)
			w.write(100)
			total := int64(100)
			for round := 0; round < 4; round++ {
				r := start(t, opts)
				w.write(50)
				total += 50
				eventually(t, 10*time.Second, "caught up", func() bool { return int64(c.count()) >= total-1 })
				r.stop(t)
				// While the shipper is down: rotations and new data.
				for i := 0; i < 3; i++ {
					w.write(30)
					total += 30
					if kind == "rename" || kind == "mixed" && (round+i)%2 == 0 {
						w.renameRotate(6)
					} else {
						w.copyTruncate(6)
					}
				}
				w.write(20)
				total += 20
				opts.Registerer = testOptions(t, dir).Registerer
			}
			start(t, opts)
			checkOnce(t, c, total)
		})
	}
}
