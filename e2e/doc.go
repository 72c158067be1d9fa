// Package e2e runs the whole alerting chain for real and checks every
// dashboard panel against real data: a Flink test bed (JobManager and
// TaskManager JVMs running checkpointing jobs), the flink-agent binary beside
// each, Loki, statsd_exporter, Prometheus evaluating the repo's alert rules,
// and Alertmanager running the repo's configuration, paging the in-process
// PagerDuty Events API v2 contract server (pager/pdtest) — next to the
// agent's own direct paging. Everything is driven through the agent's public
// surface: its flags and configuration file, /metrics, DogStatsD and Loki.
//
// The tests are in e2e_test.go (the alert table), panels_test.go (every
// dashboard query on the run's data) and bed_test.go (starting it all).
package e2e
