package shipper

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/testbed"
)

// The Flink Kubernetes Operator's lines from operatorlog's corpus, in the
// operator's file layout (the chart's log4j snippet).
const operatorCorpus = "../operatorlog/testdata/corpus/source/recognised.log"

var operatorLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\S+)\s+\[([A-Z]+) *\](?:\[([^/\]]+)/([^\] ]+)\])? `)

// TestOperatorLogsToLoki ships the operator's log to the real Loki: the
// component is inferred from the file name, each event (stack traces
// included) is one entry, and level, logger and the line's [namespace/name]
// are structured metadata (resource_namespace, resource_name), never stream
// labels.
func TestOperatorLogsToLoki(t *testing.T) {
	l := startLoki(t)
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.Loki.URL = l.URL()
	var c collector
	opts.Observers = append(opts.Observers, &c)

	raw, err := os.ReadFile(operatorCorpus)
	if err != nil {
		t.Fatal(err)
	}
	// New times, a millisecond apart and recent enough for Loki.
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	var out []byte
	type want struct{ level, logger, ns, name string }
	var wants []want
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		if m := operatorLine.FindStringSubmatch(line); m != nil {
			ts := t0.Add(time.Duration(len(wants)) * time.Millisecond).Format("2006-01-02 15:04:05,000")
			line = ts + line[len(ts):]
			wants = append(wants, want{strings.ToLower(m[2]), m[1], m[3], m[4]})
		}
		out = append(out, line...)
	}
	if len(wants) < 30 {
		t.Fatalf("%d events in %s", len(wants), operatorCorpus)
	}
	file := filepath.Join(dir, "flink-kubernetes-operator.log")
	appendFile(t, file, out)
	r := start(t, opts)
	eventually(t, 30*time.Second, "all events acknowledged", func() bool {
		return testutil.ToFloat64(r.s.m.sent) >= float64(len(wants))
	})

	// What observers see: the resource and the component.
	for i, ev := range c.snapshot() {
		w := wants[i]
		if ev.Component != "operator" || ev.ResourceNamespace != w.ns || ev.ResourceName != w.name || ev.Logger != w.logger || ev.Level != w.level {
			t.Errorf("event %d: component %q resource %q/%q logger %q level %q, want %+v", i, ev.Component, ev.ResourceNamespace, ev.ResourceName, ev.Logger, ev.Level, w)
		}
	}

	ctx := context.Background()
	entries, err := l.QueryAll(ctx, `{cluster="c1", component="operator"}`, t0.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(wants) {
		t.Fatalf("Loki has %d entries, want %d", len(entries), len(wants))
	}
	// Loki answers per label set, structured metadata included: time order.
	slices.SortFunc(entries, func(a, b testbed.LokiEntry) int { return a.Time.Compare(b.Time) })
	traces := 0
	for i, e := range entries {
		w := wants[i]
		md := e.Metadata
		if md["level"] != w.level || md["logger"] != w.logger || md["resource_namespace"] != w.ns || md["resource_name"] != w.name {
			t.Errorf("entry %d: metadata %v, want %+v", i, md, w)
		}
		if md["filename"] != "flink-kubernetes-operator.log" {
			t.Errorf("entry %d: filename %q", i, md["filename"])
		}
		if want := t0.Add(time.Duration(i) * time.Millisecond); e.Time.Sub(want) < 0 || e.Time.Sub(want) >= time.Millisecond {
			t.Errorf("entry %d: time %v, want %v", i, e.Time, want)
		}
		if strings.Contains(e.Line, "\n\tat ") {
			traces++
		}
	}
	if want := bytes.Count(raw, []byte("\nCaused by: ")); traces == 0 || want == 0 {
		t.Errorf("%d entries with stack traces (the corpus has %d Caused by)", traces, want)
	}

	// Structured metadata is queryable…
	one, err := l.QueryAll(ctx, `{component="operator"} | resource_namespace="prod" | resource_name="billing-v2"`, t0.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || !strings.Contains(one[0].Line, "retry last attempt") {
		t.Errorf("filter by resource: %d entries", len(one))
	}
	// …and never an index label.
	labels := lokiLabelNames(t, l.URL(), t0.Add(-time.Minute))
	if !slices.Contains(labels, "component") || slices.Contains(labels, "resource_namespace") || slices.Contains(labels, "resource_name") {
		t.Errorf("Loki's stream labels %v: component, and no resource", labels)
	}
}

// lokiLabelNames asks Loki for its index (stream) label names.
func lokiLabelNames(t *testing.T, base string, since time.Time) []string {
	t.Helper()
	q := url.Values{"start": {strconv.FormatInt(since.UnixNano(), 10)}, "end": {strconv.FormatInt(time.Now().Add(time.Minute).UnixNano(), 10)}}
	resp, err := http.Get(base + "/loki/api/v1/labels?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("labels: %v %+v", err, r)
	}
	return r.Data
}
