// Package chaos holds the chaos test of issue 10: every hostile case a
// fair tester tried against the agent in a shared pod — symlinks out of the
// log directory, FIFOs, thousands of files, truncation and renames, secrets
// in every form, credentials in URLs, huge and compressed REST answers,
// impossible counters, ten thousand jobs, configurations that break at run
// time — replayed against the built binary with the real Loki and, for the
// REST cases, a fake JobManager in the test process (fault injection). It
// prints a table: case, lines written, delivered, duplicates, peak RSS,
// verdict. Every agent runs with GOMEMLIMIT=128MiB, the chart's memory
// limit, and no case may drive its RSS above 128 MiB.
package chaos
