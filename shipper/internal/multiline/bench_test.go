package multiline

import "testing"

var benchLine = []byte("2024-05-01 12:00:00,123 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 17 for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b (128734 bytes, checkpointDuration=412 ms, finalizationTime=3 ms). seq=123")

func BenchmarkParseHeader(b *testing.B) {
	var h header
	for i := 0; i < b.N; i++ {
		parseHeader(benchLine, &h)
	}
}

func BenchmarkIsLoggerName(b *testing.B) {
	name := []byte("org.apache.flink.runtime.checkpoint.CheckpointCoordinator")
	for i := 0; i < b.N; i++ {
		if !isLoggerName(name) {
			b.Fatal("not a logger name")
		}
	}
}
