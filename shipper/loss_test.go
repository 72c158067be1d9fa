package shipper

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
	"github.com/flink-agent/flink-agent/testbed"
)

// The loss tests run the shipper as a process (shipperd, the shipper
// alone with the agent's flags) against the real Loki while a scripted
// writer produces Flink-format logs and rotates them both ways, Loki is
// stopped for 30 s, and the shipper is restarted with SIGTERM or killed
// with SIGKILL. Every event carries a sequence number; a tap between the
// shipper and Loki records which sequence numbers Loki acknowledged, how
// often, and Loki itself is asked for its count.
//
// SHIPPER_LOSS_LINES sets the number of lines (default 1,000,000);
// SHIPPER_LOSS_SECONDS the writing time (default 75: it outlasts the
// outage, so that the restarts after it happen while lines flow).
//
// The tap closes before Loki is stopped and waits for the pushes in
// flight: a push Loki stores while shutting down but never answers is
// re-sent by any client (at-least-once; the shipper cannot know), and the
// test is about what the shipper does, not about that ambiguity. Loki
// really stops and restarts (WAL replay included); the shipper sees 503s
// from the tap meanwhile, as from a gateway in front of a stopped Loki.

// lossConfig is one loss scenario.
type lossConfig struct {
	lines    int64
	seconds  int
	restarts int  // agent restarts
	kill     bool // SIGKILL instead of SIGTERM
	outage   time.Duration
}

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n > 0 {
			return n
		}
	}
	return def
}

func lossDefaults() lossConfig {
	return lossConfig{
		lines:   envInt("SHIPPER_LOSS_LINES", 1_000_000),
		seconds: int(envInt("SHIPPER_LOSS_SECONDS", 75)),
		outage:  time.Duration(envInt("SHIPPER_LOSS_OUTAGE_SECONDS", 30)) * time.Second,
	}
}

// TestLossSIGTERM: 5 graceful restarts and a Loki outage lose nothing and
// duplicate nothing.
func TestLossSIGTERM(t *testing.T) {
	testbed.NeedsTools(t)
	c := lossDefaults()
	c.restarts = 5
	runLoss(t, c)
}

// TestLossSIGKILL: 3 kills and a Loki outage lose nothing; each kill
// re-sends at most the batch that was in flight.
func TestLossSIGKILL(t *testing.T) {
	testbed.NeedsTools(t)
	c := lossDefaults()
	c.restarts = 3
	c.kill = true
	runLoss(t, c)
}

// tap forwards pushes to Loki and records what Loki acknowledged.
type tap struct {
	target     string
	client     *http.Client
	gate       sync.RWMutex // held for writing while Loki is down
	isDown     atomic.Bool
	mu         sync.Mutex
	acked      []uint8 // per sequence number
	maxEntries int     // largest push, in entries
	pushes     int
	failed     int
	bad        int // entries without a sequence number
}

// down makes the tap answer 503 and waits for the pushes in flight.
func (tp *tap) down() {
	tp.isDown.Store(true)
	tp.gate.Lock()
}

func (tp *tap) up() {
	tp.isDown.Store(false)
	tp.gate.Unlock()
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tp.isDown.Load() || !tp.gate.TryRLock() {
		http.Error(w, "Loki is down", http.StatusServiceUnavailable)
		return
	}
	defer tp.gate.RUnlock()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	// Not r.Context(): a shipper killed mid-push must not cancel the
	// forward, or Loki could store a batch the tap never counts.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, tp.target, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := tp.client.Do(req)
	if err != nil {
		tp.mu.Lock()
		tp.failed++
		tp.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		tp.record(body)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
}

func (tp *tap) record(body []byte) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return
	}
	var pr push.PushRequest
	if err := pr.Unmarshal(raw); err != nil {
		return
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.pushes++
	n := 0
	for _, s := range pr.Streams {
		n += len(s.Entries)
		for _, e := range s.Entries {
			seq := flinklog.SeqOf([]byte(e.Line))
			if seq < 0 || seq >= int64(len(tp.acked)) {
				tp.bad++
				continue
			}
			if tp.acked[seq] < 255 {
				tp.acked[seq]++
			}
		}
	}
	tp.maxEntries = max(tp.maxEntries, n)
}

// missingRanges describes up to limit runs of missing sequence numbers.
func (tp *tap) missingRanges(n int64, limit int) string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var b bytes.Buffer
	runs := 0
	for i := int64(0); i < n && runs < limit; i++ {
		if tp.acked[i] != 0 {
			continue
		}
		j := i
		for j+1 < n && tp.acked[j+1] == 0 {
			j++
		}
		fmt.Fprintf(&b, "%d-%d ", i, j)
		runs++
		i = j
	}
	return b.String()
}

