package shipper

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

// File handling (issue 10): what may be read, thousands of files, stalls,
// and exactly-once through truncation, renames and several paths.

// seqCounts counts the generated events an observer saw, by seq.
func seqCounts(c *collector) map[int64]int {
	seen := map[int64]int{}
	for _, ev := range c.snapshot() {
		seen[flinklog.SeqOf(ev.Line)]++
	}
	return seen
}

func refusedCount(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flink_agent_tail_refused_files_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m, "reason") == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A symlink to a file outside the log directory (a secret) is never read;
// a FIFO is refused without blocking, also when a symlink flips between a
// regular file and a FIFO; a file beside the logs reached through a
// symlink and a hard link is read once.
func TestFileAdmission(t *testing.T) {
	dir := t.TempDir()
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "loki-password")
	if err := os.WriteFile(secret, []byte(hdr+"password=hunter2-outside\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "secret.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "etc.log")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The flipping link: a regular file beside the logs (not matching the
	// glob) or a FIFO.
	target := filepath.Join(dir, "target.data")
	fifo := filepath.Join(dir, "target.fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	g := flinklog.Gen{Start: time.Now().Add(-time.Hour), Step: time.Millisecond}
	var b []byte
	for range 50 {
		b = g.Append(b)
	}
	if err := os.WriteFile(target, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "flip.log")); err != nil {
		t.Fatal(err)
	}
	// One file, three names: link.log → main.log, hard.log = main.log.
	w := newLogWriter(t, dir)
	w.g = g
	w.write(50)
	if err := os.Symlink(w.path, filepath.Join(dir, "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(w.path, filepath.Join(dir, "hard.log")); err != nil {
		t.Fatal(err)
	}

	opts := testOptions(t, dir)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	r := start(t, opts)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // flip for 2 s, a few times per scan
		defer wg.Done()
		link := filepath.Join(dir, "flip.log")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(7 * time.Millisecond):
			}
			to := target
			if i%2 == 1 {
				to = fifo
			}
			tmp := link + ".tmp"
			_ = os.Remove(tmp)
			_ = os.Symlink(to, tmp)
			_ = os.Rename(tmp, link)
		}
	}()
	for range 20 {
		w.write(50)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	w.write(50)
	want := int64(50 + 50 + 20*50 + 50)
	eventually(t, 10*time.Second, "every event", func() bool { return int64(len(seqCounts(c))) >= want })
	time.Sleep(500 * time.Millisecond) // duplicates would arrive now
	if err := r.s.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	seen := seqCounts(c)
	for seq := range want {
		if seen[seq] != 1 {
			t.Errorf("event %d seen %d times", seq, seen[seq])
			if t.Failed() && seq > 20 {
				break
			}
		}
	}
	for _, ev := range c.snapshot() {
		if strings.Contains(string(ev.Line), "hunter2-outside") {
			t.Fatalf("a file outside the log directory was read: %q", ev.Line)
		}
	}
	if got := refusedCount(t, reg, "outside_log_directories"); got < 2 {
		t.Errorf("refused outside_log_directories = %v, want ≥ 2 (secret.log, etc.log)", got)
	}
	if got := refusedCount(t, reg, "not_regular_file"); got < 1 {
		t.Errorf("refused not_regular_file = %v, want ≥ 1 (fifo.log)", got)
	}
	t.Logf("refused: outside %v, not regular %v; events %d", refusedCount(t, reg, "outside_log_directories"),
		refusedCount(t, reg, "not_regular_file"), c.count())
}

