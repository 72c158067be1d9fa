// Writes operator-like log events through the real log4j2 with the MDC the
// Java Operator SDK sets during a reconciliation (resource.namespace,
// resource.name): the input of TestOperatorLog4j. Run with the single-file
// source launcher: java -cp <log4j-api>:<log4j-core> OperatorLog.java
import java.util.concurrent.TimeoutException;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.logging.log4j.ThreadContext;

public class OperatorLog {
    public static void main(String[] args) {
        Logger operator = LogManager.getLogger("org.apache.flink.kubernetes.operator.FlinkOperator");
        Logger reconciler = LogManager.getLogger("org.apache.flink.kubernetes.operator.reconciler.deployment.AbstractFlinkResourceReconciler");
        Logger observer = LogManager.getLogger("org.apache.flink.kubernetes.operator.observer.SnapshotObserver");
        Logger audit = LogManager.getLogger("org.apache.flink.kubernetes.operator.listener.AuditUtils");
        Logger josdk = LogManager.getLogger("io.javaoperatorsdk.operator.processing.event.EventProcessor");

        operator.info("Starting Flink Kubernetes Operator");
        ThreadContext.put("resource.namespace", "prod");
        ThreadContext.put("resource.name", "orders");
        reconciler.warn("Could not recover lost jobmanager deployment without HA enabled");
        observer.warn("Savepoint failed within grace period, retrying: java.util.concurrent.TimeoutException");
        // AuditUtils.format(Event, "Job")
        audit.info(String.format(">>> %-16s | %-7s | %-15s | %s", "Event[Job]", "Warning", "SAVEPOINTERROR",
                "Savepoint failed for savepointTriggerNonce: 42"));
        josdk.warn("Uncaught error during event processing ExecutionScope{resource=ResourceID{name='orders', namespace='prod'}, retryInfo=null, deleteEvent=false, isDeleteFinalStateUnknown=false}"
                + " - but another reconciliation will be attempted because a superseding event has been received or another retry attempt is pending.",
                new RuntimeException("org.apache.flink.kubernetes.operator.exception.ReconciliationException", new TimeoutException("REST call timed out")));
        ThreadContext.clearMap();
        operator.info("End of reconciliation");
    }
}
