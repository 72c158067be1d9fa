package operatorlog

// The lines below are the operator's own words, from apache/flink-kubernetes-operator
// at tag release-1.15.0 (paths under flink-kubernetes-operator/src/main/java/
// org/apache/flink/kubernetes/operator/) and, for reconciliation errors, from
// the Java Operator SDK it runs on (operator-framework/java-operator-sdk
// v5.2.2). testdata/corpus holds one line in the operator's file layout for
// each rule, and the test fails when a rule has none.

// Family is one kind of trouble: one metric family each.
type Family int

const (
	// Deployment: a deployment or upgrade failed (the JobManager's
	// containers cannot start, cancelling the old job failed, the upgrade
	// was rolled back, a session job could not be submitted).
	Deployment Family = iota
	// Snapshot: a savepoint or checkpoint the operator triggered failed.
	Snapshot
	// Rollback: a failed upgrade cannot be rolled back.
	Rollback
	// JobManager: the JobManager deployment is lost or unhealthy and the
	// operator cannot recover it (no HA metadata).
	JobManager
	// Reconcile: a reconciliation ended in an exception.
	Reconcile
	numFamilies
)

var familyNames = [numFamilies]string{"deployment", "snapshot", "rollback", "jobmanager", "reconcile"}

func (f Family) String() string { return familyNames[f] }

// form says whether an occurrence was read from a log call or from the audit
// line of the Kubernetes event the operator raised for it. The operator
// usually does both, one after the other: the pair is one occurrence.
type form uint8

const (
	formLine form = iota + 1
	formEvent
)

// Snapshot kinds, the snapshot label's values.
const (
	Savepoint  = "savepoint"
	Checkpoint = "checkpoint"
	// SnapshotResource: a FlinkStateSnapshot resource, whose kind the line
	// does not name.
	SnapshotResource = "snapshot"
)

// rule recognises one log call by its level, its logger's class and the
// fixed start of its message.
type rule struct {
	family   Family
	level    string
	class    string
	prefix   string
	snapshot string // Snapshot family: savepoint, checkpoint or snapshot
	serious  bool   // a Datadog event
	source   string
}

var lineRules = []rule{
	{family: Deployment, level: "WARN", class: "AbstractFlinkService", prefix: "Error while cancelling job",
		source: "service/AbstractFlinkService.java:437"},
	{family: Deployment, level: "WARN", class: "AbstractFlinkResourceReconciler", prefix: "Rolling back failed deployment.",
		serious: true, source: "reconciler/deployment/AbstractFlinkResourceReconciler.java:453 (MSG_ROLLBACK, :81)"},
	{family: Deployment, level: "ERROR", class: "AbstractFlinkService", prefix: "Failed to submit job to session cluster.",
		serious: true, source: "service/AbstractFlinkService.java:947"},
	{family: Deployment, level: "ERROR", class: "SessionJobReconciler", prefix: "Failed to cancel job, rescheduling deletion.",
		source: "reconciler/sessionjob/SessionJobReconciler.java:211"},

	{family: Snapshot, level: "ERROR", class: "SnapshotObserver", prefix: "Savepoint attempt failed after grace period. Won't be retried again: ",
		snapshot: Savepoint, serious: true, source: "observer/SnapshotObserver.java:137"},
	{family: Snapshot, level: "WARN", class: "SnapshotObserver", prefix: "Savepoint failed within grace period, retrying: ",
		snapshot: Savepoint, source: "observer/SnapshotObserver.java:145"},
	{family: Snapshot, level: "ERROR", class: "SnapshotObserver", prefix: "Checkpoint attempt failed after grace period. Won't be retried again: ",
		snapshot: Checkpoint, serious: true, source: "observer/SnapshotObserver.java:200"},
	{family: Snapshot, level: "WARN", class: "SnapshotObserver", prefix: "Checkpoint failed within grace period, retrying: ",
		snapshot: Checkpoint, source: "observer/SnapshotObserver.java:208"},
	{family: Snapshot, level: "ERROR", class: "SnapshotUtils", prefix: "Job is not running, cancelling savepoint operation",
		snapshot: Savepoint, source: "utils/SnapshotUtils.java:329"},
	{family: Snapshot, level: "ERROR", class: "SnapshotUtils", prefix: "Job is not running, cancelling checkpoint operation",
		snapshot: Checkpoint, source: "utils/SnapshotUtils.java:344"},
	{family: Snapshot, level: "ERROR", class: "StateSnapshotReconciler", prefix: "Failed to trigger snapshot for resource ",
		snapshot: SnapshotResource, serious: true, source: "reconciler/snapshot/StateSnapshotReconciler.java:86"},

	{family: Rollback, level: "WARN", class: "AbstractFlinkResourceReconciler", prefix: "Rollback is not possible due to missing HA metadata",
		serious: true, source: "reconciler/deployment/AbstractFlinkResourceReconciler.java:439"},

	{family: JobManager, level: "WARN", class: "AbstractFlinkResourceReconciler", prefix: "Could not recover lost jobmanager deployment without HA enabled",
		serious: true, source: "reconciler/deployment/AbstractFlinkResourceReconciler.java:513"},
	{family: JobManager, level: "WARN", class: "ApplicationReconciler", prefix: "Could not recover unhealthy jobmanager deployment, HA metadata not available",
		serious: true, source: "reconciler/deployment/ApplicationReconciler.java:345"},

	// JOSDK logs every failed reconciliation once: WARN while a retry is
	// pending, ERROR on the last attempt, ERROR when no retry is configured.
	{family: Reconcile, level: "WARN", class: "EventProcessor", prefix: "Uncaught error during event processing ",
		source: "JOSDK v5.2.2 operator-framework-core/…/processing/event/EventProcessor.java:412"},
	{family: Reconcile, level: "ERROR", class: "EventProcessor", prefix: "Uncaught error during event processing ",
		serious: true, source: "JOSDK v5.2.2 operator-framework-core/…/processing/event/EventProcessor.java:419"},
	{family: Reconcile, level: "ERROR", class: "EventProcessor", prefix: "Error during event processing ",
		serious: true, source: "JOSDK v5.2.2 operator-framework-core/…/processing/event/EventProcessor.java:322"},
}

