package redact_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
	"github.com/flink-agent/flink-agent/shipper/internal/redact"
)

var benchLine = []byte("2024-05-01 12:00:00,123 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 17 for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b (128734 bytes, checkpointDuration=412 ms, finalizationTime=3 ms). seq=123")

func BenchmarkPrefilter(b *testing.B) {
	r, _ := newCounted(redact.Settings{}, prometheus.NewRegistry())
	ev := events(benchLine)[0]
	b.SetBytes(int64(len(benchLine) - ev.msgStart))
	for i := 0; i < b.N; i++ {
		r.Apply(benchLine, ev.msgStart, false)
	}
}

// BenchmarkPrefilterMix runs the redactor over a mix of generated Flink
// events (5% with stack traces) and real test bed lines.
func BenchmarkPrefilterMix(b *testing.B) {
	r, _ := newCounted(redact.Settings{}, prometheus.NewRegistry())
	g := flinklog.Gen{MultilineEvery: 20, Start: time.Now()}
	var buf []byte
	for i := 0; i < 2000; i++ {
		buf = g.Append(buf)
	}
	if corpus, err := os.ReadFile("../../../logscan/testdata/corpus/testbed/flink-1.20.0-presto-jm.log"); err == nil {
		buf = append(buf, corpus...)
	}
	evs := events(buf)
	n := 0
	for _, ev := range evs {
		n += len(ev.text)
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, ev := range evs {
			r.Apply(ev.text, ev.msgStart, bytes.IndexByte(ev.text, '\n') >= 0)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
