package chart

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/operatorlog"
	"github.com/flink-agent/flink-agent/testbed"
)

// The operator chart's own log4j-operator.properties, to which it appends
// defaultConfiguration."log4j-operator.properties": the console appender
// with colours (helm/flink-kubernetes-operator/conf, release 1.15.0).
const operatorBaseLog4j = `rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %style{%d}{yellow} %style{%-30c{1.}}{cyan} %highlight{[%-5level]%notEmpty{[%X{resource.namespace}/}%notEmpty{%X{resource.name}]} %msg%n%throwable}
`

// TestOperatorLog4j runs the chart's log4j snippet in a real log4j2 (the
// test bed Flink's log4j-core) under operator-like loggers and the MDC the
// Java Operator SDK sets: the operator container (FLINK_AGENT_OPERATOR_LOG
// set) writes the file in the layout operatorlog parses, and its troubles
// are recognised with their resource; the webhook container (unset) writes
// no file.
func TestOperatorLog4j(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the test bed's Flink (log4j)")
	}
	java := testbed.MustTool(t, "java")
	lib := filepath.Join(testbed.FlinkHome(testbed.FlinkVersion()), "lib")
	var cp []string
	for _, j := range []string{"log4j-api-*.jar", "log4j-core-*.jar"} {
		m, _ := filepath.Glob(filepath.Join(lib, j))
		if len(m) != 1 {
			t.Fatalf("no %s in %s: run `make tools`", j, lib)
		}
		cp = append(cp, m[0])
	}

	logDir := filepath.Join(t.TempDir(), "operator-log")
	v := renderOperatorValues(t, "--set", "operator.logDir="+logDir)
	props := filepath.Join(t.TempDir(), "log4j-operator.properties")
	if err := os.WriteFile(props, []byte(operatorBaseLog4j+v.DefaultConfiguration.Log4j), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) string {
		cmd := exec.Command(java, "-cp", strings.Join(cp, string(os.PathListSeparator)),
			"-Dlog4j.configurationFile="+props, "testdata/OperatorLog.java")
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "FLINK_AGENT_OPERATOR_LOG=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("java OperatorLog.java: %v\n%s", err, out)
		}
		return string(out)
	}

	// The webhook: no FLINK_AGENT_OPERATOR_LOG, no file, no log4j error.
	out := run()
	if files, _ := filepath.Glob(filepath.Join(logDir, "*")); len(files) != 0 {
		t.Errorf("the webhook's JVM wrote %v", files)
	}
	if strings.Contains(out, "ERROR StatusLogger") || !strings.Contains(out, "Starting Flink Kubernetes Operator") {
		t.Errorf("webhook console:\n%s", out)
	}

	// The operator.
	out = run("FLINK_AGENT_OPERATOR_LOG=ALL")
	if strings.Contains(out, "ERROR StatusLogger") {
		t.Errorf("log4j errors:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(logDir, "flink-kubernetes-operator.log"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("\x1b[")) {
		t.Errorf("colour codes in the file:\n%s", raw)
	}
	reg := prometheus.NewRegistry()
	rec, err := operatorlog.New(operatorlog.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var headers []string
	for _, ev := range splitEvents(raw) {
		var h operatorlog.Header
		if !operatorlog.ParseHeader(ev, &h) {
			t.Errorf("not the operator's layout: %q", ev)
			continue
		}
		if d := time.Since(h.Time); d < -14*time.Hour || d > 14*time.Hour { // %d is local time, read as UTC
			t.Errorf("time %v", h.Time)
		}
		headers = append(headers, fmt.Sprintf("%s|%s|%s/%s", h.Logger, h.Level, h.Namespace, h.Name))
		rec.Scan(time.Time{}, ev)
	}
	want := []string{
		"o.a.f.k.o.FlinkOperator|INFO|/",
		"o.a.f.k.o.r.d.AbstractFlinkResourceReconciler|WARN|prod/orders",
		"o.a.f.k.o.o.SnapshotObserver|WARN|prod/orders",
		"o.a.f.k.o.l.AuditUtils|INFO|prod/orders",
		"i.j.o.p.e.EventProcessor|WARN|prod/orders",
		"o.a.f.k.o.FlinkOperator|INFO|/",
	}
	if fmt.Sprint(headers) != fmt.Sprint(want) {
		t.Errorf("headers\n got %q\nwant %q\n%s", headers, want, raw)
	}
	if !bytes.Contains(raw, []byte("\nCaused by: java.util.concurrent.TimeoutException: REST call timed out\n")) {
		t.Errorf("no stack trace in the file:\n%s", raw)
	}
	got := map[string]float64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetCounter().GetValue()
			for _, l := range m.GetLabel() {
				if (l.GetName() == "resource_namespace" && l.GetValue() != "prod") || (l.GetName() == "resource_name" && l.GetValue() != "orders") {
					t.Errorf("%s: label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	// The savepoint warning and its event's audit line are one occurrence.
	wantCounts := map[string]float64{operatorlog.MetricJobManager: 1, operatorlog.MetricSnapshot: 1, operatorlog.MetricReconcile: 1}
	if fmt.Sprint(got) != fmt.Sprint(wantCounts) {
		t.Errorf("counted %v, want %v", got, wantCounts)
	}
}

// splitEvents groups lines into events at log4j's timestamp, as the shipper does.
func splitEvents(raw []byte) [][]byte {
	var evs [][]byte
	for _, l := range bytes.SplitAfter(raw, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var h operatorlog.Header
		if operatorlog.ParseHeader(l, &h) || len(evs) == 0 {
			evs = append(evs, nil)
		}
		evs[len(evs)-1] = append(evs[len(evs)-1], l...)
	}
	for i := range evs {
		evs[i] = bytes.TrimSuffix(evs[i], []byte("\n"))
	}
	return evs
}
