package querycheck

// The Flink Kubernetes Operator's own metrics, as Flink's Prometheus reporter
// exports them from the operator (kubernetes.operator.metrics.reporter.prom.*):
// "flink_" + the metric group's logical scope + the metric name, the scope
// variables as labels (KubernetesOperatorMetricGroup, KubernetesResource-
// NamespaceMetricGroup, KubernetesResourceMetricGroup at operator release
// 1.15.0). The dashboards and FlinkOperatorReconcileFailing query them; the
// agent does not export them, so they are listed here, from the operator's
// source, for the consistency checks.
var (
	operatorLabels   = []string{"host", "name", "namespace", "resourcens", "resourcetype"}
	operatorResource = append(append([]string{}, operatorLabels...), "resourcename")

	// ResourceLifecycleState (flink-kubernetes-operator-api …/lifecycle/ResourceLifecycleState.java).
	operatorLifecycleStates = []string{"CREATED", "SUSPENDED", "UPGRADING", "DEPLOYED", "STABLE", "ROLLING_BACK", "ROLLED_BACK", "FAILED", "DELETING", "DELETED"}
	// JobManagerDeploymentStatus (…/api/status/JobManagerDeploymentStatus.java).
	operatorJMStatuses = []string{"READY", "DEPLOYED_NOT_READY", "DEPLOYING", "MISSING", "ERROR"}
)

// Operator are the operator's metric families by name.
var Operator = operatorFamilies()

func operatorFamilies() map[string]Family {
	fams := map[string]Family{}
	add := func(name string, labels []string) { fams[name] = Family{Name: name, Labels: labels} }
	ns := "flink_k8soperator_namespace_"
	// Namespace scope, FlinkDeployment and FlinkSessionJob (LifecycleMetrics,
	// FlinkDeploymentMetrics, FlinkSessionJobMetrics).
	add(ns+"Count", operatorLabels)
	for _, s := range operatorLifecycleStates {
		add(ns+"Lifecycle_State_"+s+"_Count", operatorLabels)
	}
	for _, s := range operatorJMStatuses {
		add(ns+"JmDeploymentStatus_"+s+"_Count", operatorLabels)
	}
	// Resource scope: JOSDK reconciliation counters (OperatorJosdkMetrics).
	for _, c := range []string{"Reconciliation", "Reconciliation_failed", "Reconciliation_retries", "Reconciliation_finished", "Reconciliation_cleanup"} {
		add(ns+"resource_JOSDK_"+c+"_Count", operatorResource)
	}
	return fams
}
