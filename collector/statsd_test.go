package collector

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/testbed"
)

var edgeIdentity = identity.Identity{Cluster: "c1", Namespace: "streaming", Pod: "orders-jm-0", Component: identity.JobManager}

// edgeScrapes runs the first two scrapes of TestGoldenEdgeCases.
func edgeScrapes(t *testing.T, h *harness, srv *fixtureServer) {
	t.Helper()
	A, B := "/jobs/"+edgeA, "/jobs/"+edgeB
	srv.stage(edgeRoutes(map[string]string{
		"/jobs/overview": "jobs_overview_1.json",
		A:                "job_A_1.json", A + "/checkpoints": "checkpoints_A_1.json", A + "/checkpoints/config": "config_A.json",
		B: "job_B_1.json", B + "/checkpoints": "checkpoints_B_1.json", B + "/checkpoints/config": "config_B.json",
	}))
	must(t, h.scrape())
	h.now = time.UnixMilli(edgeT + 380000)
	srv.stage(edgeRoutes(map[string]string{
		"/jobs/overview": "jobs_overview_2.json",
		A:                "job_A_2.json", A + "/checkpoints": "checkpoints_A_2.json",
		A + "/checkpoints/details/32": "details_A_32.json", A + "/exceptions": "exceptions_A.json",
		B: "job_B_2.json", B + "/checkpoints": "checkpoints_B_2.json",
	}))
	must(t, h.scrape())
}

