package shipper

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

// benchEvents is the size of the benchmark's log file: 400,000 events,
// 5% with a stack trace (about 520,000 lines, 100 MB).
const benchEvents = 400_000

func writeBenchFile(tb testing.TB, dir string) (path string, lines int64) {
	tb.Helper()
	path = filepath.Join(dir, "flink--taskexecutor-0-bench.log")
	g := &flinklog.Gen{MultilineEvery: 20, Start: time.Now().Add(-time.Hour), Step: time.Millisecond}
	lines, err := g.WriteFile(path, benchEvents)
	if err != nil {
		tb.Fatal(err)
	}
	return path, lines
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkShipFile reads a Flink log file and pushes it, encoded as
// protobuf + snappy, to a receiver that counts request bytes, on one core
// (GOMAXPROCS=1). It reports lines per second (wall, one core), lines per
// CPU-second of the whole process, and allocations per line.
func BenchmarkShipFile(b *testing.B) {
	dir := b.TempDir()
	_, lines := writeBenchFile(b, dir)
	var reqs, bodyBytes atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		bodyBytes.Add(n)
		reqs.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	var wall, cpu time.Duration
	var mallocs uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg := config.Default()
		cfg.Logs.Paths = []string{filepath.Join(dir, "*.log")}
		cfg.Logs.PositionsFile = filepath.Join(b.TempDir(), "positions.json")
		cfg.Logs.Multiline.IdleTimeout = config.Duration(5 * time.Millisecond)
		cfg.Loki.BatchWait = config.Duration(5 * time.Millisecond) // the last batch is not held back
		cfg.Loki.URL = recv.URL
		s, err := build(Options{Logs: cfg.Logs, Loki: cfg.Loki, Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m0 := ms.Mallocs
		t0, c0 := time.Now(), cpuTime()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = s.Run(ctx); close(done) }()
		for testutil.ToFloat64(s.m.sent) < benchEvents {
			time.Sleep(2 * time.Millisecond)
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - m0
		cancel()
		<-done
	}
	total := float64(lines) * float64(b.N)
	b.ReportMetric(total/wall.Seconds(), "lines/s")
	b.ReportMetric(total/cpu.Seconds(), "lines/cpu-s")
	b.ReportMetric(float64(mallocs)/total, "allocs/line")
	b.ReportMetric(float64(bodyBytes.Load())/float64(reqs.Load()), "B/push")
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB") // the whole test process: an upper bound
}