// stats counts unique, missing and duplicate sequence numbers below n.
func (tp *tap) stats(n int64) (unique, missing, dups int64) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, c := range tp.acked[:n] {
		if c == 0 {
			missing++
			continue
		}
		unique++
		dups += int64(c) - 1
	}
	return
}

// rotWriter writes Flink-format events and rotates like log4j (rename to
// .1 … .N, deleting what falls off the end) and like logrotate's
// copytruncate, alternately.
type rotWriter struct {
	path        string
	f           *os.File
	g           flinklog.Gen
	size        int64
	rotateBytes int64
	maxFiles    int
	events      atomic.Int64
	lines       atomic.Int64
	renames     int
	copytruncs  int
	buf         []byte
}

func (w *rotWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	w.f, w.size = f, 0
	return err
}

// write appends n events in one write(2), as log4j writes a record.
func (w *rotWriter) write(n int) error {
	w.buf = w.buf[:0]
	var lines int64
	for i := 0; i < n; i++ {
		seq := w.g.Seq()
		w.buf = w.g.Append(w.buf)
		lines += int64(w.g.TraceLines(seq))
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return err
	}
	w.size += int64(len(w.buf))
	w.events.Add(int64(n))
	w.lines.Add(lines)
	if w.size >= w.rotateBytes {
		return w.rotate()
	}
	return nil
}

func (w *rotWriter) shift() error {
	_ = os.Remove(fmt.Sprintf("%s.%d", w.path, w.maxFiles))
	for i := w.maxFiles - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", w.path, i)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, fmt.Sprintf("%s.%d", w.path, i+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *rotWriter) rotate() error {
	if err := w.shift(); err != nil {
		return err
	}
	if (w.renames+w.copytruncs)%2 == 0 {
		w.renames++
		w.f.Close()
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
		}
		return w.open()
	}
	w.copytruncs++
	src, err := os.Open(w.path)
	if err != nil {
		return err
	}
	dst, err := os.Create(w.path + ".1")
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	src.Close()
	dst.Close()
	w.size = 0
	return w.f.Truncate(0)
}

// agentProc runs shipperd.
type agentProc struct {
	bin, dir, logDir string
	args             []string
	p                *testbed.Proc
	n                int
}

func (a *agentProc) start(t *testing.T) {
	t.Helper()
	a.n++
	p, err := testbed.StartProc(fmt.Sprintf("shipperd-%d", a.n), a.logDir, nil, a.bin, a.args...)
	if err != nil {
		t.Fatal(err)
	}
	a.p = p
}

func buildShipperd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shipperd")
	cmd := exec.Command("go", "build", "-o", bin, "./internal/cmd/shipperd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build shipperd: %v\n%s", err, out)
	}
	return bin
}

