package logscan

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/identity"
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
// the first line's — one count in flink_taskmanagers_lost_total and
// DogStatsD, one Datadog event; a second TaskManager is reported too; the
// header and the full event of the same line do not count twice.
func TestScannerReportsEachLostTaskManagerOnce(t *testing.T) {
	h := newHarness(t, 0)
	sink := &recTMSink{}
	h.s.tmSink = sink
	const a, b = "127.0.0.1:20994-3cd84f", "127.0.0.1:31001-aa01bb"
	lines := []string{
		"2026-01-02 03:00:00,627 INFO  org.apache.flink.runtime.jobmaster.JobMaster [] - TaskManager with id " + a + " is no longer reachable.",
		"2026-01-02 03:00:00,661 INFO  org.apache.flink.runtime.jobmaster.JobMaster [] - Disconnect TaskExecutor " + a + " because: TaskManager with id " + a + " is no longer reachable.",
		"2026-01-02 03:00:05,015 INFO  org.apache.flink.runtime.resourcemanager.StandaloneResourceManager [] - The heartbeat of TaskManager with id " + a + " timed out.",
		"2026-01-02 03:00:05,015 INFO  org.apache.flink.runtime.resourcemanager.StandaloneResourceManager [] - Closing TaskExecutor connection " + a + " because: TaskManager with id " + a + " is no longer reachable.",
		"2026-01-02 03:00:30,000 INFO  org.apache.flink.runtime.jobmaster.JobMaster [] - Heartbeat of TaskManager with id " + b + " timed out.",
	}
	for _, l := range lines {
		h.s.ObserveHeader(&logevent.Event{Line: []byte(l), Component: "jobmanager"})
		h.s.Scan(time.Time{}, []byte(l), "jobmanager")
	}
	if got := fmt.Sprint(sink.lost); got != "["+a+"/unreachable "+b+"/heartbeat_timeout]" {
		t.Errorf("lost TaskManagers %s", got)
	}
	want := `
# HELP flink_taskmanagers_lost_total TaskManagers the JobManager lost, each counted once, by reason from its log: heartbeat_timeout, unreachable, oom_killed, terminated.
# TYPE flink_taskmanagers_lost_total counter
flink_taskmanagers_lost_total{reason="heartbeat_timeout"} 1
flink_taskmanagers_lost_total{reason="oom_killed"} 0
flink_taskmanagers_lost_total{reason="terminated"} 0
flink_taskmanagers_lost_total{reason="unreachable"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), MetricTaskManagersLost); err != nil {
		t.Error(err)
	}
	if got := fmt.Sprint(h.sd.Counts); got != "[flink.taskmanagers.lost 1 reason:unreachable flink.taskmanagers.lost 1 reason:heartbeat_timeout]" {
		t.Errorf("DogStatsD counts %s", got)
	}
	if len(h.sd.Events) != 2 || !strings.Contains(h.sd.Events[0].Title, a) || !strings.Contains(h.sd.Events[0].Text, "Reason: unreachable") {
		t.Errorf("Datadog events %+v", h.sd.Events)
	}
}

// TestTaskManagerSidecarHasNoLostMetric: a TaskManager's log never says
// that a TaskManager was lost, so its sidecar exports no such counter.
func TestTaskManagerSidecarHasNoLostMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{Registerer: reg, Identity: identity.Identity{Component: identity.TaskManager}, ThrottleWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Scan(time.Time{}, []byte("x - TaskManager with id a:1-b is no longer reachable."), "")
	if n, err := testutil.GatherAndCount(reg, MetricTaskManagersLost); err != nil || n != 0 {
		t.Errorf("%s on a TaskManager sidecar: %d series (%v)", MetricTaskManagersLost, n, err)
	}
}
