package logscan

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/checkpointwatch"
)

// Typical JobManager and TaskManager lines that match nothing: the hot path.
var benchOrdinary = [][]byte{
	[]byte("2026-11-23 23:45:03,096 INFO  org.apache.flink.runtime.source.coordinator.SourceCoordinator [] - Marking checkpoint 1 as completed for source Source: sequence."),
	[]byte("2026-11-23 23:45:01,873 INFO  org.apache.flink.runtime.state.StateBackendLoader            [] - State backend is set to heap memory org.apache.flink.runtime.state.hashmap.HashMapStateBackend@30253ec2"),
	[]byte("2026-11-23 23:45:01,956 INFO  org.apache.flink.runtime.taskmanager.Task                    [] - Source: sequence -> throttle (2/2)#0 (589762eeea0030c1e233b538faae3a33_cbc357ccb763df2852fee8c4fc7d55f2_1_0) switched from INITIALIZING to RUNNING."),
	[]byte("2026-11-23 23:44:43,059 INFO  org.apache.flink.configuration.GlobalConfiguration           [] - Loading configuration property: execution.checkpointing.dir, s3p://flink/checkpoints"),
	[]byte("2026-11-23 23:45:02,615 WARN  org.apache.kafka.clients.NetworkClient                       [] - [Consumer clientId=c-1, groupId=g] Connection to node 3 (kafka-3/10.0.0.3:9092) could not be established. Broker may not be available."),
}

func benchScanner(b *testing.B) *Scanner {
	s, err := New(Options{Registerer: prometheus.NewRegistry(), Checkpoints: newRecSink(), ThrottleWindow: 2 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkScanOrdinary is the cost per event that is neither throttling nor
// a lifecycle line: the price every log line pays. Target: 0 allocs.
func BenchmarkScanOrdinary(b *testing.B) {
	s := benchScanner(b)
	t := time.Now()
	var n int64
	for _, l := range benchOrdinary {
		n += int64(len(l))
	}
	b.SetBytes(n / int64(len(benchOrdinary)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Scan(t, benchOrdinary[i%len(benchOrdinary)], "jobmanager")
	}
}

// BenchmarkScanStackTrace is an exception event without throttling (a
// 40-frame stack trace): the whole event is searched.
func BenchmarkScanStackTrace(b *testing.B) {
	ev := []byte("2026-11-23 23:45:17,502 INFO  org.apache.flink.streaming.runtime.tasks.AsyncCheckpointRunnable [] - count -> discard: Writer (2/2)#0 - asynchronous part of checkpoint 6 could not be completed.\njava.util.concurrent.ExecutionException: java.io.IOException: Could not flush to file\n")
	for i := 0; i < 40; i++ {
		ev = append(ev, "\tat org.apache.flink.runtime.state.filesystem.FsCheckpointStreamFactory$FsCheckpointStateOutputStream.closeAndGetHandle(FsCheckpointStreamFactory.java:423) ~[flink-runtime-1.20.0.jar:1.20.0]\n"...)
	}
	s := benchScanner(b)
	t := time.Now()
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Scan(t, ev, "taskmanager")
	}
}

// BenchmarkScanLifecycle parses Triggering/Completed lines and feeds them on.
func BenchmarkScanLifecycle(b *testing.B) {
	lines := [][]byte{
		[]byte("2026-11-23 23:45:03,158 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Triggering checkpoint 2 (type=CheckpointType{name='Checkpoint', sharingFilesStrategy=FORWARD_BACKWARD}) @ 1795477503157 for job a263c230045a6bc59839b4167eccf768."),
		[]byte("2026-11-23 23:45:03,394 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint 2 for job a263c230045a6bc59839b4167eccf768 (6753 bytes, checkpointDuration=222 ms, finalizationTime=15 ms)."),
	}
	s, err := New(Options{Registerer: prometheus.NewRegistry(), Checkpoints: nopSink{}, ThrottleWindow: 2 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	t := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Scan(t, lines[i%2], "jobmanager")
	}
}

// BenchmarkScanThrottle is a real throttling stack trace from the test bed
// (flink-s3-fs-presto against the throttling S3 endpoint).
func BenchmarkScanThrottle(b *testing.B) {
	ev, err := os.ReadFile("testdata/corpus/testbed/flink-1.20.0-presto-tm-async-failure.log")
	if err != nil {
		b.Fatal(err)
	}
	s := benchScanner(b)
	t := time.Now()
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Scan(t, ev, "taskmanager")
	}
}

type nopSink struct{}

func (nopSink) ObserveLogJobName(string, string)                                                {}
func (nopSink) ObserveLogTriggered(string, int64, time.Time, bool)                              {}
func (nopSink) ObserveLogCompleted(string, int64, time.Time, int64, time.Duration)              {}
func (nopSink) ObserveLogFailed(string, int64, time.Time, checkpointwatch.Reason, string, bool) {}
func (nopSink) MarkThrottled(string, int64)                                                     {}
