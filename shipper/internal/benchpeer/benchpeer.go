// Package benchpeer holds what the whole-process benchmarks
// (benchcompare, benchfootprint) share: a process's CPU time and memory
// from /proc, and the Promtail configuration that does the agent's work
// per event.
package benchpeer

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// SchedCPU is a process's time on a CPU, to the nanosecond: the sum over
// its threads of /proc/<pid>/task/<tid>/schedstat. /proc/<pid>/stat counts
// in clock ticks (10 ms) charged to whoever runs when the tick comes, so a
// sidecar that runs in bursts of a few hundred microseconds reads ±10% over
// a minute; this does not (threads that exited are missed: Go keeps them).
func SchedCPU(pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := bytes.Fields(b); len(f) > 0 {
			v, _ := strconv.ParseInt(string(f[0]), 10, 64)
			ns += v
		}
	}
	return time.Duration(ns)
}

// CPU is a process's user+system time from /proc/<pid>/stat.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may contain spaces).
	i := bytes.LastIndexByte(b, ')')
	fields := bytes.Fields(b[i+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(string(fields[11]), 10, 64) // utime, field 14 of stat
	st, _ := strconv.ParseInt(string(fields[12]), 10, 64) // stime, field 15
	return time.Duration(ut+st) * time.Second / 100       // USER_HZ
}

// Mem is a process's current and peak RSS in KiB.
func Mem(pid int) (rss, hwm int64) {
	m := MemOf(pid)
	return m.RSS, m.HWM
}

// Memory is a process's resident memory in KiB (/proc/<pid>/status):
// RSS = Anon (heap, stacks: the process's own) + File (the executable's
// and libraries' pages, shared with every process mapping them).
type Memory struct{ RSS, HWM, Anon, File int64 }

// MemOf reads a process's resident memory; zeros if it is gone.
func MemOf(pid int) Memory {
	var m Memory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		for _, f := range []struct {
			p []byte
			v *int64
		}{{[]byte("VmRSS:"), &m.RSS}, {[]byte("VmHWM:"), &m.HWM}, {[]byte("RssAnon:"), &m.Anon}, {[]byte("RssFile:"), &m.File}} {
			if bytes.HasPrefix(l, f.p) {
				if fs := bytes.Fields(l[len(f.p):]); len(fs) > 0 {
					*f.v, _ = strconv.ParseInt(string(fs[0]), 10, 64)
				}
			}
		}
	}
	return m
}

// PromtailConfig is Promtail doing the agent's work per event: log4j
// multiline on the timestamp, the record's time, level and logger as
// structured metadata, batches of 1 MiB or 1 s. dir holds its positions.
func PromtailConfig(dir, url, glob string) string {
	return fmt.Sprintf(promtailConfig, dir, url, glob)
}

const promtailConfig = `server:
  disable: true
positions:
  filename: %[1]s/promtail-positions.yaml
clients:
  - url: %[2]s/loki/api/v1/push
    batchwait: 1s
    batchsize: 1048576
scrape_configs:
  - job_name: flink
    static_configs:
      - targets: [localhost]
        labels:
          job: flink
          __path__: %[3]s
    pipeline_stages:
      - multiline:
          firstline: '^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}'
          max_wait_time: 500ms
          max_lines: 100000
      - regex:
          expression: '^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (?P<level>\S+)\s+(?P<logger>\S+)'
      - timestamp:
          source: ts
          format: '2006-01-02 15:04:05,000'
      - structured_metadata:
          level:
          logger:
`
