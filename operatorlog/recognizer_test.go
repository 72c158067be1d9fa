package operatorlog

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/internal/logtest"
)

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		line                  string
		ok                    bool
		logger, level, ns, nm string
		msg                   string
	}{
		{"2026-12-02 03:00:00,000 o.a.f.k.o.r.d.AbstractJobReconciler [WARN ][ns/app] Savepoint failed within grace period, retrying: x",
			true, "o.a.f.k.o.r.d.AbstractJobReconciler", "WARN", "ns", "app", "Savepoint failed within grace period, retrying: x"},
		{"2026-12-02 03:00:00,000 o.a.f.k.o.FlinkOperator        [INFO ] Starting Flink Kubernetes Operator",
			true, "o.a.f.k.o.FlinkOperator", "INFO", "", "", "Starting Flink Kubernetes Operator"},
		{"2026-12-02 03:00:00,000 o.a.f.k.o.FlinkOperator        [ERROR] [flink-main-container] not MDC",
			true, "o.a.f.k.o.FlinkOperator", "ERROR", "", "", "[flink-main-container] not MDC"},
		// A resource without a namespace, and a namespace without a name.
		{"2026-12-02 03:00:00,000 i.j.o.p.e.EventProcessor       [WARN ]cluster-thing] msg", true, "i.j.o.p.e.EventProcessor", "WARN", "", "cluster-thing", "msg"},
		{"2026-12-02 03:00:00,000 i.j.o.p.e.EventProcessor       [WARN ][ns/ msg", true, "i.j.o.p.e.EventProcessor", "WARN", "ns", "", "msg"},
		{"2026-12-02 03:00:00,000 x [INFO ][ns/app]", true, "x", "INFO", "ns", "app", ""},
		// Stack trace lines after the first are not part of the header.
		{"2026-12-02 03:00:00,000 x [ERROR][a/b] boom\njava.lang.IllegalStateException: [x/y]", true, "x", "ERROR", "a", "b", "boom"},
		// Flink's own layout, and garbage.
		{"2026-12-02 03:00:00,000 WARN  org.apache.flink.runtime.Foo [] - Rollback is not possible due to missing HA metadata", false, "", "", "", "", ""},
		{"2026-12-02 03:00:00,000 x [NOPE ] msg", false, "", "", "", "", ""},
		{"2026-12-02 03:00:00,000 x", false, "", "", "", "", ""},
		{"2026-13-02 03:00:00,000 x [INFO ] bad month", false, "", "", "", "", ""},
		{"\tat org.apache.flink.Foo(Foo.java:1)", false, "", "", "", "", ""},
		{"", false, "", "", "", "", ""},
	} {
		var h Header
		ok := ParseHeader([]byte(tc.line), &h)
		if ok != tc.ok {
			t.Errorf("%q: ok %v", tc.line, ok)
			continue
		}
		if !ok {
			continue
		}
		got := fmt.Sprintf("%s|%s|%s|%s|%s", h.Logger, h.Level, h.Namespace, h.Name, h.Message)
		want := fmt.Sprintf("%s|%s|%s|%s|%s", tc.logger, tc.level, tc.ns, tc.nm, tc.msg)
		if got != want {
			t.Errorf("%q\n got %s\nwant %s", tc.line, got, want)
		}
		if h.Time != time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC) {
			t.Errorf("%q: time %v", tc.line, h.Time)
		}
	}
}

func opLine(ts time.Time, ns, name, msg string) []byte {
	return []byte(fmt.Sprintf("%s o.a.f.k.o.r.d.AbstractFlinkResourceReconciler [WARN ][%s/%s] %s",
		ts.Format(TimeLayout), ns, name, msg))
}

const jmLost = "Could not recover lost jobmanager deployment without HA enabled"

func TestResourceLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(Options{Registerer: reg, MaxResources: 3, Clock: func() time.Time { return corpusNow }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r.Scan(time.Time{}, opLine(corpusNow.Add(-time.Minute), "ns", fmt.Sprintf("app-%d", i), jmLost))
	}
	r.Scan(time.Time{}, opLine(corpusNow.Add(-time.Minute), "ns", "app-0", jmLost)) // known: keeps its labels
	got := series(t, reg)
	want := map[string]int{
		MetricJobManager + " ns/app-0": 2, MetricJobManager + " ns/app-1": 1, MetricJobManager + " ns/app-2": 1,
		MetricJobManager + " other/other": 2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestDatadogEvents(t *testing.T) {
	now := corpusNow
	reg := prometheus.NewRegistry()
	sd := &logtest.Statsd{}
	r, err := New(Options{Registerer: reg, Statsd: dogstatsd.Wrap(sd, true), EventInterval: 10 * time.Minute,
		Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// Replayed from an hour ago: counted, not announced.
	r.Scan(time.Time{}, opLine(now.Add(-time.Hour), "prod", "orders", jmLost))
	// Repeated every 15 s: announced once per interval, per resource.
	for i := range 4 {
		r.Scan(time.Time{}, opLine(now.Add(-9*time.Minute+time.Duration(i)*15*time.Second), "prod", "orders", jmLost))
	}
	r.Scan(time.Time{}, opLine(now.Add(-time.Minute), "prod", "returns", jmLost))
	r.Scan(time.Time{}, opLine(now, "prod", "orders", jmLost)) // 9 min after the first announcement
	now = now.Add(2 * time.Minute)
	r.Scan(time.Time{}, opLine(now, "prod", "orders", jmLost)) // 11 min after it
	if len(sd.Events) != 3 {
		t.Fatalf("%d events, want 3", len(sd.Events))
	}
	e := sd.Events[0]
	if e.Title != "Flink JobManager lost and not recoverable: prod/orders" || !strings.Contains(e.Text, jmLost) ||
		e.AggregationKey != "flink-agent:operator:jobmanager:prod:orders" || e.AlertType != "error" ||
		strings.Join(e.Tags, ",") != "resource_namespace:prod,resource_name:orders" {
		t.Errorf("event %+v", e)
	}
	if sd.Events[1].Title != "Flink JobManager lost and not recoverable: prod/returns" {
		t.Errorf("second event %q", sd.Events[1].Title)
	}
	if got := series(t, reg)[MetricJobManager+" prod/orders"]; got != 7 {
		t.Errorf("counted %d, want 7", got)
	}
	// Events off: counts only.
	sd2 := &logtest.Statsd{}
	r2, _ := New(Options{Registerer: prometheus.NewRegistry(), Statsd: dogstatsd.Wrap(sd2, false), Clock: func() time.Time { return now }})
	r2.Scan(time.Time{}, opLine(now, "prod", "orders", jmLost))
	if len(sd2.Events) != 0 || len(sd2.Counts) != 1 || sd2.Counts[0] != "flink.operator.jobmanager_unrecoverable 1 resource_namespace:prod,resource_name:orders" {
		t.Errorf("events off: %v %v", sd2.Events, sd2.Counts)
	}
}

func TestObserveSkipsFlinkComponents(t *testing.T) {
	r, reg, _ := newTest(t)
	line := opLine(corpusNow, "prod", "orders", jmLost)
	r.Observe(&logevent.Event{Line: line, Component: "jobmanager"})
	r.Observe(&logevent.Event{Line: line, Component: "taskmanager"})
	if got := series(t, reg); len(got) != 0 {
		t.Fatalf("Flink component events counted: %v", got)
	}
	r.Observe(&logevent.Event{Line: line, Time: corpusNow})
	if got := series(t, reg); got[MetricJobManager+" prod/orders"] != 1 {
		t.Fatalf("operator event not counted: %v", got)
	}
}

func TestNewRequiresRegisterer(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("no error without a Registerer")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Registerer: reg}); err == nil {
		t.Fatal("registering twice did not fail")
	}
}

// The common case on a JobManager or TaskManager sidecar: not an operator
// line. It must not allocate.
func TestUnrelatedLinesDoNotAllocate(t *testing.T) {
	r, _, _ := newTest(t)
	lines := [][]byte{
		[]byte("2026-12-02 03:00:00,000 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 5 for job 0a448493b4782967b150582570326227 (1234 bytes, checkpointDuration=12 ms, finalizationTime=1 ms)."),
		[]byte("2026-12-02 03:00:00,000 o.a.f.k.o.c.FlinkDeploymentController [INFO ][flink/app] Starting reconciliation"),
		[]byte("2026-12-02 03:00:00,000 o.a.f.k.o.r.ReconciliationUtils [WARN ][flink/app] Attempt count: 1, last attempt: false"),
	}
	ev := &logevent.Event{Component: ""}
	n := testing.AllocsPerRun(100, func() {
		for _, l := range lines {
			ev.Line = l
			r.Observe(ev)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

type recSink struct{ got []Occurrence }

func (s *recSink) Occurred(o *Occurrence) { s.got = append(s.got, *o) }

// TestExtraSink: a sink sees each occurrence once, with the capped labels,
// and the message only when the occurrence is announced.
func TestExtraSink(t *testing.T) {
	s := &recSink{}
	r, err := New(Options{Registerer: prometheus.NewRegistry(), Extra: []Sink{s}, MaxResources: 1, Clock: func() time.Time { return corpusNow }})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range readEvents(t, "testdata/corpus/source/savepoint-grace.log") {
		r.Scan(time.Time{}, ev)
	}
	r.Scan(time.Time{}, opLine(corpusNow, "prod", "orders", jmLost)) // a second resource: over the cap
	if len(s.got) != 5 {
		t.Fatalf("%d occurrences: %+v", len(s.got), s.got)
	}
	for i, o := range s.got[:4] {
		if o.Trouble.Family != Snapshot || o.Trouble.Namespace != "flink" || o.Trouble.Name != "fraud-detector" || o.Trouble.Snapshot != Savepoint {
			t.Errorf("%d: %+v", i, o.Trouble)
		}
		if o.Announce != (i == 2) || (o.Message != "") != o.Announce {
			t.Errorf("%d: announce %v message %q", i, o.Announce, o.Message)
		}
	}
	if !strings.HasPrefix(s.got[2].Message, "Savepoint attempt failed after grace period. Won't be retried again: ") {
		t.Errorf("message %q", s.got[2].Message)
	}
	if o := s.got[4]; o.Trouble.Namespace != Other || o.Trouble.Name != Other || !o.Announce {
		t.Errorf("over the cap: %+v", o)
	}
}
