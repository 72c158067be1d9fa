// Package flinklog writes synthetic logs in Flink's log4j layout
// ("%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n") for the shipper's
// tests and benchmarks: realistic loggers, levels and messages, and a
// share of WARN/ERROR events carrying Java stack traces.
package flinklog

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

var loggers = []string{
	"org.apache.flink.runtime.checkpoint.CheckpointCoordinator",
	"org.apache.flink.runtime.executiongraph.ExecutionGraph",
	"org.apache.flink.runtime.taskmanager.Task",
	"org.apache.flink.runtime.jobmaster.JobMaster",
	"org.apache.flink.streaming.runtime.tasks.StreamTask",
	"org.apache.flink.runtime.resourcemanager.slotmanager.FineGrainedSlotManager",
	"org.apache.flink.runtime.state.heap.HeapKeyedStateBackendBuilder",
	"org.apache.flink.fs.s3.common.writer.S3RecoverableFsDataOutputStream",
}

var messages = []string{
	"Triggering checkpoint %d (type=CheckpointType{name='Checkpoint', sharingFilesStrategy=FORWARD_BACKWARD}) @ 1714564800123 for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b.",
	"Completed checkpoint %d for job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b (128734 bytes, checkpointDuration=412 ms, finalizationTime=3 ms).",
	"Source: Kafka Source -> Map -> Sink: Committer (1/4)#0 (a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6_cbc357ccb763df2852fee8c4fc7d55f2_0_0) switched from INITIALIZING to RUNNING. round=%d",
	"Received resource requirements from job 6b1e8c7d4a3f2e1d0c9b8a7f6e5d4c3b: [ResourceRequirement{resourceProfile=ResourceProfile{UNKNOWN}, numberOfRequiredSlots=%d}]",
	"Initializing heap keyed state backend with stream factory. attempt=%d",
}

// tmMessages are a TaskManager's: no checkpoint coordinator or job
// lifecycle lines (those are the JobManager's).
var tmMessages = []string{
	"Source: Kafka Source -> Map -> Sink: Committer (1/4)#0 (a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6_cbc357ccb763df2852fee8c4fc7d55f2_0_0) switched from INITIALIZING to RUNNING. round=%d",
	"Received task Map -> Sink: Writer (2/4)#0 (a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6_90bea66de1c231edf33913ecd54406c1_1_0), deploy into slot with allocation id 6f2b8d1c attempt=%d.",
	"Initializing heap keyed state backend with stream factory. attempt=%d",
	"Free slot TaskSlot(index:1, state:ACTIVE, resource profile: ResourceProfile{cpuCores=1, taskHeapMemory=384.000mb}, allocationId: 6f2b8d1c). round=%d",
	"Committed 128734 bytes of part-0-%d for the writer of subtask 2.",
}

var traces = [][]string{
	{
		"java.io.IOException: Could not flush to file s3://bucket/checkpoints/6b1e/chk-%d/f3a1.",
		"\tat org.apache.flink.fs.s3.common.writer.S3RecoverableFsDataOutputStream.flush(S3RecoverableFsDataOutputStream.java:117)",
		"\tat org.apache.flink.runtime.state.filesystem.FsCheckpointStreamFactory$FsCheckpointStateOutputStream.flushToFile(FsCheckpointStreamFactory.java:244)",
		"\tat org.apache.flink.runtime.state.filesystem.FsCheckpointStreamFactory$FsCheckpointStateOutputStream.closeAndGetHandle(FsCheckpointStreamFactory.java:331)",
		"\tat org.apache.flink.runtime.state.SnapshotStrategyRunner.lambda$snapshot$0(SnapshotStrategyRunner.java:77)",
		"\tat java.base/java.util.concurrent.FutureTask.run(FutureTask.java:264)",
		"Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: 7Q9H3K2M; Proxy: null)",
		"\tat com.amazonaws.http.AmazonHttpClient$RequestExecutor.handleErrorResponse(AmazonHttpClient.java:1879)",
		"\tat com.amazonaws.http.AmazonHttpClient$RequestExecutor.executeOneRequest(AmazonHttpClient.java:1418)",
		"\t... 12 more",
	},
	{
		"org.apache.flink.runtime.checkpoint.CheckpointException: Checkpoint expired before completing.",
		"\tat org.apache.flink.runtime.checkpoint.CheckpointCoordinator$CheckpointCanceller.run(CheckpointCoordinator.java:2216)",
		"\tat java.base/java.util.concurrent.Executors$RunnableAdapter.call(Executors.java:515)",
		"\tat java.base/java.util.concurrent.FutureTask.run(FutureTask.java:264)",
		"\tat java.base/java.util.concurrent.ScheduledThreadPoolExecutor$ScheduledFutureTask.run(ScheduledThreadPoolExecutor.java:304)",
		"\tat java.base/java.lang.Thread.run(Thread.java:829)",
	},
}

