package agent_test

import (
	"slices"
	"testing"

	"github.com/flink-agent/flink-agent/dashboards/querycheck"
)

// The metric names (and their labels) that the issues name are a public
// contract: dashboards, alerts and users' queries depend on them.
var contract = map[string][]string{
	// REST collector and checkpoint watch
	"flink_up":                                          nil,
	"flink_scrape_duration_seconds":                     nil,
	"flink_rest_requests_total":                         {"endpoint", "code"},
	"flink_cluster_taskmanagers":                        nil,
	"flink_cluster_slots_total":                         nil,
	"flink_cluster_slots_available":                     nil,
	"flink_cluster_jobs":                                {"state"},
	"flink_job_info":                                    {"job_id", "job_name", "state"},
	"flink_job_uptime_seconds":                          {"job_name"},
	"flink_job_restarts_total":                          {"job_name"},
	"flink_checkpoint_duration_seconds":                 {"job_name", "kind"},
	"flink_checkpoint_size_bytes":                       {"job_name", "type"},
	"flink_checkpoints_total":                           {"job_name", "kind", "status"},
	"flink_checkpoint_failures_total":                   {"job_name", "reason"},
	"flink_checkpoint_in_progress":                      {"job_name"},
	"flink_checkpoint_oldest_in_progress_age_seconds":   {"job_name"},
	"flink_checkpoint_last_completed_timestamp_seconds": {"job_name"},
	"flink_checkpoint_consecutive_failures":             {"job_name"},
	"flink_checkpoint_failures_until_job_failure":       {"job_name"},
	"flink_checkpoint_interval_seconds":                 {"job_name"},
	"flink_checkpoint_timeout_seconds":                  {"job_name"},
	"flink_checkpoint_stuck":                            {"job_name"},
	"flink_checkpoint_failures_s3_throttled_total":      {"job_name"},
	"flink_vertex_backpressure_ratio":                   {"job_name", "vertex"},
	"flink_vertex_busy_ratio":                           {"job_name", "vertex"},
	"flink_jvm_heap_used_bytes":                         {"component"},
	"flink_jvm_heap_max_bytes":                          {"component"},
	"flink_jvm_gc_time_seconds_total":                   {"component"},
	// log shipper
	"flink_log_lines_total":                   {"component", "level"},
	"flink_log_exceptions_total":              {"component", "exception"},
	"flink_agent_tail_files":                  nil,
	"flink_agent_tail_bytes_total":            nil,
	"flink_agent_loki_entries_sent_total":     nil,
	"flink_agent_loki_batches_total":          {"result"},
	"flink_agent_loki_entries_rejected_total": {"reason"},
	"flink_agent_loki_buffered_bytes":         nil,
	"flink_agent_loki_lag_seconds":            nil,
	"flink_agent_redactions_total":            {"rule"},
	// log analysis
	"flink_s3_throttle_events_total":    {"bucket", "component"},
	"flink_config_s3_entropy_injection": nil,
	"flink_config_info":                 {"checkpoint_storage", "state_backend"},
	// the Flink Kubernetes Operator's log (issue 17)
	"flink_operator_deployment_failures_total":      {"resource_namespace", "resource_name"},
	"flink_operator_snapshot_failures_total":        {"resource_namespace", "resource_name", "snapshot"},
	"flink_operator_rollback_failures_total":        {"resource_namespace", "resource_name"},
	"flink_operator_jobmanager_unrecoverable_total": {"resource_namespace", "resource_name"},
	"flink_operator_reconcile_errors_total":         {"resource_namespace", "resource_name"},
	// the agent itself
	"flink_agent_build_info": nil,
}

func TestExportedMetricsMatchTheContract(t *testing.T) {
	fams, err := querycheck.AgentFamilies()
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range contract {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s is not exported", name)
			continue
		}
		for _, l := range labels {
			if !slices.Contains(f.Labels, l) {
				t.Errorf("%s lacks label %q (has %v)", name, l, f.Labels)
			}
		}
	}
}
