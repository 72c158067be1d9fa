package logscan

import (
	"bytes"
)

// LossReason says why the JobManager lost a TaskManager.
type LossReason string

// Loss reasons, from the JobManager's log lines.
const (
	// LossHeartbeatTimeout: no heartbeat for heartbeat.timeout — a lost
	// node, a network partition, a JVM frozen in GC. "The heartbeat of
	// TaskManager with id X timed out." (ResourceManager), "Heartbeat of
	// TaskManager with id X timed out." (JobMaster).
	LossHeartbeatTimeout LossReason = "heartbeat_timeout"
	// LossUnreachable: the heartbeat RPC could not be delivered — the JVM
	// died (killed, crashed) and its port is closed. "TaskManager with id X
	// is no longer reachable." (Flink 1.14 and later).
	LossUnreachable LossReason = "unreachable"
	// LossOOMKilled: the resource manager (native Kubernetes) reported the
	// TaskManager's container OOMKilled: "Worker X is terminated.
	// Diagnostics: Pod terminated, container termination statuses:
	// [flink-main-container(exitCode=137, reason=OOMKilled, …)]…".
	LossOOMKilled LossReason = "oom_killed"
	// LossTerminated: the resource manager saw the worker end for another
	// reason (pod deleted, node lost, container exit).
	LossTerminated LossReason = "terminated"
)

// MetricTaskManagersLost counts lost TaskManagers by reason.
const MetricTaskManagersLost = "flink_taskmanagers_lost_total"

// LossReasons lists every reason.
func LossReasons() []LossReason {
	return []LossReason{LossHeartbeatTimeout, LossUnreachable, LossOOMKilled, LossTerminated}
}

// TaskManagerLoss is one lost TaskManager as a JobManager log line says it.
type TaskManagerLoss struct {
	// ID is Flink's ResourceID of the TaskManager: host:port-suffix in a
	// standalone cluster, the pod name on Kubernetes.
	ID     string
	Reason LossReason
}

var (
	// The prefilter: every header below contains one of these ('M', 'D'
	// and 'E' are rare bytes in log text).
	litManagerWithID = []byte("Manager with id ")
	litDiagnostics   = []byte("Diagnostics: ")
	litExecutorSp    = []byte("Executor ") // "Closing TaskExecutor connection", "Disconnect TaskExecutor"

	litHeartbeatOfTM   = []byte("eartbeat of TaskManager with id ") // "The heartbeat of …", "Heartbeat of …"
	litTimedOut        = []byte(" timed out.")
	litTMWithID        = []byte("TaskManager with id ")
	litNoLongerReach   = []byte(" is no longer reachable.")
	litClosingTE       = []byte("Closing TaskExecutor connection ")
	litDisconnectTE    = []byte("Disconnect TaskExecutor ")
	litBecause         = []byte(" because: ")
	litWorker          = []byte("Worker ")
	litIsTerminated    = []byte(" is terminated. Diagnostics: ")
	litOOMKilled       = []byte("reason=OOMKilled")
	litTerminatedPod   = []byte("Pod terminated")
	litWorkerTerminate = []byte("Worker terminated")
)

// mayBeTaskManagerLoss is the prefilter for parseTaskManagerLoss.
func mayBeTaskManagerLoss(h []byte) bool {
	return bytes.Contains(h, litManagerWithID) || bytes.Contains(h, litDiagnostics) || bytes.Contains(h, litExecutorSp)
}

// parseTaskManagerLoss recognises a JobManager log header that says a
// TaskManager was lost. The closing lines ("Closing TaskExecutor connection
// X because: …", "Disconnect TaskExecutor X because: …") count only with a
// loss as their reason: they are also written when a TaskManager shuts
// down on purpose ("The TaskExecutor is shutting down.") and when a job
// ends ("Stopping JobMaster for job …"). The forms are found anywhere in
// the header, so prefixes (docker, kubectl) do not matter.
func parseTaskManagerLoss(h []byte) (TaskManagerLoss, bool) {
	if i := bytes.Index(h, litClosingTE); i >= 0 {
		return lossBecause(h[i+len(litClosingTE):])
	}
	if i := bytes.Index(h, litDisconnectTE); i >= 0 {
		return lossBecause(h[i+len(litDisconnectTE):])
	}
	if i := bytes.Index(h, litIsTerminated); i > 0 {
		w := bytes.LastIndex(h[:i], litWorker)
		if w < 0 || w+len(litWorker) >= i {
			return TaskManagerLoss{}, false
		}
		id := workerID(h[w+len(litWorker) : i])
		if bytes.Contains(h[i:], litOOMKilled) {
			return TaskManagerLoss{ID: id, Reason: LossOOMKilled}, true
		}
		return TaskManagerLoss{ID: id, Reason: LossTerminated}, true
	}
	return lossStatement(h)
}

// lossStatement reads the two forms that state a loss: the heartbeat
// timeout and the unreachable TaskManager.
func lossStatement(msg []byte) (TaskManagerLoss, bool) {
	if i := bytes.Index(msg, litHeartbeatOfTM); i > 0 && (msg[i-1] == 'H' || msg[i-1] == 'h') {
		rest := msg[i+len(litHeartbeatOfTM):]
		if j := bytes.Index(rest, litTimedOut); j > 0 {
			return TaskManagerLoss{ID: string(rest[:j]), Reason: LossHeartbeatTimeout}, true
		}
		return TaskManagerLoss{}, false
	}
	if i := bytes.Index(msg, litTMWithID); i >= 0 {
		rest := msg[i+len(litTMWithID):]
		if j := bytes.Index(rest, litNoLongerReach); j > 0 {
			return TaskManagerLoss{ID: string(rest[:j]), Reason: LossUnreachable}, true
		}
	}
	return TaskManagerLoss{}, false
}

// lossBecause reads "ID because: REASON" of the Closing/Disconnect lines.
func lossBecause(rest []byte) (TaskManagerLoss, bool) {
	i := bytes.Index(rest, litBecause)
	if i <= 0 {
		return TaskManagerLoss{}, false
	}
	id, why := string(rest[:i]), rest[i+len(litBecause):]
	if l, ok := lossStatement(why); ok {
		l.ID = id
		return l, true
	}
	switch {
	case bytes.Contains(why, litOOMKilled):
		return TaskManagerLoss{ID: id, Reason: LossOOMKilled}, true
	case bytes.HasPrefix(why, litTerminatedPod), bytes.HasPrefix(why, litWorkerTerminate):
		return TaskManagerLoss{ID: id, Reason: LossTerminated}, true
	}
	return TaskManagerLoss{}, false // a graceful stop, a job's end
}

// workerID is the ResourceID of "Worker ID is terminated": Flink writes it
// with its metadata, if any, as "id(metadata)".
func workerID(b []byte) string {
	if i := bytes.IndexByte(b, '('); i > 0 && b[len(b)-1] == ')' {
		b = b[:i]
	}
	return string(b)
}
