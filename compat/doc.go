// Package compat holds the compatibility test: the agent's REST collector
// and its JobManager log analysis, run against a real Flink of every version
// the test bed supports (testbed/flink-versions.txt), with a table of what
// each version showed. `make test` runs the default version and the newest
// 2.x; `make test-compat` runs them all (FLINK_VERSIONS=all).
package compat
