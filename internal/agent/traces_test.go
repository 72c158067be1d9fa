package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/sink/tracesink"
	"github.com/flink-agent/flink-agent/testbed"
)

// Checkpoint traces end to end, against the real Flink, Loki and a real
// OpenTelemetry Collector: agent A (OTLP/gRPC, every healthy checkpoint
// sampled) sees completed, failed (the job's fail switch) and slow (its
// sleep switch) checkpoints, then the collector is stopped for 30 s; agent
// B (OTLP/HTTP, the default sampling) restarts from log positions saved
// before the outage, as after a crash, while the JobManager's REST API is
// not answering yet, so the JobManager log it replays reaches the watch
// first. Then:
//   - every checkpoint Flink finished while A ran is one trace (N completed
//     and M failed: N+M traces), with the attributes, failure status
//     on the M, vertex children, subtask children on failed and slow ones;
//   - no checkpoint id is exported twice across A and B, and every one
//     after A's range up to the last B traced is a trace too;
//   - during the outage /metrics answered and counted the checkpoints Flink
//     counted, and log lines reached Loki as fast as before it; the failed
//     exports were retried (counted) and nothing was lost.
func TestCheckpointTraces(t *testing.T) {
	testbed.NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()

	var (
		fl   *testbed.Flink
		loki *testbed.Loki
		col  *testbed.OtelCol
		wg   sync.WaitGroup
		errs = make([]error, 3)
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		fl, errs[0] = testbed.StartFlink(ctx, testbed.FlinkOptions{
			CheckpointInterval: time.Second,
			// The whole history, to compare every traced id with Flink.
			Extra: map[string]string{"web.checkpoints.history": "1000"},
		})
	}()
	go func() { defer wg.Done(); loki, errs[1] = testbed.StartLoki(ctx, filepath.Join(dir, "loki")) }()
	go func() { defer wg.Done(); col, errs[2] = testbed.StartOtelCol(ctx, filepath.Join(dir, "otelcol")) }()
	wg.Wait()
	defer func() {
		for _, stop := range []func(){func() { fl.Stop() }, func() { loki.Stop() }, func() { _ = col.Stop() }} {
			stop()
		}
	}()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	jobID, err := fl.SubmitJob(ctx, testbed.JobOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.WaitJobRunning(ctx, jobID); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.WaitCheckpoints(ctx, jobID, 1); err != nil {
		t.Fatal(err)
	}

	tap := &ackTap{target: loki.PushURL(), acked: map[int]time.Time{}}
	tapSrv := httptest.NewServer(tap)
	defer tapSrv.Close()
	markers := &markerWriter{path: filepath.Join(fl.LogDir, "markers.log"), written: map[int]time.Time{}}
	positions := filepath.Join(dir, "agent", "positions.json")

	// Agent A: gRPC, every checkpoint's vertices, and a budget for them
	// (Flink's REST shows the 1 s checkpoints three at a time).
	a := startTracesAgent(ctx, t, tracesAgent{
		restURL: fl.RESTURL(), logDir: fl.LogDir, positions: positions, lokiURL: tapSrv.URL,
		endpoint: col.GRPCURL(), protocol: config.ProtocolGRPC, sampleRatio: 1, budget: 12, phase: "A",
	})
	markersFrom := time.Now()
	stopMarkers := markers.run(100 * time.Millisecond)
	time.Sleep(4 * time.Second)
	// M failures: the tasks decline; then slow checkpoints: every snapshot
	// sleeps 700 ms, more than traces.slow_ratio (0.5) of the 1 s interval.
	before, _ := fl.Checkpoints(ctx, jobID)
	must(t, fl.SetFault(testbed.FaultFail, "1"))
	_, err = fl.WaitCheckpointsFunc(ctx, jobID, func(c testbed.CheckpointCounts) bool { return c.Failed >= before.Failed+3 })
	must(t, err)
	must(t, fl.ClearFaults())
	mid, _ := fl.Checkpoints(ctx, jobID)
	must(t, fl.SetFault(testbed.FaultSleepMS, "700"))
	_, err = fl.WaitCheckpointsFunc(ctx, jobID, func(c testbed.CheckpointCounts) bool { return c.Completed >= mid.Completed+3 })
	must(t, err)
	must(t, fl.ClearFaults())
	time.Sleep(3 * time.Second)
	// What a crash would leave: positions from before the outage.
	crash := filepath.Join(dir, "crash")
	must(t, copyFiles(filepath.Dir(positions), crash))

	// The collector down for 30 s.
	must(t, col.Stop())
	outageStart := time.Now()
	worst, scrapes := time.Duration(0), 0
	completedAtStart := a.value(t, "flink_checkpoints_total", "status", "completed")
	flinkAtStart, err := fl.Checkpoints(ctx, jobID)
	must(t, err)
	for time.Since(outageStart) < 30*time.Second {
		t0 := time.Now()
		_, err := a.metrics.Gather()
		if err != nil {
			t.Errorf("/metrics during the outage: %v", err)
		}
		worst = max(worst, time.Since(t0))
		scrapes++
		time.Sleep(500 * time.Millisecond)
	}
	completedDuring := a.value(t, "flink_checkpoints_total", "status", "completed") - completedAtStart
	flinkAtEnd, err := fl.Checkpoints(ctx, jobID)
	must(t, err)
	flinkDuring := float64(flinkAtEnd.Completed - flinkAtStart.Completed)
	outageEnd := time.Now()
	must(t, col.Start(ctx))
	t.Logf("collector down %s: %d /metrics scrapes, slowest %s; %v checkpoints counted meanwhile, Flink completed %v",
		outageEnd.Sub(outageStart).Round(time.Second), scrapes, worst.Round(time.Millisecond), completedDuring, flinkDuring)
	// The agent counts from the log within a second; Flink's REST counts
	// are cached for up to 3 s (web.refresh-interval): at 1 s checkpoints
	// the two may differ by that much at either end, never by a stall.
	if worst > 2*time.Second || flinkDuring < 10 || completedDuring < flinkDuring-4 || completedDuring > flinkDuring+4 {
		t.Errorf("during the outage: slowest /metrics %s, %v checkpoints counted, Flink completed %v; want < 2s and the same count ±4",
			worst, completedDuring, flinkDuring)
	}
	// The retried exports get through: nothing is left waiting.
	deadline := time.Now().Add(45 * time.Second)
	for a.value(t, "flink_agent_otlp_queued_spans") > 0 || a.value(t, "flink_agent_otlp_batches_total", "result", "success") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spans still queued 45 s after the collector came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	retries := a.value(t, "flink_agent_otlp_batches_total", "result", "retry")
	dropped := a.value(t, "flink_agent_otlp_spans_dropped_total", "reason", "export_failed") +
		a.value(t, "flink_agent_otlp_spans_dropped_total", "reason", "queue_full")
	t.Logf("after the outage: %v export attempts retried, %v spans dropped", retries, dropped)
	if retries == 0 || dropped != 0 {
		t.Errorf("retried %v, dropped %v: want retries counted and nothing dropped (the queue holds 30 s of spans)", retries, dropped)
	}
	stopMarkers()
	time.Sleep(2 * time.Second) // the last markers shipped
	a.stop(t)
	markers.check(t, tap, markersFrom, outageStart, outageEnd)

	// Agent B: OTLP/HTTP, default sampling, restarted from the crash
	// positions while REST is not answering for its first 3 s.
	// The traces state file stays as A left it (a crash loses at most the
	// ids of the last export batch).
	must(t, copyFiles(crash, filepath.Dir(positions)))
	restGate := newLateREST(t, fl.RESTURL(), 3*time.Second)
	startCounts, _ := fl.Checkpoints(ctx, jobID)
	b := startTracesAgent(ctx, t, tracesAgent{
		restURL: restGate.URL, logDir: fl.LogDir, positions: positions, lokiURL: tapSrv.URL,
		endpoint: col.HTTPURL(), protocol: config.ProtocolHTTP, phase: "B",
		sampleRatio: config.Default().Traces.SampleRatio, budget: config.Default().Traces.MaxDetailRequestsPerScrape,
	})
	time.Sleep(5 * time.Second)
	before, _ = fl.Checkpoints(ctx, jobID)
	must(t, fl.SetFault(testbed.FaultFail, "1"))
	_, err = fl.WaitCheckpointsFunc(ctx, jobID, func(c testbed.CheckpointCounts) bool { return c.Failed >= before.Failed+2 })
	must(t, err)
	must(t, fl.ClearFaults())
	time.Sleep(6 * time.Second)
	skipped := b.value(t, "flink_agent_checkpoint_traces_total", "result", "already_exported")
	endCounts, _ := fl.Checkpoints(ctx, jobID)
	economy := restEconomy(t, b, endCounts.Completed-startCounts.Completed, endCounts.Failed-startCounts.Failed)
	b.stop(t)
	if skipped == 0 {
		t.Errorf("agent B replayed the JobManager log but found no checkpoint exported before: the test did not exercise the restart")
	}
	t.Logf("agent B: %v replayed checkpoints not exported again; %s", skipped, economy)

	checkTraces(t, ctx, fl, col, jobID)
}

// tracesAgent is one run of the agent for TestCheckpointTraces.
type tracesAgent struct {
	restURL, logDir, positions, lokiURL string
	endpoint, protocol                  string
	sampleRatio                         float64
	budget                              int
	phase                               string
	state                               string // the traces state file, checked to exist

	metrics prometheus.Gatherer
	cancel  context.CancelFunc
	done    chan error
}

func startTracesAgent(ctx context.Context, t *testing.T, a tracesAgent) *tracesAgent {
	t.Helper()
	port, err := testbed.FreePort()
	must(t, err)
	cfg := config.Default()
	cfg.Flink.RestURL = a.restURL
	cfg.Flink.ScrapeInterval = config.Duration(time.Second)
	cfg.Logs.Paths = []string{filepath.Join(a.logDir, "*.log")}
	cfg.Logs.PositionsFile = a.positions
	cfg.Loki.URL = a.lokiURL
	cfg.Loki.BatchWait = config.Duration(250 * time.Millisecond)
	cfg.DogStatsD.Address = ""
	cfg.Web.ListenAddress = testbed.Addr(port)
	cfg.Shutdown.Timeout = config.Duration(10 * time.Second)
	cfg.Traces.OTLPEndpoint = a.endpoint
	cfg.Traces.OTLPProtocol = a.protocol
	cfg.Traces.SampleRatio = a.sampleRatio
	cfg.Traces.MaxDetailRequestsPerScrape = a.budget
	cfg.Traces.ResourceAttributes = map[string]string{"test.phase": a.phase}
	must(t, cfg.Validate())
	a.state = tracesState(cfg.Logs)
	runCtx, cancel := context.WithCancel(ctx)
	a.cancel, a.done = cancel, make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		a.done <- Run(runCtx, cfg, Deps{
			Identity: identity.Identity{Cluster: "traces", Namespace: "flink", Pod: "jm-0", Component: identity.JobManager},
			Ready:    ready, Version: "test",
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("agent", a.phase),
		})
	}()
	select {
	case addr := <-ready:
		a.metrics = testbed.ScrapeGatherer("http://"+addr+"/metrics", 5*time.Second)
	case err := <-a.done:
		t.Fatalf("agent %s: %v", a.phase, err)
	}
	return &a
}

