package logscan

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/internal/logtest"
	cpsink "github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/shipper"
)

// timedSink passes lifecycle events to the real checkpointwatch and
// records when the watch returned from a completion: by then
// flink_checkpoints_total has changed.
type timedSink struct {
	*checkpointwatch.Watch
	mu   sync.Mutex
	done map[int64]time.Time
}

func (s *timedSink) ObserveLogCompleted(jobID string, cpID int64, t time.Time, bytes int64, d time.Duration) {
	s.Watch.ObserveLogCompleted(jobID, cpID, t, bytes, d)
	now := time.Now()
	s.mu.Lock()
	s.done[cpID] = now
	s.mu.Unlock()
}

func (s *timedSink) at(id int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.done[id]
	return t, ok
}

// BenchmarkLatencyLogToMetric measures the time from a "Completed checkpoint"
// line being written to a JobManager log file to
// flink_checkpoints_total{status="completed"} changing, through the real
// tailer (shipper, default multiline settings: idle timeout 500 ms) and the
// real checkpointwatch. Each iteration writes one checkpoint's lines as
// Flink 1.20 does on the test bed: "Triggering", then "Completed" followed
// 5 ms later by the source coordinator's "Marking checkpoint … as
// completed" line (which ends the Completed event) — or, in the alone
// variants, nothing: the event then ends by logs.multiline.idle_timeout
// (default 500 ms; alone-idle200ms sets 200 ms).
func BenchmarkLatencyLogToMetric(b *testing.B) {
	for _, mode := range []struct {
		name     string
		follower bool
		idle     time.Duration
	}{
		{"followed", true, 0},
		{"alone", false, 0},
		{"alone-idle200ms", false, 200 * time.Millisecond},
	} {
		b.Run(mode.name, func(b *testing.B) { benchLatency(b, mode.follower, mode.idle) })
	}
}

func benchLatency(b *testing.B, follower bool, idle time.Duration) {
	dir := b.TempDir()
	const job = "a263c230045a6bc59839b4167eccf768"
	logPath := filepath.Join(dir, "flink--standalonesession-0-bench.log")
	f, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	reg := prometheus.NewRegistry()
	watch, err := cpsink.Watch(cpsink.Options{Registerer: reg, StuckRatio: 0.8})
	if err != nil {
		b.Fatal(err)
	}
	sink := &timedSink{Watch: watch, done: map[int64]time.Time{}}
	sc, err := New(Options{Registerer: reg, Checkpoints: sink, ThrottleWindow: 2 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Logs.Paths = []string{filepath.Join(dir, "*.log")}
	cfg.Logs.PositionsFile = filepath.Join(dir, "positions.json")
	if idle > 0 {
		cfg.Logs.Multiline.IdleTimeout = config.Duration(idle)
	}
	sh, err := shipper.New(shipper.Options{
		Logs:       cfg.Logs,
		Loki:       cfg.Loki, // no URL: nothing is pushed, events still reach observers
		Identity:   identity.Identity{Cluster: "bench"},
		Registerer: reg,
		Logger:     slog.New(slog.DiscardHandler),
		Observers:  []logevent.Observer{sc},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = sh.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	ts := func() string { return time.Now().Format("2006-01-02 15:04:05,000") }
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			b.Fatal(err)
		}
	}
	write(ts() + " INFO  org.apache.flink.runtime.executiongraph.ExecutionGraph       [] - Job bench job (" + job + ") switched from state CREATED to RUNNING.\n")

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		id := int64(i)
		write(fmt.Sprintf("%s INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Triggering checkpoint %d (type=CheckpointType{name='Checkpoint', sharingFilesStrategy=FORWARD_BACKWARD}) @ %d for job %s.\n",
			ts(), id, time.Now().UnixMilli(), job))
		time.Sleep(20 * time.Millisecond)
		written := time.Now()
		write(fmt.Sprintf("%s INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint %d for job %s (6872 bytes, checkpointDuration=20 ms, finalizationTime=1 ms).\n",
			ts(), id, job))
		if follower {
			time.Sleep(5 * time.Millisecond)
			write(fmt.Sprintf("%s INFO  org.apache.flink.runtime.source.coordinator.SourceCoordinator [] - Marking checkpoint %d as completed for source Source: sequence.\n", ts(), id))
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if t, ok := sink.at(id); ok {
				lat = append(lat, t.Sub(written))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("checkpoint %d: no metric change within 10s", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	if got := testutil.ToFloat64(watchCompleted(b, reg)); got != float64(b.N) {
		b.Fatalf("flink_checkpoints_total{status=completed} = %v, want %d", got, b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}

// watchCompleted is flink_checkpoints_total{status="completed"} of the
// benchmark's job, read from the registry.
func watchCompleted(b *testing.B, reg *prometheus.Registry) prometheus.Collector {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flink_checkpoints_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if logtest.Label(m, "status") == "completed" {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	b.Fatal("flink_checkpoints_total{status=completed} not found")
	return nil
}
