package shipper

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

var benchLine = []byte("2024-05-01 12:00:00,123 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 17 for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b (128734 bytes, checkpointDuration=412 ms, finalizationTime=3 ms). seq=123")

func BenchmarkPrefilter(b *testing.B) {
	m, _ := newMetrics(prometheus.NewRegistry())
	r := newRedactor(config.Redaction{}, m)
	var h header
	parseHeader(benchLine, &h)
	b.SetBytes(int64(len(benchLine) - h.msgStart))
	for i := 0; i < b.N; i++ {
		r.apply(benchLine, h.msgStart, false)
	}
}

func BenchmarkParseHeader(b *testing.B) {
	var h header
	for i := 0; i < b.N; i++ {
		parseHeader(benchLine, &h)
	}
}

// BenchmarkPrefilterMix runs the redactor over a mix of generated Flink
// events (5% with stack traces) and real test bed lines.
func BenchmarkPrefilterMix(b *testing.B) {
	m, _ := newMetrics(prometheus.NewRegistry())
	r := newRedactor(config.Redaction{}, m)
	g := flinklog.Gen{MultilineEvery: 20, Start: time.Now()}
	var buf []byte
	for i := 0; i < 2000; i++ {
		buf = g.Append(buf)
	}
	if real, err := os.ReadFile("../logscan/testdata/corpus/testbed/flink-1.20.0-presto-jm.log"); err == nil {
		buf = append(buf, real...)
	}
	evs := splitEvents(buf)
	hs := make([]header, len(evs))
	n := 0
	for i, ev := range evs {
		if isLog4jTime(ev) {
			parseHeader(ev, &hs[i])
		}
		n += len(ev)
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, ev := range evs {
			r.apply(ev, hs[j].msgStart, bytes.IndexByte(ev, '\n') >= 0)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

func BenchmarkIsLoggerName(b *testing.B) {
	name := []byte("org.apache.flink.runtime.checkpoint.CheckpointCoordinator")
	for i := 0; i < b.N; i++ {
		if !isLoggerName(name) {
			b.Fatal("not a logger name")
		}
	}
}