// 5,000 files through 100 descriptors: every event once, never more than
// 100 open; idle files are closed and reopened by identity when they grow.
func TestThousandsOfFiles(t *testing.T) {
	dir := t.TempDir()
	const files, limit = 5000, 100
	g := flinklog.Gen{Start: time.Now().Add(-time.Hour), Step: time.Millisecond}
	paths := make([]string, files)
	for i := range files {
		paths[i] = filepath.Join(dir, fmt.Sprintf("f%04d.log", i))
		var b []byte
		b = g.Append(b)
		b = g.Append(b)
		if err := os.WriteFile(paths[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := testOptions(t, dir)
	opts.Logs.MaxOpenFiles = limit
	opts.Logs.CloseInactive = config.Duration(time.Second)
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	r := start(t, opts)
	maxOpen := 0
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			maxOpen = max(maxOpen, r.s.tail.OpenFiles())
			mu.Unlock()
		}
	}()
	eventually(t, 60*time.Second, "every event of 5,000 files", func() bool { return c.count() >= 2*files })
	// Inactive for CloseInactive: every descriptor is given back.
	eventually(t, 10*time.Second, "idle files closed", func() bool { return r.s.tail.OpenFiles() == 0 })
	// Closed files grow: reopened by identity, read on from where they were.
	for i := 0; i < files; i += 50 {
		appendFile(t, paths[i], g.Append(nil))
	}
	want := int64(2*files + files/50)
	eventually(t, 30*time.Second, "events appended to closed files", func() bool { return int64(c.count()) >= want })
	time.Sleep(500 * time.Millisecond)
	close(done)
	seen := seqCounts(c)
	bad := 0
	for seq := range want {
		if seen[seq] != 1 && bad < 10 {
			t.Errorf("event %d seen %d times", seq, seen[seq])
			bad++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxOpen > limit {
		t.Errorf("%d files open at once, limit %d", maxOpen, limit)
	}
	t.Logf("%d events from %d files, at most %d open", c.count(), files, maxOpen)
}

// 20 quick plain truncates, then fast delete/recreate: no event twice
// (what was truncated before it was read is gone: a plain truncation
// keeps no copy). Sequential: the writer waits for each truncation; with
// a writer: an appending writer (open, write, close, as a shell's >>)
// goes on meanwhile.
func TestTruncateThenRecreate(t *testing.T) {
	check := func(t *testing.T, c *collector, total int64) {
		eventually(t, 10*time.Second, "the last event", func() bool { return seqCounts(c)[total-1] > 0 })
		time.Sleep(time.Second)
		seen := seqCounts(c)
		dups := 0
		for _, n := range seen {
			if n > 1 {
				dups += n - 1
			}
		}
		if dups > 0 || int64(c.count()) > total {
			t.Errorf("%d events written, %d observed (%d distinct): %d duplicates", total, c.count(), len(seen), dups)
		}
		t.Logf("%d events written, %d observed once", total, len(seen))
	}
	t.Run("sequential", func(t *testing.T) {
		dir := t.TempDir()
		opts := testOptions(t, dir)
		c := &collector{}
		opts.Observers = []logevent.Observer{c}
		w := newLogWriter(t, dir)
		w.write(10)
		start(t, opts)
		for i := range 40 {
			w.write(250)
			if i%3 == 0 {
				time.Sleep(30 * time.Millisecond)
			}
			if i < 20 {
				if err := os.Truncate(w.path, 0); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.Remove(w.path); err != nil {
				t.Fatal(err)
			}
		}
		w.write(250)
		check(t, c, 10+40*250+250)
	})
	t.Run("with a writer", func(t *testing.T) {
		dir := t.TempDir()
		opts := testOptions(t, dir)
		c := &collector{}
		opts.Observers = []logevent.Observer{c}
		w := newLogWriter(t, dir)
		w.write(1)
		start(t, opts)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 10000 {
				w.write(1)
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		time.Sleep(200 * time.Millisecond)
		for range 20 {
			_ = os.Truncate(w.path, 0)
			time.Sleep(10 * time.Millisecond)
		}
		for range 20 {
			_ = os.Remove(w.path)
			_ = os.WriteFile(w.path, nil, 0o644)
			time.Sleep(5 * time.Millisecond)
		}
		<-done
		check(t, c, 10001)
	})
}

// A finished file renamed out of the globs and back — before and after
// the shipper noticed it gone — is not shipped again.
func TestRenamedOutAndBack(t *testing.T) {
	for _, away := range []time.Duration{50 * time.Millisecond, 1500 * time.Millisecond} {
		t.Run(away.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, dir)
			c := &collector{}
			opts.Observers = []logevent.Observer{c}
			w := newLogWriter(t, dir)
			w.write(300)
			start(t, opts)
			eventually(t, 10*time.Second, "first events", func() bool { return c.count() >= 300 })
			out := filepath.Join(dir, "away.txt")
			if err := os.Rename(w.path, out); err != nil {
				t.Fatal(err)
			}
			time.Sleep(away)
			w.write(0)
			if err := os.Rename(out, w.path); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			w.write(100)
			checkOnce(t, c, 400)
		})
	}
}

// A reader that cannot go on while files have unread bytes fails the
// health check after logs.stall_timeout, and recovers with the reader.
func TestStallIsVisible(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Logs.StallTimeout = config.Duration(time.Second)
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	blk := &blockingObserver{release: make(chan struct{})}
	opts.Observers = []logevent.Observer{blk}
	w := newLogWriter(t, dir)
	r := start(t, opts)
	if err := r.s.Healthy(); err != nil {
		t.Fatalf("healthy at start: %v", err)
	}
	w.write(100) // the first event blocks the reader
	eventually(t, 10*time.Second, "stall reported", func() bool { return r.s.Healthy() != nil })
	t.Logf("Healthy: %v", r.s.Healthy())
	last := testutil.ToFloat64(gaugeOf(t, reg, "flink_agent_tail_last_progress_timestamp_seconds"))
	if age := time.Since(time.Unix(0, int64(last*1e9))); age < time.Second {
		t.Errorf("last progress %v ago while stalled", age)
	}
	close(blk.release)
	eventually(t, 10*time.Second, "healthy again", func() bool { return r.s.Healthy() == nil })
}

type blockingObserver struct {
	once    sync.Once
	release chan struct{}
}

func (b *blockingObserver) Observe(*logevent.Event) {
	b.once.Do(func() { <-b.release })
}

func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			v := mf.GetMetric()[0].GetGauge().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
		}
	}
	t.Fatalf("%s not found", name)
	return nil
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// An unreadable file is warned about once when that starts and once when
// it ends (with the number of attempts), not at every scan. Root reads
// everything: as root the test runs itself as nobody.
func TestUnreadableFileWarnedOnce(t *testing.T) {
	if dir := os.Getenv("SHIPPER_UNREADABLE_DIR"); dir != "" {
		unreadableChild(t, dir)
		return
	}
	base, err := os.MkdirTemp("", "unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "log")
	for _, d := range []string{base, dir} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	writeEvents(t, filepath.Join(dir, "a.log"), 10)
	locked := filepath.Join(dir, "b.log")
	writeEvents(t, locked, 10)
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "shipper.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnreadableFileWarnedOnce$", "-test.v")
	cmd.Env = append(os.Environ(), "SHIPPER_UNREADABLE_DIR="+dir)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // about 20 scans
	if err := os.Chmod(locked, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	o := out.String()
	if n := strings.Count(o, "cannot read log file"); n != 1 {
		t.Errorf("%d warnings of an unreadable file, want 1:\n%s", n, o)
	}
	if n := strings.Count(o, "log file no longer unreadable"); n != 1 {
		t.Errorf("%d notices of its end, want 1:\n%s", n, o)
	}
	if !strings.Contains(o, "EVENTS 20") {
		t.Errorf("the child did not read both files once it could:\n%s", o)
	}
	for _, l := range strings.Split(o, "\n") {
		if strings.Contains(l, "no longer unreadable") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

func unreadableChild(t *testing.T, dir string) {
	opts := testOptions(t, dir)
	opts.Logs.PositionsFile = filepath.Join(t.TempDir(), "positions.json")
	opts.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	start(t, opts)
	eventually(t, 10*time.Second, "both files", func() bool { return c.count() >= 20 })
	time.Sleep(300 * time.Millisecond)
	fmt.Printf("EVENTS %d\n", c.count())
}
