package operatorlog

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/logtest"
)

// The corpus (testdata/corpus/README.md) in the operator's file layout.
// Expectations were written from the operator's source, not from this
// package: the family each line belongs to, and the resource from the
// line's own [namespace/name] (read here by a regular expression).

var (
	mdcRE = regexp.MustCompile(`^\S+ \S+ \S+\s+\[[A-Z]+ *\]\[([^/\]]+)/([^\] ]+)\] `)
	ridRE = regexp.MustCompile(`ResourceID\{name='([^']*)', namespace='([^']*)'\}`)
)

// want is one expected series increment: metric, and for snapshots the
// snapshot label.
type want struct{ metric, snapshot string }

// recognisedWant lists, in file order, what each event of
// source/recognised.log counts.
var recognisedWant = []want{
	{MetricDeployment, ""}, // Error while cancelling job
	{MetricDeployment, ""}, // Rolling back failed deployment.
	{MetricDeployment, ""}, // Failed to submit job to session cluster.
	{MetricDeployment, ""}, // Failed to cancel job, rescheduling deletion.
	{MetricSnapshot, Savepoint},
	{MetricSnapshot, Savepoint},
	{MetricSnapshot, Checkpoint},
	{MetricSnapshot, Checkpoint},
	{MetricSnapshot, Savepoint},  // Job is not running, cancelling savepoint operation
	{MetricSnapshot, Checkpoint}, // … checkpoint operation
	{MetricSnapshot, SnapshotResource},
	{MetricRollback, ""},
	{MetricJobManager, ""}, // lost, without HA
	{MetricJobManager, ""}, // unhealthy, no HA metadata
	{MetricReconcile, ""},  // JOSDK WARN, retry pending
	{MetricReconcile, ""},  // JOSDK ERROR, last attempt
	{MetricReconcile, ""},  // JOSDK ERROR, no retry configured
	{MetricReconcile, ""},  // JOSDK WARN without the MDC
	{MetricJobManager, ""}, // UPGRADEFAILED: JobManager deployment is missing and HA metadata is not available
	{MetricSnapshot, Savepoint},
	{MetricSnapshot, Savepoint},
	{MetricSnapshot, Savepoint},
	{MetricSnapshot, Checkpoint},
	{MetricDeployment, ""}, // UPGRADEFAILED
	{MetricDeployment, ""}, // RESTOREFAILED
	{MetricDeployment, ""}, // CHECKPOINTNOTFOUND
	{MetricDeployment, ""}, // CLEANUPFAILED
	{MetricDeployment, ""}, // FAILEDCREATE
	{MetricDeployment, ""}, // CRASHLOOPBACKOFF
	{MetricDeployment, ""}, // IMAGEPULLBACKOFF
	{MetricDeployment, ""}, // ERRIMAGEPULL
	{MetricDeployment, ""}, // RUNCONTAINERERROR
	{MetricDeployment, ""}, // CREATECONTAINERCONFIGERROR
	{MetricDeployment, ""}, // OOMKILLED
}

// A sequence: a file read by one Recognizer, with its totals per series
// ("metric ns/name [snapshot]") and Datadog events.
var sequences = []struct {
	file   string
	totals map[string]int
	events int
}{
	// Two retries within the grace period and the final failure, each a
	// log line and its event (one occurrence each), then a failed
	// stop-with-savepoint seen only as an event.
	{"source/savepoint-grace.log", map[string]int{MetricSnapshot + " flink/fraud-detector savepoint": 4}, 1},
	// Warned on every reconciliation: counted each time, announced once.
	{"source/jobmanager-lost.log", map[string]int{MetricJobManager + " prod/orders": 5}, 1},
	// Two retries and the last attempt; the controller's Error events and
	// "Attempt count"/"Exhausted retries" lines are not counted again.
	{"source/reconcile-retries.log", map[string]int{MetricReconcile + " prod/billing": 3}, 1},
	// Cancellation error (line + event), rollback, no HA metadata, a later
	// cleanup failure seen only as an event.
	{"source/upgrade-rollback.log", map[string]int{MetricDeployment + " flink/ledger": 3, MetricRollback + " flink/ledger": 1}, 2},
	{"source/unrelated.log", map[string]int{}, 0},
	{"source/flink-layout.log", map[string]int{}, 0},
	{"real/operator-docs-1.15.0.log", map[string]int{}, 0},
}

