package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/testbed"
)

// faultServer answers from fixtures, or with the fault currently switched on.
type faultServer struct {
	mu     sync.Mutex
	fault  string
	routes map[string]string
}

func (f *faultServer) set(fault string, routes map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
	if routes != nil {
		f.routes = routes
	}
}

func (f *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fault, file := f.fault, f.routes[r.URL.Path]
	f.mu.Unlock()
	body, _ := os.ReadFile(file)
	if file == "" {
		body = nil
	}
	switch fault {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"errors":["Internal server error."]}`)
		return
	case "hang": // no answer at all until the client gives up
		<-r.Context().Done()
		return
	case "slow-body": // headers at once, then a byte now and then
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"jobs":[`)
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
				_, _ = io.WriteString(w, " ")
			}
		}
	case "truncated":
		if body != nil {
			body = body[:len(body)/2]
		}
	case "drift": // shapes Flink never sends
		switch {
		case r.URL.Path == "/jobs/overview":
			body = []byte(`{"jobs":{"jid":"82f544764b9d7ef78144aa8e6c093056"}}`)
		case strings.HasSuffix(r.URL.Path, "/checkpoints"):
			body = []byte(`{"counts":"many","history":"long"}`)
		}
	case "huge": // 50 MB of valid JSON
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jobs":[],"padding":"`)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for n := 0; n < 50<<20; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
		return
	}
	if body == nil {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":["Not found."]}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// running is a collector in its Run loop with the agent-like /metrics.
type running struct {
	t        *testing.T
	metrics  *httptest.Server
	cancel   context.CancelFunc
	done     chan error
	logs     *testbed.SyncBuffer
	interval time.Duration
}

func startRunning(t *testing.T, restURL string, interval, timeout time.Duration, maxBytes config.ByteSize) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	f := config.Default().Flink
	f.RestURL = restURL
	f.ScrapeInterval = config.Duration(interval)
	f.ScrapeTimeout = config.Duration(timeout)
	if maxBytes > 0 {
		f.MaxResponseBytes = maxBytes
	}
	r := &running{t: t, logs: &testbed.SyncBuffer{}, done: make(chan error, 1), interval: interval}
	c, err := New(Options{Flink: f, Registerer: reg, Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Watch: testWatch(t, sink.Options{Registerer: reg})})
	if err != nil {
		t.Fatal(err)
	}
	r.metrics = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- c.Run(ctx) }()
	return r
}

func (r *running) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatal("Run did not return after its context ended")
	}
	r.metrics.Close()
}

// scrapeMetrics reads the agent's /metrics as Prometheus would.
func (r *running) scrapeMetrics() (map[string]float64, error) {
	resp, err := http.Get(r.metrics.URL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := name
			for _, lp := range m.GetLabel() {
				key += "," + lp.GetName() + "=" + lp.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// waitUp waits until /metrics shows flink_up == want, and returns how long
// that took.
func (r *running) waitUp(want float64, within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	for {
		m, err := r.scrapeMetrics()
		if err != nil {
			r.t.Fatalf("/metrics stopped serving: %v", err)
		}
		if up, ok := m["flink_up"]; ok && up == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			r.t.Fatalf("flink_up did not become %v within %v (logs:\n%s)", want, within, r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFaults switches faults on and off under a running collector: during
// each, /metrics keeps serving with flink_up 0; after each, flink_up is 1
// again within one scrape interval. No goroutine outlives the test.
func TestFaults(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	routes, _ := captured(t, "testdata/flink-1.20.0", nil)
	fs := &faultServer{routes: routes}
	srv := httptest.NewServer(fs)
	addr := srv.Listener.Addr().String()

	const interval, timeout = 300 * time.Millisecond, 200 * time.Millisecond
	r := startRunning(t, srv.URL, interval, timeout, 1<<20)
	r.waitUp(1, 5*time.Second)

	// Recovery is due at the next scrape: one interval, plus the time the
	// failing scrape itself may still take (at most the scrape timeout).
	recoverWithin := interval + timeout + 200*time.Millisecond
	for _, fault := range []string{"500", "hang", "slow-body", "truncated", "drift", "huge"} {
		t.Run(fault, func(t *testing.T) {
			r.t = t
			fs.set(fault, nil)
			r.waitUp(0, 3*time.Second)
			time.Sleep(2 * interval) // several failing scrapes
			if _, err := r.scrapeMetrics(); err != nil {
				t.Fatalf("/metrics during the fault: %v", err)
			}
			fs.set("", nil)
			d := r.waitUp(1, 5*time.Second)
			t.Logf("flink_up back to 1 %v after the fault ended (interval %v)", d.Round(time.Millisecond), interval)
			if d > recoverWithin {
				// Why the scrapes after the fault failed (a timeout under
				// load, a lingering fault): the collector's log since.
				t.Errorf("flink_up back to 1 after %v, more than one interval (%v); the collector's last log lines:\n%s",
					d, recoverWithin, lastLines(r.logs.String(), 30))
			}
		})
	}
	r.t = t

	// Connection refused: the JobManager is gone; it comes back on the same
	// address after a restart, with new job ids.
	t.Run("refused-then-restart-with-new-job-ids", func(t *testing.T) {
		r.t = t
		srv.Close()
		r.waitUp(0, 3*time.Second)
		time.Sleep(2 * interval)
		m, err := r.scrapeMetrics()
		if err != nil {
			t.Fatalf("/metrics while Flink is down: %v", err)
		}
		for k := range m {
			if strings.HasPrefix(k, "flink_job_info,") {
				t.Errorf("job series remain while Flink is unreachable: %s", k)
			}
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("cannot listen on %s again: %v", addr, err)
		}
		fs.set("", edgeRoutes(map[string]string{
			"/jobs/overview":  "jobs_overview_3.json",
			"/jobs/" + edgeA2: "job_A2_3.json", "/jobs/" + edgeA2 + "/checkpoints": "checkpoints_A2_3.json",
			"/jobs/" + edgeA2 + "/checkpoints/config": "config_A2.json",
			"/jobs/" + edgeB + "/checkpoints":         "checkpoints_B_2.json",
		}))
		srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: fs}}
		srv.Start()
		if d := r.waitUp(1, 5*time.Second); d > recoverWithin+interval {
			t.Errorf("flink_up back to 1 after %v; the collector's last log lines:\n%s", d, lastLines(r.logs.String(), 30))
		}
		m, err = r.scrapeMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if m["flink_job_info,job_id="+edgeA2+",job_name=orders,state=RUNNING"] != 1 {
			t.Errorf("the new job id is not exported: %v", keysWith(m, "flink_job_info"))
		}
		if v := m["flink_checkpoints_total,job_name=orders,kind=checkpoint,status=completed"]; v != 2 {
			t.Errorf("completed checkpoints of the new job = %v, want 2", v)
		}
		for k := range m {
			if strings.Contains(k, "82f544764b9d7ef78144aa8e6c093056") || strings.Contains(k, "62585e56162757d4cd89ea47bbb3eca8") {
				t.Errorf("a series of the old job id remains: %s", k)
			}
		}
	})
	r.t = t
	r.stop()
	srv.Close()

	logs := r.logs.String()
	if n := countLines(logs, "unusable Flink REST answers", "condition=started"); n == 0 || n > 8 {
		t.Errorf("%d warnings for unusable answers; want each run of bad bodies logged once per endpoint:\n%s", n, logs)
	}
	if n := countLines(logs, "Flink REST scrape failing", "condition=started"); n != 7 {
		t.Errorf("%d 'scrape failing' warnings, want one per fault (7):\n%s", n, logs)
	}
	if n := countLines(logs, "Flink REST scrape failing", "condition=ended occurrences="); n != 7 {
		t.Errorf("%d 'scrape failing' ends, want one per fault (7), with its count:\n%s", n, logs)
	}
	goleak.VerifyNone(t, leaks)
}

// countLines counts the lines of logs holding every one of parts.
func countLines(logs string, parts ...string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

func keysWith(m map[string]float64, prefix string) []string {
	var k []string
	for key := range m {
		if strings.HasPrefix(key, prefix) {
			k = append(k, key)
		}
	}
	return k
}

// TestHugeBodyMemoryBounded reads a 50 MB answer with max_response_bytes of
// 1 MiB: the scrape fails, counts a decode error, and allocates about the
// limit, not the body.
func TestHugeBodyMemoryBounded(t *testing.T) {
	fs := &faultServer{fault: "huge"}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	h := newHarness(t, &fixtureServer{srv: srv}, time.Now(), func(o *Options) { o.Flink.MaxResponseBytes = 1 << 20 })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := h.scrape()
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "max_response_bytes") {
		t.Fatalf("scrape error = %v, want the body limit", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("a 50 MB body made the scrape allocate %d bytes; want about the 1 MiB limit", alloc)
	}
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "flink_rest_decode_errors_total" {
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 1 {
				t.Errorf("decode errors = %v, want 1", v)
			}
			return
		}
	}
	t.Error("flink_rest_decode_errors_total not exported")
}

// lastLines is the end of a log, n lines at most.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
