package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/sink"
)

var update = flag.Bool("update", false, "rewrite the golden /metrics files from the current output")

// fixtureServer serves REST answers from files, by request path (the query
// is ignored), and counts requests. Unknown paths get Flink's 404 shape.
type fixtureServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]string // path → file
	hits   map[string]int    // path → requests
	total  int
}

func newFixtureServer(t *testing.T) *fixtureServer {
	f := &fixtureServer{t: t, routes: map[string]string{}, hits: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixtureServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	file, ok := f.routes[r.URL.Path]
	if list, has := f.routes[r.URL.Path+"#list"]; has && r.URL.RawQuery == "" {
		file, ok = list, true // a metrics endpoint without get=: the names
	}
	f.hits[r.URL.Path]++
	f.total++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":["Not found: ` + r.URL.Path + `"]}`))
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		f.t.Errorf("fixture %s: %v", file, err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}

// stage replaces the served answers.
func (f *fixtureServer) stage(routes map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = routes
}

// requests returns and resets the request count.
func (f *fixtureServer) requests() (int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, h := f.total, f.hits
	f.total, f.hits = 0, map[string]int{}
	return n, h
}

// captured maps the paths of a testdata/flink-<version> capture to its
// files (MANIFEST.json), with overrides: name → file of the same dir.
func captured(t *testing.T, dir string, overrides map[string]string) (routes map[string]string, jobID string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		JobID string `json:"job_id"`
		Files map[string]struct {
			Path    string `json:"path"`
			Status  int    `json:"status"`
			Variant string `json:"variant"` // another moment's answer of a path
		} `json:"files"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	routes = map[string]string{}
	for name, e := range m.Files {
		// One answer per path: the answer from before the first checkpoint
		// and the second cluster's are served only through overrides; the
		// metric-name listings answer requests without get=.
		if e.Status != 200 || e.Variant != "" || strings.Contains(name, "before_first") || strings.HasPrefix(name, "nocheckpointing_") {
			continue
		}
		p, _, _ := strings.Cut(e.Path, "?")
		if strings.Contains(name, "_list") {
			p += "#list"
		}
		if prev, taken := routes[p]; taken {
			t.Fatalf("%s and %s both answer %s", prev, name, p)
		}
		routes[p] = filepath.Join(dir, name)
	}
	for p, name := range overrides {
		p = strings.ReplaceAll(p, ":jobid", m.JobID)
		if name == "" {
			delete(routes, p)
			continue
		}
		routes[p] = filepath.Join(dir, name)
	}
	return routes, m.JobID
}

// harness is a collector on a fresh registry against a fixture server, with
// a fixed clock for the live checkpoint gauges.
type harness struct {
	t   *testing.T
	srv *fixtureServer
	reg *prometheus.Registry
	c   *Collector
	now time.Time
}

// testWatch is the checkpoint watch with the agent's sinks, as the agent
// wires it.
func testWatch(t testing.TB, o sink.Options) *checkpointwatch.Watch {
	t.Helper()
	if o.StuckRatio == 0 {
		o.StuckRatio = config.Default().Flink.StuckRatio
	}
	w, err := sink.Watch(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newHarness(t *testing.T, srv *fixtureServer, now time.Time, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, srv: srv, reg: prometheus.NewPedanticRegistry(), now: now}
	f := config.Default().Flink
	f.RestURL = srv.srv.URL
	f.ScrapeTimeout = config.Duration(5 * time.Second)
	opts := Options{Flink: f, Registerer: h.reg, Logger: slog.New(slog.DiscardHandler), Clock: func() time.Time { return h.now }}
	if mod != nil {
		mod(&opts)
	}
	if opts.Watch == nil {
		opts.Watch = testWatch(t, sink.Options{Registerer: h.reg, Statsd: opts.Statsd, Logger: opts.Logger,
			StuckRatio: f.StuckRatio, Clock: func() time.Time { return h.now }, Identity: edgeIdentity})
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h.c = c
	return h
}

func (h *harness) scrape() error {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.c.Scrape(ctx)
}

// goldenNames are the families the golden files hold: everything but the
// scrape duration, which no two runs share.
var goldenNames = []string{
	"flink_up", "flink_rest_requests_total", "flink_rest_decode_errors_total",
	"flink_cluster_taskmanagers", "flink_cluster_slots_total", "flink_cluster_slots_available", "flink_cluster_jobs",
	"flink_job_info", "flink_job_uptime_seconds", "flink_job_restarts_total", "flink_job_exceptions_total",
	"flink_checkpoint_duration_seconds", "flink_checkpoint_size_bytes", "flink_checkpoints_total",
	"flink_checkpoint_failures_total", "flink_checkpoint_failures_s3_throttled_total", "flink_checkpoint_in_progress",
	"flink_checkpoint_oldest_in_progress_age_seconds", "flink_checkpoint_last_completed_timestamp_seconds",
	"flink_checkpoint_consecutive_failures", "flink_checkpoint_failures_until_job_failure",
	"flink_checkpoint_interval_seconds", "flink_checkpoint_timeout_seconds", "flink_checkpoint_stuck",
	"flink_vertex_backpressure_ratio", "flink_vertex_busy_ratio",
	"flink_job_records_in_per_second", "flink_job_records_out_per_second", "flink_job_source_pending_records",
	"flink_job_watermark_lag_seconds", "flink_job_late_records_dropped_total",
	"flink_jvm_heap_used_bytes", "flink_jvm_heap_max_bytes", "flink_jvm_gc_time_seconds_total", "flink_jvm_heap_used_max_bytes",
}

// golden compares /metrics with testdata/golden/<name>.prom, or rewrites it
// with -update.
func (h *harness) golden(name string) {
	h.t.Helper()
	path := filepath.Join("testdata", "golden", name+".prom")
	if *update {
		mfs, err := h.reg.Gather()
		if err != nil {
			h.t.Fatal(err)
		}
		var buf bytes.Buffer
		keep := map[string]bool{}
		for _, n := range goldenNames {
			keep[n] = true
		}
		for _, mf := range mfs {
			if keep[mf.GetName()] {
				if err := writeText(&buf, mf); err != nil {
					h.t.Fatal(err)
				}
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.Open(path)
	if err != nil {
		h.t.Fatalf("%v (run the test with -update to create it)", err)
	}
	defer want.Close()
	if err := testutil.GatherAndCompare(h.reg, want, goldenNames...); err != nil {
		h.t.Errorf("%s: %v", path, err)
	}
}

func writeText(w *bytes.Buffer, mf *dto.MetricFamily) error {
	_, err := expfmt.MetricFamilyToText(w, mf)
	return err
}