func (a *tracesAgent) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, err := testbed.GatherValue(a.metrics, name, labels...)
	if err != nil {
		t.Fatalf("agent %s /metrics: %v", a.phase, err)
	}
	return v
}

func (a *tracesAgent) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	if err := <-a.done; err != nil {
		t.Errorf("agent %s: %v", a.phase, err)
	}
	if _, err := os.Stat(a.state); err != nil {
		t.Errorf("agent %s left no traces state file: %v", a.phase, err)
	}
}

// restEconomy describes the REST requests agent b made, for checkpoint
// details among them, while Flink finished completed and failed
// checkpoints, and checks that sampling kept the details well under one
// per checkpoint.
func restEconomy(t *testing.T, b *tracesAgent, completed, failed int64) string {
	t.Helper()
	mfs, err := b.metrics.Gather()
	must(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "flink_rest_requests_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	details := max(0, b.value(t, "flink_rest_requests_total", "endpoint", "/jobs/:jobid/checkpoints/details/:checkpointid"))
	subtasks := max(0, b.value(t, "flink_rest_requests_total", "endpoint", "/jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid"))
	scrapes := b.value(t, "flink_rest_requests_total", "endpoint", "/jobs/overview")
	if details > float64(failed)+float64(completed)/2 {
		t.Errorf("%v details requests for %d failed and %d completed checkpoints: sampling at 0.1 should read far fewer", details, failed, completed)
	}
	return fmt.Sprintf("%v scrapes made %v REST requests while Flink completed %d and failed %d checkpoints; among them %v details and %v subtask requests",
		scrapes, total, completed, failed, details, subtasks)
}

// checkTraces compares what the collector received with Flink's history.
func checkTraces(t *testing.T, ctx context.Context, fl *testbed.Flink, col *testbed.OtelCol, jobID string) {
	t.Helper()
	must(t, col.Stop()) // flushes its file
	spans, err := col.Spans()
	must(t, err)
	last := int64(0) // the newest checkpoint traced
	for _, sp := range spans {
		if id, ok := sp.Attrs["flink.checkpoint.id"].(int64); ok && sp.Name == "flink.checkpoint" {
			last = max(last, id)
		}
	}
	// Flink's REST shows a checkpoint up to a few seconds after its log line
	// (its statistics are cached): agent B traced its last ones from the log
	// as it stopped.
	flink := map[int64]string{}
	messages := map[int64]string{}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	testbed.Eventually(wctx, t, "Flink's history shows every traced checkpoint", func() (bool, string) {
		var hist struct {
			History []struct {
				ID             int64  `json:"id"`
				Status         string `json:"status"`
				FailureMessage string `json:"failure_message"`
			} `json:"history"`
		}
		if err := fl.GetJSON(ctx, "/jobs/"+jobID+"/checkpoints", &hist); err != nil {
			return false, err.Error()
		}
		for _, h := range hist.History {
			flink[h.ID] = h.Status
			messages[h.ID] = h.FailureMessage
		}
		st := flink[last]
		return st == "COMPLETED" || st == "FAILED", fmt.Sprintf("checkpoint %d: %q", last, st)
	})

	children := map[string][]testbed.Span{} // by parent span id
	roots := map[int64][]testbed.Span{}
	for _, s := range spans {
		if s.Name == "flink.checkpoint" {
			id, _ := s.Attrs["flink.checkpoint.id"].(int64)
			roots[id] = append(roots[id], s)
			continue
		}
		children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
	}
	var phaseA []int64
	for id, rs := range roots {
		if len(rs) != 1 {
			t.Errorf("checkpoint %d exported %d times", id, len(rs))
		}
		if rs[0].Resource["test.phase"] == "A" {
			phaseA = append(phaseA, id)
		}
	}
	sort.Slice(phaseA, func(a, b int) bool { return phaseA[a] < phaseA[b] })
	if len(phaseA) < 10 {
		t.Fatalf("agent A exported %d checkpoint traces", len(phaseA))
	}
	lo, hi := phaseA[0], phaseA[len(phaseA)-1]
	n, m, slow, withSubtasks, budgetSkipped, unsampled := 0, 0, 0, 0, 0, 0
	for id := lo; id <= hi; id++ {
		switch flink[id] {
		case "COMPLETED":
			n++
		case "FAILED":
			m++
		default:
			t.Errorf("checkpoint %d: Flink says %q", id, flink[id])
			continue
		}
		rs := roots[id]
		if len(rs) == 0 {
			t.Errorf("checkpoint %d (%s) has no trace", id, flink[id])
			continue
		}
		r := rs[0]
		if r.Resource["test.phase"] != "A" {
			t.Errorf("checkpoint %d traced by %v, inside agent A's range", id, r.Resource["test.phase"])
		}
		for k, v := range map[string]any{"service.name": "flink-agent", "k8s.pod.name": "jm-0", "k8s.namespace.name": "flink", "flink.cluster.name": "traces"} {
			if r.Resource[k] != v {
				t.Errorf("checkpoint %d: resource %s = %v, want %v", id, k, r.Resource[k], v)
			}
		}
		if r.TraceID != tracesink.TraceID(jobID, id).String() || r.ParentSpanID != "" {
			t.Errorf("checkpoint %d: trace %s parent %q, want the derived trace id %s and a root span", id, r.TraceID, r.ParentSpanID, tracesink.TraceID(jobID, id))
		}
		want := map[string]any{"flink.job.id": jobID, "flink.job.name": "flink-agent testbed checkpointing job",
			"flink.checkpoint.kind": "checkpoint", "flink.checkpoint.status": strings.ToLower(flink[id])}
		for k, v := range want {
			if r.Attrs[k] != v {
				t.Errorf("checkpoint %d: %s = %v, want %v", id, k, r.Attrs[k], v)
			}
		}
		if _, ok := r.Attrs["flink.checkpoint.state_size"].(int64); !ok {
			t.Errorf("checkpoint %d: no state size (%v)", id, r.Attrs)
		}
		if !r.End.After(r.Start) && flink[id] == "COMPLETED" {
			t.Errorf("checkpoint %d: span from %s to %s", id, r.Start, r.End)
		}
		failed := flink[id] == "FAILED"
		if failed {
			if r.StatusCode != "STATUS_CODE_ERROR" || r.Attrs["flink.checkpoint.failure.reason"] != "async_failure" ||
				r.Attrs["flink.checkpoint.failure.message"] != messages[id] || r.Attrs["flink.checkpoint.failure.s3_throttled"] != false {
				t.Errorf("checkpoint %d failed: status %q %q, attributes %v", id, r.StatusCode, r.StatusMessage, r.Attrs)
			}
		} else if r.StatusCode == "STATUS_CODE_ERROR" {
			t.Errorf("checkpoint %d completed but its span has an error status", id)
		}
		if r.Attrs["flink.checkpoint.slow"] == true {
			slow++
		}
		details, _ := r.Attrs["flink.checkpoint.details"].(string)
		switch details {
		case "unavailable":
			if e, _ := r.Attrs["flink.checkpoint.details.error"].(string); strings.Contains(e, "max_detail_requests_per_scrape") {
				budgetSkipped++
				continue
			}
			t.Errorf("checkpoint %d: details unavailable (%v)", id, r.Attrs)
			continue
		case "not_sampled":
			// Sampling is 1: only checkpoints the first scrape found ended
			// (the log had counted them), and those the log saw end when
			// A stopped, before REST showed them.
			unsampled++
			continue
		}
		vertices := children[r.SpanID]
		if len(vertices) != 3 {
			t.Errorf("checkpoint %d: %d vertex spans, want the job's 3", id, len(vertices))
		}
		var subs []testbed.Span
		for _, v := range vertices {
			subs = append(subs, children[v.SpanID]...)
		}
		if failed || r.Attrs["flink.checkpoint.slow"] == true {
			if details != "subtasks" || len(subs) == 0 || len(subs) > 5 {
				t.Errorf("checkpoint %d (failed %v): details %q with %d subtask spans, want subtasks, 1 to 5", id, failed, details, len(subs))
			} else {
				withSubtasks++
			}
		} else if len(subs) != 0 {
			t.Errorf("checkpoint %d is healthy but has %d subtask spans", id, len(subs))
		}
	}
	t.Logf("agent A: checkpoints %d to %d: %d completed + %d failed = %d traces; %d slow; %d with subtasks; without details: %d (budget), %d (not seen by REST in time)",
		lo, hi, n, m, len(phaseA), slow, withSubtasks, budgetSkipped, unsampled)
	if n+m != len(phaseA) || m < 3 || slow < 1 || budgetSkipped > len(phaseA)/4 || unsampled > 8 {
		t.Errorf("want N+M = %d traces, M ≥ 3 failed, ≥ 1 slow, few without details", len(phaseA))
	}
	// After A's range, through B's restart: every checkpoint Flink finished
	// up to the last one B traced is one trace too, none lost in between.
	afterA := 0
	for id := hi + 1; id <= last; id++ {
		switch {
		case flink[id] != "COMPLETED" && flink[id] != "FAILED":
			t.Errorf("checkpoint %d: Flink says %q", id, flink[id])
		case len(roots[id]) != 1:
			t.Errorf("checkpoint %d (%s) after agent A's range has %d traces", id, flink[id], len(roots[id]))
		default:
			afterA++
		}
	}
	t.Logf("after agent A: checkpoints %d to %d, each one trace (%d)", hi+1, last, afterA)
	if text := spanTree(roots, children); text != "" {
		t.Logf("the span tree of a failed checkpoint:\n%s", text)
	}
}

// spanTree renders the first failed checkpoint's trace as text (the one the
// README shows).
func spanTree(roots map[int64][]testbed.Span, children map[string][]testbed.Span) string {
	var ids []int64
	for id := range roots {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	for _, id := range ids {
		r := roots[id][0]
		if r.Attrs["flink.checkpoint.status"] != "failed" || r.Attrs["flink.checkpoint.details"] != "subtasks" {
			continue
		}
		var b strings.Builder
		var walk func(s testbed.Span, depth int)
		walk = func(s testbed.Span, depth int) {
			ind := strings.Repeat("  ", depth)
			fmt.Fprintf(&b, "%s%s  [%s, %s]", ind, s.Name, s.Start.Sub(r.Start).Round(time.Millisecond), s.End.Sub(s.Start).Round(time.Millisecond))
			if s.StatusCode == "STATUS_CODE_ERROR" {
				fmt.Fprintf(&b, "  ERROR %q", s.StatusMessage)
			}
			b.WriteString("\n")
			keys := make([]string, 0, len(s.Attrs))
			for k := range s.Attrs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s    %s=%v\n", ind, k, s.Attrs[k])
			}
			for _, e := range s.Events {
				fmt.Fprintf(&b, "%s    event +%s %q %v\n", ind, e.Time.Sub(r.Start).Round(time.Millisecond), e.Name, e.Attrs)
			}
			kids := children[s.SpanID]
			sort.Slice(kids, func(a, c int) bool { return kids[a].Name < kids[c].Name })
			for _, k := range kids {
				walk(k, depth+1)
			}
		}
		walk(r, 0)
		return b.String()
	}
	return ""
}

// markerWriter appends a log4j line with a sequence number to a log file
// the agent tails, every interval, noting when each was written.
type markerWriter struct {
	path    string
	mu      sync.Mutex
	written map[int]time.Time
}

func (m *markerWriter) run(interval time.Duration) (stop func()) {
	f, err := os.OpenFile(m.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if err != nil {
			return
		}
		defer f.Close()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			now := time.Now()
			line := fmt.Sprintf("%s INFO  org.example.Marker                                           [] - marker seq=%d\n", now.Format("2006-01-02 15:04:05,000"), seq)
			if _, err := f.WriteString(line); err != nil {
				return
			}
			m.mu.Lock()
			m.written[seq] = time.Now()
			m.mu.Unlock()
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// check: every marker reached Loki; those written during the outage
// (from, to) as fast as those written before it, since start.
func (m *markerWriter) check(t *testing.T, tap *ackTap, start, from, to time.Time) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var before, during []time.Duration
	missing := 0
	for seq, w := range m.written {
		a, ok := tap.ackedAt(seq)
		switch {
		case !ok:
			missing++
		case w.After(from) && w.Before(to):
			during = append(during, a.Sub(w))
		case w.After(start) && w.Before(from):
			before = append(before, a.Sub(w))
		}
	}
	if missing > 0 || len(during) < 100 || len(before) < 50 {
		t.Fatalf("%d of %d marker lines never reached Loki; %d written before the outage, %d during it", missing, len(m.written), len(before), len(during))
	}
	p := func(d []time.Duration, q int) time.Duration {
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		return d[len(d)*q/100].Round(time.Millisecond)
	}
	t.Logf("log lines written → acknowledged by Loki: before the collector outage %d lines, p50 %s, p99 %s; during it %d lines, p50 %s, p99 %s",
		len(before), p(before, 50), p(before, 99), len(during), p(during, 50), p(during, 99))
	if p99 := p(during, 99); p99 > max(2*time.Second, 2*p(before, 99)) {
		t.Errorf("p99 written → acknowledged during the outage %s, before it %s: want < 2s or at most twice as long", p99, p(before, 99))
	}
}

// newLateREST is Flink's REST API that answers 503 for its first after.
func newLateREST(t *testing.T, target string, after time.Duration) *httptest.Server {
	u, err := url.Parse(target)
	must(t, err)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var open atomic.Bool
	time.AfterFunc(after, func() { open.Store(true) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open.Load() {
			http.Error(w, `{"errors":["starting"]}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func copyFiles(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), "traces-exported") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
