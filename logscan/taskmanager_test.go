package logscan

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/logevent"
)

func TestParseTaskManagerLoss(t *testing.T) {
	const (
		rm   = "2026-12-02 04:37:43,414 INFO  org.apache.flink.runtime.resourcemanager.StandaloneResourceManager [] - "
		jm   = "2026-12-02 04:37:44,253 INFO  org.apache.flink.runtime.jobmaster.JobMaster                 [] - "
		arm  = "2026-12-02 05:01:12,002 INFO  org.apache.flink.kubernetes.KubernetesResourceManagerDriver [] - "
		tmID = "127.0.0.1:29826-d2079c"
		pod  = "orders-taskmanager-1-3"
	)
	// k8sOOM is ActiveResourceManager's "Worker {} is terminated.
	// Diagnostics: {}" with KubernetesPod.getTerminatedDiagnostics() filled
	// in as flink-kubernetes 1.20 formats it (the test bed runs no kubelet).
	const k8sOOM = "Pod terminated, container termination statuses: [flink-main-container(exitCode=137, reason=OOMKilled, message=null)], pod status: Failed(reason=null, message=null)"
	for _, tc := range []struct {
		name string
		h    string
		want TaskManagerLoss
		ok   bool
	}{
		// Real lines, test bed, Flink 1.18.1 to 2.2.1.
		{"RM heartbeat", rm + "The heartbeat of TaskManager with id " + tmID + " timed out.", TaskManagerLoss{tmID, LossHeartbeatTimeout}, true},
		{"RM closing after heartbeat", rm + "Closing TaskExecutor connection " + tmID + " because: The heartbeat of TaskManager with id " + tmID + " timed out.", TaskManagerLoss{tmID, LossHeartbeatTimeout}, true},
		{"JM heartbeat", jm + "Heartbeat of TaskManager with id " + tmID + " timed out.", TaskManagerLoss{tmID, LossHeartbeatTimeout}, true},
		{"JM disconnect after heartbeat", jm + "Disconnect TaskExecutor " + tmID + " because: Heartbeat of TaskManager with id " + tmID + " timed out.", TaskManagerLoss{tmID, LossHeartbeatTimeout}, true},
		{"JM unreachable", jm + "TaskManager with id " + tmID + " is no longer reachable.", TaskManagerLoss{tmID, LossUnreachable}, true},
		{"RM unreachable", rm + "TaskManager with id " + tmID + " is no longer reachable.", TaskManagerLoss{tmID, LossUnreachable}, true},
		{"RM closing unreachable", rm + "Closing TaskExecutor connection " + tmID + " because: TaskManager with id " + tmID + " is no longer reachable.", TaskManagerLoss{tmID, LossUnreachable}, true},
		{"JM disconnect unreachable", jm + "Disconnect TaskExecutor " + tmID + " because: TaskManager with id " + tmID + " is no longer reachable.", TaskManagerLoss{tmID, LossUnreachable}, true},
		// A docker prefix before the log4j line.
		{"prefixed", "flink-jobmanager-1  | " + jm + "TaskManager with id " + tmID + " is no longer reachable.", TaskManagerLoss{tmID, LossUnreachable}, true},
		// Flink's Kubernetes resource manager (format strings of flink-kubernetes 1.20).
		{"worker OOMKilled", arm + "Worker " + pod + " is terminated. Diagnostics: " + k8sOOM, TaskManagerLoss{pod, LossOOMKilled}, true},
		{"worker with metadata", arm + "Worker " + pod + "(10.0.3.7:6122) is terminated. Diagnostics: Pod terminated, container termination statuses: [flink-main-container(exitCode=143, reason=Error, message=null)], pod status: Failed(reason=null, message=null)", TaskManagerLoss{pod, LossTerminated}, true},
		{"closing OOMKilled", rm + "Closing TaskExecutor connection " + pod + " because: " + k8sOOM, TaskManagerLoss{pod, LossOOMKilled}, true},
		// Not losses.
		{"closing for another reason", rm + "Closing TaskExecutor connection " + pod + " because: Something unforeseen.", TaskManagerLoss{}, false},
		{"graceful", jm + "Disconnect TaskExecutor " + tmID + " because: The TaskExecutor is shutting down.", TaskManagerLoss{}, false},
		// Real, from the corpus (real/flink-1.20-kickstarter-517.jm.log): a finished job.
		{"job end", "2024-12-03 02:18:03,708 INFO  org.apache.flink.runtime.jobmaster.JobMaster                 [] - Disconnect TaskExecutor 172.18.0.5:45917-f81c14 because: Stopping JobMaster for job 'collect'", TaskManagerLoss{}, false},
		{"graceful RM", rm + "Closing TaskExecutor connection " + tmID + " because: The TaskExecutor is shutting down.", TaskManagerLoss{}, false},
		{"registration", rm + "Registering TaskManager with ResourceID " + tmID + " (pekko.tcp://flink@127.0.0.1:29826/user/rpc/taskmanager_0) at ResourceManager", TaskManagerLoss{}, false},
		{"heartbeat config", "2026-12-02 04:37:00,001 INFO  org.apache.flink.configuration.GlobalConfiguration [] - Loading configuration property: heartbeat.timeout, 8000", TaskManagerLoss{}, false},
		{"no id", jm + "TaskManager with id  is no longer reachable.", TaskManagerLoss{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ok && !mayBeTaskManagerLoss([]byte(tc.h)) {
				t.Fatalf("prefilter rejects %q", tc.h)
			}
			got, ok := parseTaskManagerLoss([]byte(tc.h))
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseTaskManagerLoss(%q) = %+v, %v; want %+v, %v", tc.h, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// recTMSink records lost TaskManagers.
type recTMSink struct {
	mu   sync.Mutex
	lost []string // id/reason
}

func (r *recTMSink) ObserveTaskManagerLost(id string, reason LossReason, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lost = append(r.lost, fmt.Sprintf("%s/%s", id, reason))
}

// TestScannerReportsEachLostTaskManagerOnce: the four lines of one loss
// (JobMaster and ResourceManager, statement and closing) make one report,
// the first line's; a second TaskManager is reported too; header and full
// event of the same line do not count twice.
func TestScannerReportsEachLostTaskManagerOnce(t *testing.T) {
	sink := &recTMSink{}
	s, err := New(Options{Registerer: prometheus.NewRegistry(), TaskManagers: sink, ThrottleWindow: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "127.0.0.1:20994-3cd84f", "127.0.0.1:31001-aa01bb"
	lines := []string{
		"2026-12-02 04:29:32,627 INFO  org.apache.flink.runtime.jobmaster.JobMaster [] - TaskManager with id " + a + " is no longer reachable.",
		"2026-12-02 04:29:32,661 INFO  org.apache.flink.runtime.jobmaster.JobMaster [] - Disconnect TaskExecutor " + a + " because: TaskManager with id " + a + " is no longer reachable.",
		"2026-12-02 04:29:37,015 INFO  org.apache.flink.runtime.resourcemanager.StandaloneResourceManager [] - The heartbeat of TaskManager with id " + a + " timed out.",
		"2026-12-02 04:29:37,015 INFO  org.apache.flink.runtime.resourcemanager.StandaloneResourceManager [] - Closing TaskExecutor connection " + a + " because: TaskManager with id " + a + " is no longer reachable.",
		"2026-12-02 04:30:01,000 INFO  org.apache.flink.runtime.jobmaster.JobMaster [] - Heartbeat of TaskManager with id " + b + " timed out.",
	}
	for _, l := range lines {
		s.ObserveHeader(&logevent.Event{Line: []byte(l), Component: "jobmanager"})
		s.Scan(time.Time{}, []byte(l), "jobmanager")
	}
	if got := fmt.Sprint(sink.lost); got != "["+a+"/unreachable "+b+"/heartbeat_timeout]" {
		t.Errorf("lost TaskManagers %s", got)
	}
}
