package shipper

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
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
