package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/testbed"
)

// A JobManager whose checkpoint details answer after 9 s must not delay log
// shipping: the details are fetched by the collector outside the watch's
// lock, while the shipper's reader feeds every JobManager lifecycle line to
// the same watch. Measured end to end through the agent against the real
// Loki: marker line written → Loki acknowledged its push.
func TestSlowCheckpointDetailsDoNotDelayLogs(t *testing.T) {
	testbed.NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	loki, err := testbed.StartLoki(ctx, filepath.Join(dir, "loki"))
	if err != nil {
		t.Fatal(err)
	}
	defer loki.Stop()
	tp := &ackTap{target: loki.PushURL(), acked: map[int]time.Time{}}
	tapSrv := httptest.NewServer(tp)
	defer tapSrv.Close()

	const detailsDelay = 9 * time.Second
	jm := &slowJM{delay: detailsDelay}
	jmSrv := httptest.NewServer(jm)
	defer jmSrv.Close()
	defer jm.release()

	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(logDir, "flink--standalonesession-0-jm.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Flink.RestURL = jmSrv.URL
	cfg.Flink.ScrapeInterval = config.Duration(time.Second)
	cfg.Flink.ScrapeTimeout = config.Duration(20 * time.Second)
	cfg.Logs.Paths = []string{filepath.Join(logDir, "*.log")}
	cfg.Logs.PositionsFile = filepath.Join(dir, "positions.json")
	cfg.Loki.URL = tapSrv.URL
	cfg.Loki.BatchWait = config.Duration(250 * time.Millisecond)
	cfg.DogStatsD.Address = ""
	cfg.Web.ListenAddress = testbed.Addr(port)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, cfg, Deps{Identity: identity.Identity{Cluster: "slow"}, Ready: ready,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	defer func() {
		stop()
		jm.release()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-ready

	// Lifecycle lines for the job the JobManager lists, each followed by a
	// marker line; 20 pairs a second for 25 s, across at least two details
	// calls.
	written := map[int]time.Time{}
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for seq := 0; time.Since(start) < 25*time.Second; seq++ {
		<-tick.C
		now := time.Now()
		ts := now.Format("2006-01-02 15:04:05,000")
		cp := 100000 + seq
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Triggering checkpoint %d (type=CheckpointType{name='Checkpoint', sharingFilesStrategy=FORWARD_BACKWARD}) @ %d for job %s.\n", ts, cp, now.UnixMilli(), slowJobID)
		fmt.Fprintf(&b, "%s INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint %d for job %s (6753 bytes, checkpointDuration=2 ms, finalizationTime=0 ms).\n", ts, cp, slowJobID)
		fmt.Fprintf(&b, "%s INFO  org.example.Marker                                           [] - marker seq=%d\n", ts, seq)
		if _, err := logFile.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
		written[seq] = time.Now()
	}
	end := time.Now()
	// Every marker must arrive; give the last ones time.
	deadline := time.Now().Add(15 * time.Second)
	for tp.count() < len(written) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}

	// The slow details were really in the way: calls in flight for most of
	// the window.
	var stalled time.Duration
	for _, c := range jm.calls() {
		s, e := c[0], c[1]
		if s.Before(start) {
			s = start
		}
		if e.IsZero() || e.After(end) {
			e = end
		}
		if e.After(s) {
			stalled += e.Sub(s)
		}
	}
	if stalled < 12*time.Second {
		t.Fatalf("details calls were in flight for only %s of the %s window: the test did not exercise them", stalled, end.Sub(start))
	}
	var lat []time.Duration
	missing := 0
	for seq, w := range written {
		a, ok := tp.ackedAt(seq)
		if !ok {
			missing++
			continue
		}
		lat = append(lat, a.Sub(w))
	}
	if missing > 0 {
		t.Fatalf("%d of %d marker lines never reached Loki", missing, len(written))
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("%d lines over %s with details calls (%s each) in flight for %s: written → acknowledged p50 %s, p99 %s, max %s",
		len(lat), end.Sub(start).Round(time.Millisecond), detailsDelay, stalled.Round(time.Millisecond),
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
	if p99 >= 2*time.Second {
		t.Errorf("p99 written → acknowledged = %s, want < 2s while checkpoint details are slow", p99)
	}
}

const slowJobID = "5c0de1a1ed5c0de1a1ed5c0de1a1ed00"

// slowJM is a JobManager REST API with one running job that fails a
// checkpoint every scrape and whose checkpoint details answer after delay.
type slowJM struct {
	delay time.Duration

	mu      sync.Mutex
	scrapes int
	spans   [][2]time.Time
	quit    chan struct{}
	once    sync.Once
}

func (j *slowJM) release() {
	j.mu.Lock()
	if j.quit == nil {
		j.quit = make(chan struct{})
	}
	q := j.quit
	j.mu.Unlock()
	j.once.Do(func() { close(q) })
}

func (j *slowJM) calls() [][2]time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([][2]time.Time(nil), j.spans...)
}

func (j *slowJM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	start := time.Now().Add(-time.Hour).UnixMilli()
	p := r.URL.Path
	switch {
	case p == "/jobs/overview":
		fmt.Fprintf(w, `{"jobs":[{"jid":%q,"name":"orders","state":"RUNNING","start-time":%d}]}`, slowJobID, start)
	case p == "/jobs/"+slowJobID:
		fmt.Fprintf(w, `{"state":"RUNNING","now":%d,"timestamps":{"RUNNING":%d,"RESTARTING":0},"vertices":[]}`, time.Now().UnixMilli(), start)
	case p == "/jobs/"+slowJobID+"/checkpoints/config":
		_, _ = io.WriteString(w, `{"interval":1000,"timeout":600000,"tolerable_failed_checkpoints":100000}`)
	case p == "/jobs/"+slowJobID+"/checkpoints":
		j.mu.Lock()
		j.scrapes++
		n := j.scrapes
		j.mu.Unlock()
		var h []string
		for id := n; id > max(0, n-10); id-- {
			trig := time.Now().Add(-time.Duration(n-id+1) * time.Second).UnixMilli()
			h = append(h, fmt.Sprintf(`{"className":"failed","id":%d,"status":"FAILED","is_savepoint":false,"trigger_timestamp":%d,"latest_ack_timestamp":-1,"state_size":0,"end_to_end_duration":5,"failure_timestamp":%d,"failure_message":"Checkpoint expired before completing."}`, id, trig, trig+5))
		}
		fmt.Fprintf(w, `{"counts":{"restored":0,"total":%d,"in_progress":0,"completed":0,"failed":%d},"latest":{"completed":null},"history":[%s]}`, n, n, strings.Join(h, ","))
	case strings.HasPrefix(p, "/jobs/"+slowJobID+"/checkpoints/details/"):
		j.mu.Lock()
		if j.quit == nil {
			j.quit = make(chan struct{})
		}
		q := j.quit
		j.spans = append(j.spans, [2]time.Time{time.Now()})
		i := len(j.spans) - 1
		j.mu.Unlock()
		select {
		case <-time.After(j.delay):
		case <-r.Context().Done():
		case <-q:
		}
		j.mu.Lock()
		j.spans[i][1] = time.Now()
		j.mu.Unlock()
		_, _ = io.WriteString(w, `{"status":"FAILED","tasks":{}}`)
	case p == "/jobmanager/metrics", p == "/taskmanagers/metrics":
		_, _ = io.WriteString(w, `[]`)
	default:
		http.Error(w, `{"errors":["Not found."]}`, http.StatusNotFound)
	}
}

// ackTap forwards pushes to Loki and notes when Loki acknowledged each
// marker line.
type ackTap struct {
	target string
	mu     sync.Mutex
	acked  map[int]time.Time
}

var markerSeq = regexp.MustCompile(`marker seq=(\d+)`)

func (a *ackTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, a.target, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		a.record(body, time.Now())
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}

func (a *ackTap) record(body []byte, at time.Time) {
	pr, err := testbed.DecodePush(body)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range pr.Streams {
		for _, e := range s.Entries {
			if m := markerSeq.FindStringSubmatch(e.Line); m != nil {
				seq, _ := strconv.Atoi(m[1])
				if _, ok := a.acked[seq]; !ok {
					a.acked[seq] = at
				}
			}
		}
	}
}

func (a *ackTap) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

func (a *ackTap) ackedAt(seq int) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.acked[seq]
	return t, ok
}
