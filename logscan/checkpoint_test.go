package logscan

import (
	"testing"
	"time"
)

func TestParseLifecycle(t *testing.T) {
	const job = "a263c230045a6bc59839b4167eccf768"
	for _, tc := range []struct {
		name string
		ev   string
		want Lifecycle
		bad  bool // a lifecycle phrase in an unknown form
	}{
		{
			name: "triggered 1.20",
			ev:   "2026-11-23 23:45:02,168 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Triggering checkpoint 1 (type=CheckpointType{name='Checkpoint', sharingFilesStrategy=FORWARD_BACKWARD}) @ 1795477502157 for job " + job + ".",
			want: Lifecycle{Kind: KindTriggered, JobID: job, CheckpointID: 1, TriggerTime: time.UnixMilli(1795477502157)},
		},
		{
			name: "triggered savepoint",
			ev:   "x - Triggering checkpoint 12 (type=SavepointType{name='Savepoint', postCheckpointAction=NONE, formatType=CANONICAL}) @ 1700000000000 for job " + job + ".",
			want: Lifecycle{Kind: KindTriggered, JobID: job, CheckpointID: 12, Savepoint: true, TriggerTime: time.UnixMilli(1700000000000)},
		},
		{
			name: "triggered old",
			ev:   "2019-05-17 15:43:08,068 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator     - Triggering checkpoint 66 @ 1558107788056 for job dd4f07c1f866b7afff42759d7a35de3f.",
			want: Lifecycle{Kind: KindTriggered, JobID: "dd4f07c1f866b7afff42759d7a35de3f", CheckpointID: 66, TriggerTime: time.UnixMilli(1558107788056)},
		},
		{
			name: "completed",
			ev:   "x - Completed checkpoint 8 for job " + job + " (6872 bytes, checkpointDuration=721 ms, finalizationTime=2 ms).",
			want: Lifecycle{Kind: KindCompleted, JobID: job, CheckpointID: 8, StateBytes: 6872, Duration: 721 * time.Millisecond},
		},
		{
			name: "completed old",
			ev:   "x - Completed checkpoint 818 for job 345db01b21c61fb4e441287a7bb77daf (4126714 bytes in 674 ms).",
			want: Lifecycle{Kind: KindCompleted, JobID: "345db01b21c61fb4e441287a7bb77daf", CheckpointID: 818, StateBytes: 4126714, Duration: 674 * time.Millisecond},
		},
		{
			name: "expired",
			ev:   "2021-07-26 17:04:57,627 INFO  [74] org.apache.flink.runtime.checkpoint.CheckpointCoordinator    - Checkpoint 17 of job 9ee5f488e87f39d44f7cd9e6da6ff1cd expired before completing.",
			want: Lifecycle{Kind: KindExpired, JobID: "9ee5f488e87f39d44f7cd9e6da6ff1cd", CheckpointID: 17, Message: "Checkpoint expired before completing."},
		},
		{
			name: "declined 1.20 with cause",
			ev: "x - Decline checkpoint 6 by task 589762eeea0030c1e233b538faae3a33_90bea66de1c231edf33913ecd54406c1_1_0 of job " + job + " at 127.0.0.1:41363-2a0aa7 @ localhost (dataPort=34591).\n" +
				"org.apache.flink.util.SerializedThrowable: org.apache.flink.runtime.checkpoint.CheckpointException: Asynchronous task checkpoint failed.\n\tat x.y(Z.java:1)",
			want: Lifecycle{Kind: KindDeclined, JobID: job, CheckpointID: 6, Task: "589762eeea0030c1e233b538faae3a33_90bea66de1c231edf33913ecd54406c1_1_0",
				Location: "127.0.0.1:41363-2a0aa7 @ localhost (dataPort=34591)", Message: "Asynchronous task checkpoint failed."},
		},
		{
			name: "declined old without location",
			ev:   "x - Decline checkpoint 66 by task e65ff0e6f0ff8e14a1b53410aa8bb019 of job dd4f07c1f866b7afff42759d7a35de3f.",
			want: Lifecycle{Kind: KindDeclined, JobID: "dd4f07c1f866b7afff42759d7a35de3f", CheckpointID: 66, Task: "e65ff0e6f0ff8e14a1b53410aa8bb019", Message: "Checkpoint was declined."},
		},
		{
			name: "failed",
			ev: "2026-11-23 23:45:28,204 WARN  org.apache.flink.runtime.checkpoint.CheckpointFailureManager [] - Failed to trigger or complete checkpoint 7 for job " + job + ". (1 consecutive failed attempts so far)\n" +
				"org.apache.flink.runtime.checkpoint.CheckpointException: Asynchronous task checkpoint failed.\n\tat a.b(C.java:1)",
			want: Lifecycle{Kind: KindFailed, JobID: job, CheckpointID: 7, Consecutive: 1, Message: "Asynchronous task checkpoint failed."},
		},
		{
			name: "failed without id",
			ev:   "x - Failed to trigger or complete checkpoint for job " + job + ". (3 consecutive failed attempts so far)\norg.apache.flink.runtime.checkpoint.CheckpointException: Trigger checkpoint failure.",
			want: Lifecycle{Kind: KindFailed, JobID: job, CheckpointID: -1, Consecutive: 3, Message: "Trigger checkpoint failure."},
		},
		{
			name: "discarded old",
			ev:   "x - Discarding checkpoint 66 of job dd4f07c1f866b7afff42759d7a35de3f.\norg.apache.flink.runtime.checkpoint.decline.CheckpointDeclineTaskNotReadyException: Task Source: Custom Source (1/1) was not running",
			want: Lifecycle{Kind: KindDiscarded, JobID: "dd4f07c1f866b7afff42759d7a35de3f", CheckpointID: 66, Message: "Task Source: Custom Source (1/1) was not running"},
		},
		{
			name: "global failure",
			ev:   "x - Trying to recover from a global failure.\norg.apache.flink.util.FlinkRuntimeException: Exceeded checkpoint tolerable failure threshold.\n\tat a.b(C.java:1)",
			want: Lifecycle{Kind: KindGlobalFailure, Message: "Exceeded checkpoint tolerable failure threshold.", ToleranceExceeded: true},
		},
		{
			name: "job state",
			ev:   "x - Job flink-agent testbed (checkpointing) job (" + job + ") switched from state RUNNING to RESTARTING.",
			want: Lifecycle{Kind: KindJobState, JobID: job, JobName: "flink-agent testbed (checkpointing) job", From: "RUNNING", To: "RESTARTING"},
		},
		{name: "task state is not a job state", ev: "x - Source: a (1/1) (0867240894d94d42e0de268419ab5422_cbc357ccb763df2852fee8c4fc7d55f2_0_0) switched from INITIALIZING to RUNNING."},
		{name: "manual trigger", ev: "x - Triggering a manual checkpoint for job " + job + "."},
		{name: "discard of a completed checkpoint is no completion", ev: "x - Could not properly discard completed checkpoint 6."},
		{name: "stack frame mentioning checkpoints", ev: "x - hello\n\tat org.apache.flink.runtime.checkpoint.CheckpointCoordinator.receiveDeclineMessage(CheckpointCoordinator.java:1171)"},
		{name: "malformed completed", ev: "x - Completed checkpoint 8 for job notajobid (6872 bytes).", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Lifecycle
			kind, _, ok := parseLifecycle([]byte(tc.ev), &got)
			if ok == tc.bad {
				t.Fatalf("ok = %v, want %v (%+v)", ok, !tc.bad, got)
			}
			if tc.bad {
				return
			}
			if tc.want.Kind == KindNone {
				if kind != KindNone {
					t.Fatalf("kind = %v, want none (%+v)", kind, got)
				}
				return
			}
			w := tc.want
			if w.CheckpointID == 0 && w.Kind == KindGlobalFailure {
				w.CheckpointID = -1
			}
			if w.Kind != KindCompleted {
				w.StateBytes, w.Duration = -1, -1
			}
			if w.Kind != KindFailed {
				w.Consecutive = -1
			}
			if w.Kind == KindJobState {
				w.CheckpointID = -1
			}
			if kind != w.Kind || got != w {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestCauseMessage(t *testing.T) {
	for in, want := range map[string]string{
		"h\norg.apache.flink.util.SerializedThrowable: org.apache.flink.runtime.checkpoint.CheckpointException: Asynchronous task checkpoint failed.": "Asynchronous task checkpoint failed.",
		"h\njava.io.IOException: Could not open output stream for state backend":                                                                      "Could not open output stream for state backend",
		"h\n\tat a.b(C.java:1)":          "",
		"h":                              "",
		"h\nCaused by: a.B: msg: detail": "msg: detail",
	} {
		if got := causeMessage([]byte(in)); got != want {
			t.Errorf("causeMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