func runLoss(t *testing.T, c lossConfig) {
	l := startLoki(t)
	bin := buildShipperd(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "flink--taskexecutor-0-loss.log")

	// Sequence numbers are bounded by the events written; lines ≥ events.
	tp := &tap{target: l.PushURL(), client: &http.Client{Timeout: time.Minute}, acked: make([]uint8, c.lines+1)}
	srv := httptest.NewServer(tp)
	defer srv.Close()

	// 2% of events carry a stack trace; rotate about every 1/50 of the
	// volume so that each kind happens at least 20 times.
	const avgEventBytes = 230
	w := &rotWriter{path: logPath, maxFiles: 8, g: flinklog.Gen{MultilineEvery: 50, Now: true}}
	w.rotateBytes = c.lines * avgEventBytes / 52
	if err := w.open(); err != nil {
		t.Fatal(err)
	}
	logDir := os.Getenv("SHIPPER_LOSS_LOGDIR") // keep the shipper's logs for a post-mortem
	if logDir == "" {
		logDir = t.TempDir()
	}
	a := &agentProc{bin: bin, dir: dir, logDir: logDir, args: []string{
		"--logs.path=" + filepath.Join(dir, "*.log"),
		"--logs.positions-file=" + filepath.Join(t.TempDir(), "positions.json"),
		"--loki.url=" + srv.URL,
		"--logs.poll-interval=250ms",
		"--loki.batch-wait=200ms",
		"--loki.min-backoff=100ms",
		"--loki.max-backoff=2s",
		"--shutdown.timeout=30s",
		"--log.level=info",
	}}
	a.start(t)
	defer func() {
		if a.p != nil {
			_ = a.p.Stop(10 * time.Second)
		}
	}()
	time.Sleep(time.Second) // the first scan sees the empty file: nothing is skipped as history

	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writerDone := make(chan error, 1)
	go func() {
		// Lines per 10 ms tick, spread over the writing time.
		perTick := float64(c.lines) / float64(c.seconds) / 100 / 1.06 // ~1.06 lines per event
		var owed float64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for w.lines.Load() < c.lines {
			select {
			case <-ctx.Done():
				writerDone <- ctx.Err()
				return
			case <-tick.C:
			}
			owed += perTick
			n := int(owed)
			owed -= float64(n)
			// Stop exactly at the line budget (an event may span lines).
			for n > 0 && w.lines.Load() < c.lines {
				k := min(n, 50)
				if err := w.write(k); err != nil {
					writerDone <- err
					return
				}
				n -= k
			}
		}
		writerDone <- nil
	}()

	// The schedule: restarts before, an outage in the middle, restarts
	// after the backlog is shipped.
	restart := func(i int) {
		if c.kill {
			a.p.Kill()
		} else {
			_ = a.p.Stop(40 * time.Second) // a slow stop shows in what Loki holds
		}
		a.start(t)
		t.Logf("%5.1fs restart %d (%s) at %d events written", time.Since(start).Seconds(), i, map[bool]string{true: "SIGKILL", false: "SIGTERM"}[c.kill], w.events.Load())
	}
	caughtUp := func(timeout time.Duration) {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if u, _, _ := tp.stats(w.events.Load()); w.events.Load()-u < c.lines/50 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(c.seconds) * float64(time.Second)) }
	// Half the restarts while lines flow before the outage, the rest
	// while they flow after it (once the backlog is shipped: files
	// deleted during the outage exist only as the shipper's open files,
	// and no tailer survives a restart then).
	before := (c.restarts + 1) / 2
	for i := 1; i <= before; i++ {
		time.Sleep(10 * time.Second / time.Duration(before+1))
		restart(i)
	}
	time.Sleep(2 * time.Second)
	t.Logf("%5.1fs Loki stopped for %s", time.Since(start).Seconds(), c.outage)
	tp.down()
	l.Stop()
	time.Sleep(c.outage)
	if err := l.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	tp.up()
	t.Logf("%5.1fs Loki back", time.Since(start).Seconds())
	caughtUp(2 * time.Minute)
	t.Logf("%5.1fs backlog shipped", time.Since(start).Seconds())
	after := c.restarts - before
	gap := max(sec(1)-time.Since(start)-2*time.Second, time.Duration(after)*3*time.Second) / time.Duration(after+1)
	for i := before + 1; i <= c.restarts; i++ {
		time.Sleep(gap)
		restart(i)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	events, lines := w.events.Load(), w.lines.Load()
	t.Logf("%5.1fs writer done: %d lines, %d events, %d rename and %d copytruncate rotations", time.Since(start).Seconds(), lines, events, w.renames, w.copytruncs)

	// Everything shipped?
	deadline := time.Now().Add(3 * time.Minute)
	for {
		u, _, _ := tp.stats(events)
		if u == events {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after 3 minutes Loki acknowledged %d of %d events\n%s", u, events, a.p.Tail(3000))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = a.p.Stop(40 * time.Second)
	a.p = nil
	unique, missing, dups := tp.stats(events)
	lokiCount, err := l.Count(context.Background(), `{filename="`+filepath.Base(logPath)+`"}`, start.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lokiDupBytes, _ := l.Metric(context.Background(), "loki_ingester_duplicate_log_bytes_total")
	t.Logf("RESULT %s: lines written %d, events written %d, rotations rename=%d copytruncate=%d, Loki outage %s, %d %s",
		t.Name(), lines, events, w.renames, w.copytruncs, c.outage, c.restarts, map[bool]string{true: "SIGKILLs", false: "SIGTERM restarts"}[c.kill])
	t.Logf("RESULT %s: Loki count %d; acknowledged by Loki: %d unique, %d missing, %d duplicates (largest batch %d entries, %d pushes); Loki dropped %.0f duplicate bytes",
		t.Name(), lokiCount, unique, missing, dups, tp.maxEntries, tp.pushes, lokiDupBytes)

	if w.renames < 20 || w.copytruncs < 20 {
		t.Errorf("only %d rename and %d copytruncate rotations, want ≥ 20 each", w.renames, w.copytruncs)
	}
	if missing != 0 {
		t.Errorf("%d events never reached Loki: %s", missing, tp.missingRanges(events, 10))
	}
	if tp.bad != 0 {
		t.Errorf("%d entries without a sequence number (split or corrupted events)", tp.bad)
	}
	if c.kill {
		if limit := int64(c.restarts) * int64(tp.maxEntries); dups > limit {
			t.Errorf("%d duplicates after %d kills, want ≤ one batch per kill (%d)", dups, c.restarts, limit)
		}
		if lokiCount < events || lokiCount > events+dups {
			t.Errorf("Loki counts %d entries, want between %d and %d", lokiCount, events, events+dups)
		}
	} else {
		if dups != 0 {
			t.Errorf("%d duplicates with graceful restarts, want 0", dups)
		}
		if lokiCount != events {
			t.Errorf("Loki counts %d entries, want %d", lokiCount, events)
		}
	}
}