// TestDogStatsDInStatsdExporter sends the edge-case scrapes' DogStatsD
// counterparts to a real statsd_exporter and finds them there with their
// tags, agreeing with the Prometheus side (see testdata/golden/edge-2.prom).
func TestDogStatsDInStatsdExporter(t *testing.T) {
	testbed.NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	se, err := testbed.StartStatsdExporter(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer se.Stop()
	sd, err := dogstatsd.New(se.UDPAddr, edgeIdentity.Tags(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()

	srv := newFixtureServer(t)
	h := newHarness(t, srv, time.UnixMilli(edgeT+125000), func(o *Options) { o.Statsd = sd })
	edgeScrapes(t, h, srv)
	must(t, sd.Flush())

	type want struct {
		name   string
		labels map[string]string
		value  float64
	}
	// Every point carries the identity's global tags.
	global := func(extra ...string) map[string]string {
		l := map[string]string{"cluster": "c1", "namespace": "streaming", "pod": "orders-jm-0", "component": "jobmanager"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	orders := func(extra ...string) map[string]string {
		return global(append([]string{"job_name", "orders"}, extra...)...)
	}
	wants := []want{
		{"flink_checkpoint_completed", orders("kind", "checkpoint"), 16},
		{"flink_checkpoint_completed", orders("kind", "savepoint"), 1},
		{"flink_checkpoint_failed", orders("kind", "checkpoint", "reason", "expired"), 1},
		{"flink_checkpoint_failed", orders("kind", "checkpoint", "reason", "async_failure"), 1},
		{"flink_checkpoint_failed", orders("kind", "checkpoint", "reason", "other"), 1},
		{"flink_checkpoint_duration", orders("kind", "checkpoint"), 6}, // observations, not the 10 without durations
		{"flink_checkpoint_stuck", orders(), 1},
		{"flink_checkpoint_in_progress", orders(), 1},
		{"flink_checkpoint_oldest_in_progress_age", orders(), 50},
		{"flink_checkpoint_consecutive_failures", orders(), 1},
		{"flink_checkpoint_failures_until_job_failure", orders(), 3},
		{"flink_checkpoint_interval", orders(), 10},
		{"flink_checkpoint_timeout", orders(), 60},
		{"flink_job_restarts", orders(), 1},
		{"flink_job_uptime", orders(), 79},
		{"flink_vertex_backpressure_ratio", orders("vertex", "Source: orders -> parse"), 0.25},
		{"flink_vertex_busy_ratio", orders("vertex", "aggregate -> Sink: out"), 0.2},
		{"flink_up", global(), 1},
		{"flink_cluster_taskmanagers", global(), 2},
		{"flink_cluster_jobs", global("state", "RUNNING"), 2},
		{"flink_jvm_heap_used", global("flink_component", "taskmanager"), 4e8},
	}
	var last []string
	err = testbed.WaitFor(ctx, se.Proc, 200*time.Millisecond, func(ctx context.Context) error {
		mfs, err := se.Metrics(ctx)
		if err != nil {
			return err
		}
		last = last[:0]
		for _, w := range wants {
			got, ok := find(mfs[w.name], w.labels)
			if !ok || got != w.value {
				last = append(last, fmt.Sprintf("%s%v = %v (found %v)", w.name, w.labels, got, ok))
			}
		}
		if len(last) > 0 {
			return fmt.Errorf("%d not as expected", len(last))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v:\n%s", err, strings.Join(last, "\n"))
	}
}

// find returns the value of the series whose labels are exactly want:
// counters and gauges their value, summaries and histograms their count.
func find(mf *dto.MetricFamily, want map[string]string) (float64, bool) {
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		l := testbed.LabelsOf(m)
		if len(l) != len(want) {
			continue
		}
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetSummary() != nil:
			return float64(m.GetSummary().GetSampleCount()), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// udpSink collects raw DogStatsD datagrams. statsd_exporter drops events
// and service checks, and no Datadog Agent runs here: their wire format is
// checked as sent.
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string
}

func newUDPSink(t *testing.T) *udpSink {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{conn: c}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")...)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *udpSink) lines(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.got {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestDatadogEventsAndServiceCheck: one error event per failed checkpoint
// with Flink's raw message and the job's aggregation key, a warning event
// for the restart, and flink.checkpoint.can_complete CRITICAL while a
// checkpoint is stuck.
func TestDatadogEventsAndServiceCheck(t *testing.T) {
	sink := newUDPSink(t)
	sd, err := dogstatsd.New(sink.conn.LocalAddr().String(), edgeIdentity.Tags(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	srv := newFixtureServer(t)
	h := newHarness(t, srv, time.UnixMilli(edgeT+125000), func(o *Options) { o.Statsd = sd })
	edgeScrapes(t, h, srv)
	must(t, sd.Flush())

	deadline := time.Now().Add(5 * time.Second)
	for len(sink.lines("_e{")) < 3 || len(sink.lines("_sc|")) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("events %q, service checks %q", sink.lines("_e{"), sink.lines("_sc|"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var errorEvents, restartEvents []string
	for _, e := range sink.lines("_e{") {
		switch {
		case strings.Contains(e, "|t:error"):
			errorEvents = append(errorEvents, e)
		case strings.Contains(e, "|t:warning"):
			restartEvents = append(restartEvents, e)
		}
	}
	if len(errorEvents) != 2 {
		t.Fatalf("error events = %q, want one per failed checkpoint seen with its message (30 and 32)", errorEvents)
	}
	expired := ""
	for _, e := range errorEvents {
		if strings.Contains(e, "Flink checkpoint 32 of orders failed: expired") {
			expired = e
		}
		for _, part := range []string{"|k:flink-checkpoint:c1/streaming/orders", "|s:flink", "job_name:orders", "job_id:" + edgeA} {
			if !strings.Contains(e, part) {
				t.Errorf("event lacks %q: %s", part, e)
			}
		}
	}
	if !strings.Contains(expired, "Checkpoint expired before completing.") ||
		!strings.Contains(expired, `not acknowledged by: aggregate -> Sink: out (0/2 subtasks)`) {
		t.Errorf("expired event lacks the raw message or the details: %s", expired)
	}
	// The restart's event: the new exception's class in the title, its
	// first line, where, the root cause's first lines and the failure
	// labels; the entry from before the agent's first look is not in it.
	if len(restartEvents) != 1 {
		t.Fatalf("restart events = %q", restartEvents)
	}
	for _, part := range []string{
		"Flink job orders restarted: RemoteTransportException|org.apache.flink.runtime.io.network.netty.exception.RemoteTransportException: Lost connection",
		`Lost connection to task manager '10.0.0.7/10.0.0.7:41234'.\nTask aggregate -> Sink: out (2/2) at 10.0.0.7:41234`,
		"Root cause:\\nCaused by: java.io.IOException: Connection reset by peer\\n\tat sun.nio.ch.FileDispatcherImpl.read0(Native Method)",
		"Failure labels: type=SYSTEM",
		"exception:org.apache.flink.runtime.io.network.netty.exception.RemoteTransportException", "failure_label_type:SYSTEM",
	} {
		if !strings.Contains(restartEvents[0], part) {
			t.Errorf("restart event lacks %q: %s", part, restartEvents[0])
		}
	}
	if strings.Contains(restartEvents[0], "x.y(Z.java:1)") {
		t.Errorf("restart event shows an exception from before the agent's first look: %s", restartEvents[0])
	}
	if got := sink.lines("flink.job.exceptions:"); len(got) != 1 || !strings.Contains(got[0], "exception:org.apache.flink.runtime.io.network.netty.exception.RemoteTransportException") {
		t.Errorf("flink.job.exceptions = %q, want one count of the new exception", got)
	}
	var critical bool
	for _, sc := range sink.lines("_sc|flink.checkpoint.can_complete|") {
		if strings.HasPrefix(sc, "_sc|flink.checkpoint.can_complete|2|") && strings.Contains(sc, "job_name:orders") {
			critical = true
		}
	}
	if !critical {
		t.Errorf("no CRITICAL can_complete for the stuck job: %q", sink.lines("_sc|"))
	}
}
