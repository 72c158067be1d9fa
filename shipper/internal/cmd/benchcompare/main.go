// Command benchcompare runs the shipper (as shipperd, the agent's shipper
// alone) and Promtail on the same Flink log file against the same counting
// Loki receiver, one after the other, and reports for each: wall time,
// lines per CPU-second and peak RSS. scripts/bench-compare.sh runs it.
//
// Both do the same work per event: log4j multiline grouping on the
// timestamp start pattern, the record's timestamp as the entry time,
// level and logger as structured metadata, batches of 1 MiB, protobuf +
// snappy pushes. The shipper also redacts secrets (Promtail here does
// not), which only favours Promtail.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/flink-agent/flink-agent/shipper/internal/benchpeer"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

// receiver counts entries and lines of pushes.
type receiver struct {
	entries, lines, pushes, bytes atomic.Int64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req push.PushRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var e, l int64
	for _, s := range req.Streams {
		for _, en := range s.Entries {
			e++
			l += int64(bytes.Count([]byte(en.Line), []byte{'\n'})) + 1
		}
	}
	rc.entries.Add(e)
	rc.lines.Add(l)
	rc.pushes.Add(1)
	rc.bytes.Add(int64(len(body)))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) reset() {
	rc.entries.Store(0)
	rc.lines.Store(0)
	rc.pushes.Store(0)
	rc.bytes.Store(0)
}

type result struct {
	name      string
	wall, cpu time.Duration
	rssKiB    int64
	entries   int64
}

func run(name string, rc *receiver, events int64, cmd *exec.Cmd) (result, error) {
	rc.reset()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Minute)
	for rc.entries.Load() < events {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%s: %d of %d entries after 10 minutes", name, rc.entries.Load(), events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := result{name: name, wall: time.Since(t0), cpu: benchpeer.CPU(cmd.Process.Pid), rssKiB: hwm(cmd.Process.Pid), entries: rc.entries.Load()}
	return r, nil
}

func hwm(pid int) int64 {
	_, kib := benchpeer.Mem(pid)
	return kib
}

func main() {
	if err := compare(); err != nil {
		log.Fatal(err)
	}
}

// compare runs both shippers on the same file and prints the table.
func compare() error {
	events := flag.Int64("events", 400_000, "events in the log file (5% with a stack trace)")
	shipperd := flag.String("shipperd", "", "shipperd binary")
	promtail := flag.String("promtail", "", "promtail binary")
	flag.Parse()
	log.SetFlags(0)

	dir, err := os.MkdirTemp("", "bench-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(logDir, "flink--taskexecutor-0-bench.log")
	g := &flinklog.Gen{MultilineEvery: 20, Start: time.Now().Add(-time.Hour), Step: time.Millisecond}
	lines, err := g.WriteFile(path, *events)
	if err != nil {
		return err
	}
	fi, _ := os.Stat(path)

	rc := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(ln, rc) }()
	url := "http://" + ln.Addr().String()
	glob := filepath.Join(logDir, "*.log")
	// Warm the page cache so that neither pays for the first read.
	if b, err := os.ReadFile(path); err == nil {
		_ = b
	}

	var results []result
	cmd := exec.CommandContext(context.Background(), *shipperd,
		"--logs.path="+glob, "--logs.positions-file="+filepath.Join(dir, "positions.json"),
		"--loki.url="+url, "--log.level=warn")
	r, err := run("flink-agent shipper", rc, *events, cmd)
	if err != nil {
		return err
	}
	results = append(results, r)

	cfg := filepath.Join(dir, "promtail.yaml")
	if err := os.WriteFile(cfg, []byte(benchpeer.PromtailConfig(dir, url, glob)), 0o644); err != nil {
		return err
	}
	cmd = exec.Command(*promtail, "-config.file="+cfg, "-log.level=warn")
	r, err = run("promtail", rc, *events, cmd)
	if err != nil {
		return err
	}
	results = append(results, r)

	fmt.Printf("file: %d lines, %d events (5%% with stack traces), %.1f MB; %d CPUs, %s\n\n",
		lines, *events, float64(fi.Size())/1e6, runtime.NumCPU(), runtime.Version())
	fmt.Printf("%-22s %10s %10s %16s %14s %12s\n", "", "wall", "CPU", "lines/CPU-s", "lines/s wall", "peak RSS")
	for _, r := range results {
		fmt.Printf("%-22s %9.2fs %9.2fs %16.0f %14.0f %9.1f MiB\n", r.name, r.wall.Seconds(), r.cpu.Seconds(),
			float64(lines)/r.cpu.Seconds(), float64(lines)/r.wall.Seconds(), float64(r.rssKiB)/1024)
	}
	a, p := results[0], results[1]
	fmt.Printf("\nflink-agent / promtail: %.1fx lines per CPU-second, %.2fx peak RSS\n",
		p.cpu.Seconds()/a.cpu.Seconds(), float64(a.rssKiB)/float64(p.rssKiB))
	return nil
}