// eventRule recognises the audit line AuditUtils writes for every
// Kubernetes event (listener/AuditUtils.java:81):
//
//	>>> Event[Job]        | Warning | SAVEPOINTERROR  | Savepoint failed for savepointTriggerNonce: 42
//
// by the event's reason (EventRecorder.Reason, or the reason of the
// exception that raised it) in upper case. Only Warning events count.
type eventRule struct {
	family   Family
	reason   string
	prefix   string // when set, the message must start with it
	snapshot string
	serious  bool
	source   string
}

var eventRules = []eventRule{
	// An upgrade that finds the JobManager gone without HA metadata
	// (ApplicationReconciler.java:120): a JobManager loss, not an ordinary
	// upgrade failure. Before the UPGRADEFAILED rule below.
	{family: JobManager, reason: "UPGRADEFAILED", prefix: "JobManager deployment is missing and HA metadata is not available",
		serious: true, source: "reconciler/deployment/ApplicationReconciler.java:120-126"},

	{family: Snapshot, reason: "SAVEPOINTERROR", snapshot: Savepoint,
		source: "observer/SnapshotObserver.java:147, utils/SnapshotUtils.java:330, service/AbstractFlinkService.java:468,487 (EventRecorder.Reason.SavepointError)"},
	{family: Snapshot, reason: "CHECKPOINTERROR", snapshot: Checkpoint,
		source: "observer/SnapshotObserver.java:210, utils/SnapshotUtils.java:345 (EventRecorder.Reason.CheckpointError)"},

	{family: Deployment, reason: "UPGRADEFAILED", serious: true, source: "reconciler/deployment/AbstractJobReconciler.java:228-231 (UpgradeFailureException)"},
	{family: Deployment, reason: "RESTOREFAILED", serious: true, source: "service/AbstractFlinkService.java:1061-1065 (UpgradeFailureException)"},
	{family: Deployment, reason: "CHECKPOINTNOTFOUND", serious: true, source: "service/AbstractFlinkService.java:603-605 (UpgradeFailureException)"},
	{family: Deployment, reason: "CLEANUPFAILED", source: "service/AbstractFlinkService.java:428,438, reconciler/deployment/SessionReconciler.java:186,213 (EventRecorder.Reason.CleanupFailed)"},
	// DeploymentFailedException: the JobManager deployment's condition or
	// its containers' waiting reason (exception/DeploymentFailedException.java:31-37).
	{family: Deployment, reason: "FAILEDCREATE", serious: true, source: "observer/deployment/AbstractFlinkDeploymentObserver.java:169 (DeploymentFailedException)"},
	{family: Deployment, reason: "CRASHLOOPBACKOFF", serious: true, source: "exception/DeploymentFailedException.java:32"},
	{family: Deployment, reason: "IMAGEPULLBACKOFF", serious: true, source: "exception/DeploymentFailedException.java:33"},
	{family: Deployment, reason: "ERRIMAGEPULL", serious: true, source: "exception/DeploymentFailedException.java:34"},
	{family: Deployment, reason: "RUNCONTAINERERROR", serious: true, source: "exception/DeploymentFailedException.java:35"},
	{family: Deployment, reason: "CREATECONTAINERCONFIGERROR", serious: true, source: "exception/DeploymentFailedException.java:36"},
	{family: Deployment, reason: "OOMKILLED", serious: true, source: "exception/DeploymentFailedException.java:37"},
}
