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

// Metric describes one DogStatsD metric: the catalog entry.
type Metric struct {
	Name string
	Kind Kind
	Unit string
	Help string
}

// CountMetric, GaugeMetric and DistributionMetric are metrics of one kind:
// the client's Count takes only a CountMetric, so sending a metric as the
// wrong kind does not compile.
type (
	CountMetric        struct{ Metric }
	GaugeMetric        struct{ Metric }
	DistributionMetric struct{ Metric }
)

func count(name, unit, help string) CountMetric { return CountMetric{Metric{name, Count, unit, help}} }
func gauge(name, unit, help string) GaugeMetric { return GaugeMetric{Metric{name, Gauge, unit, help}} }
func distribution(name, unit, help string) DistributionMetric {
	return DistributionMetric{Metric{name, Distribution, unit, help}}
}

// The catalog. Tags listed in Help are added per point; cluster, namespace,
// pod and component are global tags.
var (
	Up             = gauge("flink.up", "", "1 when the last REST scrape succeeded")
	ScrapeDuration = gauge("flink.scrape.duration", "second", "duration of the last REST scrape")

	ClusterTaskManagers   = gauge("flink.cluster.taskmanagers", "", "registered TaskManagers")
	ClusterSlotsTotal     = gauge("flink.cluster.slots.total", "", "task slots")
	ClusterSlotsAvailable = gauge("flink.cluster.slots.available", "", "free task slots")
	ClusterJobs           = gauge("flink.cluster.jobs", "", "jobs by state (state:)")

	JobRunning            = gauge("flink.job.running", "", "1 while the job is RUNNING (job_name:, job_id:, state:)")
	JobUptime             = gauge("flink.job.uptime", "second", "time since the job started (job_name:)")
	JobRestarts           = count("flink.job.restarts", "", "job restarts (job_name:)")
	JobRecordsIn          = gauge("flink.job.records_in_per_second", "record", "records the job's sources emit per second, over the last minute (job_name:)")
	JobRecordsOut         = gauge("flink.job.records_out_per_second", "record", "records the job's sinks take in per second, over the last minute (job_name:)")
	JobSourcePending      = gauge("flink.job.source.pending_records", "record", "the sources' backlog: pendingRecords summed over their subtasks, else Kafka records-lag-max (job_name:)")
	JobWatermarkLag       = gauge("flink.job.watermark_lag", "second", "now minus the lowest watermark reaching a sink, event-time jobs only (job_name:)")
	JobLateRecordsDropped = count("flink.job.late_records_dropped", "record", "records windows dropped as late (job_name:)")
	JobExceptions         = count("flink.job.exceptions", "", "new entries of the job's exception history, read when it restarted (job_name:, exception:)")

	CheckpointDuration          = distribution("flink.checkpoint.duration", "second", "end-to-end duration of each completed checkpoint (job_name:, kind:)")
	CheckpointSize              = gauge("flink.checkpoint.size", "byte", "size of the latest completed checkpoint (job_name:, type:full|incremental)")
	CheckpointCompleted         = count("flink.checkpoint.completed", "", "completed checkpoints (job_name:, kind:)")
	CheckpointFailed            = count("flink.checkpoint.failed", "", "failed checkpoints (job_name:, kind:, reason:)")
	CheckpointFailedS3Throttled = count("flink.checkpoint.failed.s3_throttled", "", "failed checkpoints attributed to S3 throttling (job_name:)")
	CheckpointInProgress        = gauge("flink.checkpoint.in_progress", "", "checkpoints in progress (job_name:)")
	CheckpointOldestInProgress  = gauge("flink.checkpoint.oldest_in_progress_age", "second", "age of the oldest in-progress checkpoint (job_name:)")
	CheckpointLastCompletedAge  = gauge("flink.checkpoint.time_since_last_completed", "second", "time since the latest completed checkpoint (job_name:)")
	CheckpointConsecutiveFailed = gauge("flink.checkpoint.consecutive_failures", "", "failures since the last completed checkpoint (job_name:)")
	CheckpointFailuresUntilFail = gauge("flink.checkpoint.failures_until_job_failure", "", "further failures Flink tolerates before failing the job (job_name:)")
	CheckpointInterval          = gauge("flink.checkpoint.interval", "second", "configured checkpoint interval (job_name:)")
	CheckpointTimeout           = gauge("flink.checkpoint.timeout", "second", "configured checkpoint timeout (job_name:)")
	CheckpointStuck             = gauge("flink.checkpoint.stuck", "", "1 while a checkpoint is older than the stuck ratio of its timeout (job_name:)")
	VertexBackpressureRatio     = gauge("flink.vertex.backpressure_ratio", "", "share of time back-pressured (job_name:, vertex:)")
	VertexBusyRatio             = gauge("flink.vertex.busy_ratio", "", "share of time busy (job_name:, vertex:)")
	JVMHeapUsed                 = gauge("flink.jvm.heap.used", "byte", "JVM heap used (flink_component:jobmanager|taskmanager)")
	JVMHeapMax                  = gauge("flink.jvm.heap.max", "byte", "JVM heap max (flink_component:)")
	JVMGCTime                   = count("flink.jvm.gc.time", "millisecond", "time spent in GC (flink_component:)")
	LogLines                    = count("flink.log.lines", "", "log events read (level:)")
	LogExceptions               = count("flink.log.exceptions", "", "log events carrying an exception (exception:)")
	S3Throttle                  = count("flink.s3.throttle", "", "S3 throttling occurrences in the logs (bucket:, operation:)")
	TaskManagersLost            = count("flink.taskmanagers.lost", "", "TaskManagers the JobManager lost, each once, from its log (reason:)")
	ConfigS3EntropyInjection    = gauge("flink.config.s3_entropy_injection", "", "0 when S3 checkpoints are written without entropy injection")
	AgentLokiLag                = gauge("flink.agent.loki.lag", "second", "age of the oldest log entry not yet acknowledged by Loki")
	AgentLokiEntriesRejected    = count("flink.agent.loki.entries_rejected", "", "log entries Loki rejected permanently (reason:)")

	// From the Flink Kubernetes Operator's log (operatorlog).
	OperatorDeploymentFailures      = count("flink.operator.deployment_failures", "", "failed deployments and upgrades (resource_namespace:, resource_name:)")
	OperatorSnapshotFailures        = count("flink.operator.snapshot_failures", "", "failed savepoints and checkpoints the operator triggered (resource_namespace:, resource_name:, snapshot:)")
	OperatorRollbackFailures        = count("flink.operator.rollback_failures", "", "failed upgrades that cannot be rolled back (resource_namespace:, resource_name:)")
	OperatorJobManagerUnrecoverable = count("flink.operator.jobmanager_unrecoverable", "", "lost JobManager deployments the operator cannot recover (resource_namespace:, resource_name:)")
	OperatorReconcileErrors         = count("flink.operator.reconcile_errors", "", "reconciliations that ended in an exception (resource_namespace:, resource_name:)")
)