func readEvents(t *testing.T, path string) [][]byte {
	t.Helper()
	evs, err := logtest.Events(path, logtest.Log4jStart)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// corpusNow is shortly after the sequences, so their serious lines are news.
var corpusNow = time.Date(2026, 12, 2, 3, 8, 0, 0, time.UTC)

func newTest(t *testing.T) (*Recognizer, *prometheus.Registry, *logtest.Statsd) {
	t.Helper()
	reg := prometheus.NewRegistry()
	sd := &logtest.Statsd{}
	r, err := New(Options{Registerer: reg, Statsd: dogstatsd.Wrap(sd, true), Clock: func() time.Time { return corpusNow }})
	if err != nil {
		t.Fatal(err)
	}
	return r, reg, sd
}

// series gathers every operator series as "metric ns/name [snapshot]" → value.
func series(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName() + " " + logtest.Label(m, "resource_namespace") + "/" + logtest.Label(m, "resource_name")
			if s := logtest.Label(m, "snapshot"); s != "" {
				k += " " + s
			}
			out[k] += int(m.GetCounter().GetValue())
		}
	}
	return out
}

// TestCorpusRecognisedLines: each recognised line, alone, gives exactly its
// metric, once, with the resource of its line, and its DogStatsD count.
func TestCorpusRecognisedLines(t *testing.T) {
	evs := readEvents(t, "testdata/corpus/source/recognised.log")
	if len(evs) != len(recognisedWant) {
		t.Fatalf("%d events in recognised.log, %d expectations", len(evs), len(recognisedWant))
	}
	covered := map[string]bool{}
	for i, ev := range evs {
		first := strings.SplitN(string(ev), "\n", 2)[0]
		var ns, name string
		if m := mdcRE.FindStringSubmatch(first); m != nil {
			ns, name = m[1], m[2]
		} else if m := ridRE.FindStringSubmatch(first); m != nil {
			ns, name = m[2], m[1]
		} else {
			t.Fatalf("event %d names no resource: %s", i, first)
		}
		w := recognisedWant[i]
		r, reg, sd := newTest(t)
		r.Scan(time.Time{}, ev)
		wantKey := w.metric + " " + ns + "/" + name
		if w.snapshot != "" {
			wantKey += " " + w.snapshot
		}
		if got := series(t, reg); fmt.Sprint(got) != fmt.Sprint(map[string]int{wantKey: 1}) {
			t.Errorf("event %d: %s\n got %v\nwant %s 1", i, first, got, wantKey)
		}
		if len(sd.Counts) != 1 || !strings.Contains(sd.Counts[0], "resource_namespace:"+ns+",resource_name:"+name) {
			t.Errorf("event %d: DogStatsD %v", i, sd.Counts)
		}
		var h Header
		if !ParseHeader(ev, &h) {
			t.Fatalf("event %d: header not parsed", i)
		}
		if tr, ok := Recognize(&h); ok {
			covered[tr.Source] = true
		}
	}
	// Every rule has a corpus line.
	for _, ru := range lineRules {
		if !covered[ru.source] {
			t.Errorf("line rule %q (%s) has no line in the corpus", ru.prefix, ru.source)
		}
	}
	for _, ru := range eventRules {
		if !covered[ru.source] {
			t.Errorf("event rule %s %q (%s) has no line in the corpus", ru.reason, ru.prefix, ru.source)
		}
	}
}

// TestCorpusSequences: whole files through one Recognizer, as the shipper
// would feed them.
func TestCorpusSequences(t *testing.T) {
	seen := map[string]bool{}
	for _, sq := range sequences {
		seen[sq.file] = true
		t.Run(sq.file, func(t *testing.T) {
			r, reg, sd := newTest(t)
			for _, ev := range readEvents(t, filepath.Join("testdata", "corpus", sq.file)) {
				r.Scan(time.Time{}, ev)
			}
			if got := series(t, reg); fmt.Sprint(got) != fmt.Sprint(sq.totals) {
				t.Errorf("series\n got %v\nwant %v", got, sq.totals)
			}
			if len(sd.Events) != sq.events {
				var titles []string
				for _, e := range sd.Events {
					titles = append(titles, e.Title)
				}
				t.Errorf("%d Datadog events %q, want %d", len(sd.Events), titles, sq.events)
			}
		})
	}
	// Every corpus file is tested.
	files, _ := filepath.Glob("testdata/corpus/*/*.log")
	sort.Strings(files)
	for _, f := range files {
		rel, _ := filepath.Rel("testdata/corpus", f)
		if !seen[rel] && rel != "source/recognised.log" {
			t.Errorf("%s is in the corpus but not tested", rel)
		}
	}
}
