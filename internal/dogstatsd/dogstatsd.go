// Package dogstatsd sends the agent's signals to a Datadog Agent (or any
// DogStatsD receiver) through datadog-go/v5 with client-side aggregation.
//
// Every metric the agent can emit is declared below, and the client only
// takes these declarations: the catalog cannot drift from what is sent, and
// dashboards and monitors are checked against it.
package dogstatsd

import (
	"fmt"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// Kind is the DogStatsD type a metric is sent as.
type Kind string

const (
	Count        Kind = "count"
	Gauge        Kind = "gauge"
	Distribution Kind = "distribution"
)

// Metric is one DogStatsD metric name and its type.
type Metric struct {
	Name string
	Kind Kind
	Unit string
	Help string
}

// The catalog. Tags listed in Help are added per point; cluster, namespace,
// pod and component are global tags.
var (
	Up             = Metric{"flink.up", Gauge, "", "1 when the last REST scrape succeeded"}
	ScrapeDuration = Metric{"flink.scrape.duration", Gauge, "second", "duration of the last REST scrape"}

	ClusterTaskManagers   = Metric{"flink.cluster.taskmanagers", Gauge, "", "registered TaskManagers"}
	ClusterSlotsTotal     = Metric{"flink.cluster.slots.total", Gauge, "", "task slots"}
	ClusterSlotsAvailable = Metric{"flink.cluster.slots.available", Gauge, "", "free task slots"}
	ClusterJobs           = Metric{"flink.cluster.jobs", Gauge, "", "jobs by state (state:)"}

	JobRunning  = Metric{"flink.job.running", Gauge, "", "1 while the job is RUNNING (job_name:, job_id:, state:)"}
	JobUptime   = Metric{"flink.job.uptime", Gauge, "second", "time since the job started (job_name:)"}
	JobRestarts = Metric{"flink.job.restarts", Count, "", "job restarts (job_name:)"}

	CheckpointDuration          = Metric{"flink.checkpoint.duration", Distribution, "second", "end-to-end duration of each completed checkpoint (job_name:, kind:)"}
	CheckpointSize              = Metric{"flink.checkpoint.size", Gauge, "byte", "size of the latest completed checkpoint (job_name:, type:full|incremental)"}
	CheckpointCompleted         = Metric{"flink.checkpoint.completed", Count, "", "completed checkpoints (job_name:, kind:)"}
	CheckpointFailed            = Metric{"flink.checkpoint.failed", Count, "", "failed checkpoints (job_name:, kind:, reason:)"}
	CheckpointFailedS3Throttled = Metric{"flink.checkpoint.failed.s3_throttled", Count, "", "failed checkpoints attributed to S3 throttling (job_name:)"}
	CheckpointInProgress        = Metric{"flink.checkpoint.in_progress", Gauge, "", "checkpoints in progress (job_name:)"}
	CheckpointOldestInProgress  = Metric{"flink.checkpoint.oldest_in_progress_age", Gauge, "second", "age of the oldest in-progress checkpoint (job_name:)"}
	CheckpointLastCompletedAge  = Metric{"flink.checkpoint.time_since_last_completed", Gauge, "second", "time since the latest completed checkpoint (job_name:)"}
	CheckpointConsecutiveFailed = Metric{"flink.checkpoint.consecutive_failures", Gauge, "", "failures since the last completed checkpoint (job_name:)"}
	CheckpointFailuresUntilFail = Metric{"flink.checkpoint.failures_until_job_failure", Gauge, "", "further failures Flink tolerates before failing the job (job_name:)"}
	CheckpointInterval          = Metric{"flink.checkpoint.interval", Gauge, "second", "configured checkpoint interval (job_name:)"}
	CheckpointTimeout           = Metric{"flink.checkpoint.timeout", Gauge, "second", "configured checkpoint timeout (job_name:)"}
	CheckpointStuck             = Metric{"flink.checkpoint.stuck", Gauge, "", "1 while a checkpoint is older than the stuck ratio of its timeout (job_name:)"}
	VertexBackpressureRatio     = Metric{"flink.vertex.backpressure_ratio", Gauge, "", "share of time back-pressured (job_name:, vertex:)"}
	VertexBusyRatio             = Metric{"flink.vertex.busy_ratio", Gauge, "", "share of time busy (job_name:, vertex:)"}
	JVMHeapUsed                 = Metric{"flink.jvm.heap.used", Gauge, "byte", "JVM heap used (flink_component:jobmanager|taskmanager)"}
	JVMHeapMax                  = Metric{"flink.jvm.heap.max", Gauge, "byte", "JVM heap max (flink_component:)"}
	JVMGCTime                   = Metric{"flink.jvm.gc.time", Count, "millisecond", "time spent in GC (flink_component:)"}
	LogLines                    = Metric{"flink.log.lines", Count, "", "log events read (level:)"}
	LogExceptions               = Metric{"flink.log.exceptions", Count, "", "log events carrying an exception (exception:)"}
	S3Throttle                  = Metric{"flink.s3.throttle", Count, "", "S3 throttling occurrences in the logs (bucket:, operation:)"}
	ConfigS3EntropyInjection    = Metric{"flink.config.s3_entropy_injection", Gauge, "", "0 when S3 checkpoints are written without entropy injection"}
	AgentLokiLag                = Metric{"flink.agent.loki.lag", Gauge, "second", "age of the oldest log entry not yet acknowledged by Loki"}
	AgentLokiEntriesRejected    = Metric{"flink.agent.loki.entries_rejected", Count, "", "log entries Loki rejected permanently (reason:)"}

	// From the Flink Kubernetes Operator's log (operatorlog).
	OperatorDeploymentFailures      = Metric{"flink.operator.deployment_failures", Count, "", "failed deployments and upgrades (resource_namespace:, resource_name:)"}
	OperatorSnapshotFailures        = Metric{"flink.operator.snapshot_failures", Count, "", "failed savepoints and checkpoints the operator triggered (resource_namespace:, resource_name:, snapshot:)"}
	OperatorRollbackFailures        = Metric{"flink.operator.rollback_failures", Count, "", "failed upgrades that cannot be rolled back (resource_namespace:, resource_name:)"}
	OperatorJobManagerUnrecoverable = Metric{"flink.operator.jobmanager_unrecoverable", Count, "", "lost JobManager deployments the operator cannot recover (resource_namespace:, resource_name:)"}
	OperatorReconcileErrors         = Metric{"flink.operator.reconcile_errors", Count, "", "reconciliations that ended in an exception (resource_namespace:, resource_name:)"}
)

// ServiceCheckCanComplete is OK while checkpoints complete, CRITICAL while
// Flink is one failure from failing the job or a checkpoint is stuck.
const ServiceCheckCanComplete = "flink.checkpoint.can_complete"

// Catalog lists every metric the agent can emit.
func Catalog() []Metric {
	return []Metric{
		Up, ScrapeDuration, ClusterTaskManagers, ClusterSlotsTotal, ClusterSlotsAvailable, ClusterJobs,
		JobRunning, JobUptime, JobRestarts,
		CheckpointDuration, CheckpointSize, CheckpointCompleted, CheckpointFailed, CheckpointFailedS3Throttled,
		CheckpointInProgress, CheckpointOldestInProgress, CheckpointLastCompletedAge, CheckpointConsecutiveFailed,
		CheckpointFailuresUntilFail, CheckpointInterval, CheckpointTimeout, CheckpointStuck,
		VertexBackpressureRatio, VertexBusyRatio, JVMHeapUsed, JVMHeapMax, JVMGCTime,
		LogLines, LogExceptions, S3Throttle, ConfigS3EntropyInjection, AgentLokiLag, AgentLokiEntriesRejected,
		OperatorDeploymentFailures, OperatorSnapshotFailures, OperatorRollbackFailures, OperatorJobManagerUnrecoverable,
		OperatorReconcileErrors,
	}
}

// Client sends catalogued metrics, events and service checks. The zero
// value and a nil *Client are valid and send nothing (DogStatsD disabled).
type Client struct {
	c      statsd.ClientInterface
	events bool
}

// New connects to addr ("host:port" or "unix:///path"); "" disables. tags are
// added to everything sent.
func New(addr string, tags []string, events bool) (*Client, error) {
	if addr == "" {
		return nil, nil
	}
	c, err := statsd.New(addr,
		statsd.WithTags(tags),
		statsd.WithClientSideAggregation(),
		statsd.WithExtendedClientSideAggregation(),
		statsd.WithBufferFlushInterval(time.Second),
		statsd.WithoutTelemetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("dogstatsd: %w", err)
	}
	return &Client{c: c, events: events}, nil
}

// Wrap uses an existing client (tests pass a recorder).
func Wrap(c statsd.ClientInterface, events bool) *Client { return &Client{c: c, events: events} }

// Enabled reports whether anything is sent.
func (c *Client) Enabled() bool { return c != nil && c.c != nil }

func (c *Client) check(m Metric, k Kind) {
	if m.Kind != k {
		panic(fmt.Sprintf("dogstatsd: %s is a %s, not a %s", m.Name, m.Kind, k))
	}
}

// Count adds v to a count metric.
func (c *Client) Count(m Metric, v int64, tags ...string) {
	if !c.Enabled() || v == 0 {
		return
	}
	c.check(m, Count)
	_ = c.c.Count(m.Name, v, tags, 1)
}

// Gauge sets a gauge metric.
func (c *Client) Gauge(m Metric, v float64, tags ...string) {
	if !c.Enabled() {
		return
	}
	c.check(m, Gauge)
	_ = c.c.Gauge(m.Name, v, tags, 1)
}

// Distribution records one sample of a distribution metric.
func (c *Client) Distribution(m Metric, v float64, tags ...string) {
	if !c.Enabled() {
		return
	}
	c.check(m, Distribution)
	_ = c.c.Distribution(m.Name, v, tags, 1)
}

// Event sends a Datadog event when events are enabled.
func (c *Client) Event(e *statsd.Event) {
	if !c.Enabled() || !c.events {
		return
	}
	_ = c.c.Event(e)
}

// ServiceCheck sends a service check.
func (c *Client) ServiceCheck(sc *statsd.ServiceCheck) {
	if !c.Enabled() {
		return
	}
	_ = c.c.ServiceCheck(sc)
}

// Flush sends what is buffered.
func (c *Client) Flush() error {
	if !c.Enabled() {
		return nil
	}
	return c.c.Flush()
}

// Close flushes and closes the connection.
func (c *Client) Close() error {
	if !c.Enabled() {
		return nil
	}
	return c.c.Close()
}

// Tag renders "key:value" with DogStatsD-unsafe characters replaced.
func Tag(key, value string) string {
	return key + ":" + tagValue.Replace(value)
}

var tagValue = strings.NewReplacer(",", "_", "|", "_", "\n", " ", "#", "_")