// ServiceCheckCanComplete is OK while checkpoints complete, CRITICAL while
// Flink is one failure from failing the job or a checkpoint is stuck.
const ServiceCheckCanComplete = "flink.checkpoint.can_complete"

// Catalog lists every metric the agent can emit.
func Catalog() []Metric {
	return []Metric{
		Up.Metric, ScrapeDuration.Metric, ClusterTaskManagers.Metric, ClusterSlotsTotal.Metric,
		ClusterSlotsAvailable.Metric, ClusterJobs.Metric, JobRunning.Metric, JobUptime.Metric, JobRestarts.Metric,
		JobExceptions.Metric, JobRecordsIn.Metric, JobRecordsOut.Metric, JobSourcePending.Metric,
		JobWatermarkLag.Metric, JobLateRecordsDropped.Metric,
		CheckpointDuration.Metric, CheckpointSize.Metric, CheckpointCompleted.Metric, CheckpointFailed.Metric,
		CheckpointFailedS3Throttled.Metric, CheckpointInProgress.Metric, CheckpointOldestInProgress.Metric,
		CheckpointLastCompletedAge.Metric, CheckpointConsecutiveFailed.Metric, CheckpointFailuresUntilFail.Metric,
		CheckpointInterval.Metric, CheckpointTimeout.Metric, CheckpointStuck.Metric,
		VertexBackpressureRatio.Metric, VertexBusyRatio.Metric, JVMHeapUsed.Metric, JVMHeapMax.Metric,
		JVMGCTime.Metric, LogLines.Metric, LogExceptions.Metric, S3Throttle.Metric, TaskManagersLost.Metric,
		ConfigS3EntropyInjection.Metric, AgentLokiLag.Metric, AgentLokiEntriesRejected.Metric,
		OperatorDeploymentFailures.Metric, OperatorSnapshotFailures.Metric, OperatorRollbackFailures.Metric,
		OperatorJobManagerUnrecoverable.Metric, OperatorReconcileErrors.Metric,
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

// Count adds v to a count metric.
func (c *Client) Count(m CountMetric, v int64, tags ...string) {
	if !c.Enabled() || v == 0 {
		return
	}
	_ = c.c.Count(m.Name, v, tags, 1)
}

// Gauge sets a gauge metric.
func (c *Client) Gauge(m GaugeMetric, v float64, tags ...string) {
	if !c.Enabled() {
		return
	}
	_ = c.c.Gauge(m.Name, v, tags, 1)
}

// Distribution records one sample of a distribution metric.
func (c *Client) Distribution(m DistributionMetric, v float64, tags ...string) {
	if !c.Enabled() {
		return
	}
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