// Gen produces events. Every event ends with " seq=<n>" on its first line
// (after the message), so that tests can find each one in Loki.
type Gen struct {
	// MultilineEvery makes every n-th event a WARN with a stack trace
	// (20 = 5%); 0 means never.
	MultilineEvery int
	// Start is the first event's time; each event is Step later.
	Start time.Time
	Step  time.Duration
	// Now, when set, stamps events with the wall clock instead.
	Now bool
	// TaskManager: a TaskManager's messages only (no checkpoint
	// coordinator lines, which only a JobManager logs).
	TaskManager bool

	seq int64
}

// Seq is the number of events produced so far.
func (g *Gen) Seq() int64 { return g.seq }

// Multiline reports whether event seq (0-based) has a stack trace.
func (g *Gen) Multiline(seq int64) bool {
	return g.MultilineEvery > 0 && seq%int64(g.MultilineEvery) == int64(g.MultilineEvery-1)
}

// TraceLines is the number of lines of event seq.
func (g *Gen) TraceLines(seq int64) int {
	if !g.Multiline(seq) {
		return 1
	}
	return 1 + len(traces[seq%int64(len(traces))])
}

// Append appends the next event, with its trailing newline, to b.
func (g *Gen) Append(b []byte) []byte {
	seq := g.seq
	g.seq++
	t := g.Start.Add(time.Duration(seq) * g.Step)
	if g.Now {
		t = time.Now()
	}
	b = t.AppendFormat(b, "2006-01-02 15:04:05.000")
	b[len(b)-4] = ','
	level := "INFO "
	if g.Multiline(seq) {
		level = "WARN "
	}
	b = append(b, ' ')
	b = append(b, level...)
	b = append(b, ' ')
	lg := loggers[seq%int64(len(loggers))]
	b = append(b, lg...)
	for i := len(lg); i < 60; i++ {
		b = append(b, ' ')
	}
	b = append(b, " [] - "...)
	msgs := messages
	if g.TaskManager {
		msgs = tmMessages
	}
	b = fmt.Appendf(b, msgs[seq%int64(len(msgs))], seq%100000)
	b = append(b, " seq="...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '\n')
	if g.Multiline(seq) {
		for i, l := range traces[seq%int64(len(traces))] {
			if i == 0 {
				b = fmt.Appendf(b, l, seq)
			} else {
				b = append(b, l...)
			}
			b = append(b, '\n')
		}
	}
	return b
}

// SeqOf returns the seq number in an event's first line, or -1.
func SeqOf(ev []byte) int64 {
	if i := bytes.IndexByte(ev, '\n'); i >= 0 {
		ev = ev[:i]
	}
	i := bytes.LastIndex(ev, []byte(" seq="))
	if i < 0 {
		return -1
	}
	n, err := strconv.ParseInt(string(ev[i+5:]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// WriteFile writes n events to a new file at path, in 1 MiB writes, and
// returns how many lines they took.
func (g *Gen) WriteFile(path string, n int64) (lines int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	var b []byte
	for i := int64(0); i < n; i++ {
		seq := g.seq
		b = g.Append(b)
		lines += int64(g.TraceLines(seq))
		if len(b) > 1<<20 {
			if _, err := f.Write(b); err != nil {
				f.Close()
				return lines, err
			}
			b = b[:0]
		}
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return lines, err
	}
	return lines, f.Close()
}
