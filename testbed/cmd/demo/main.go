// Command demo runs the whole picture on this machine: a real Flink
// (JobManager and TaskManager JVMs) running a checkpointing job, a real Loki,
// a real DogStatsD receiver (statsd_exporter), and two flink-agents as they
// run in Kubernetes — one beside the JobManager (REST scrape + its log), one
// beside the TaskManager (its log only). Ctrl-C stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flink-agent/flink-agent/testbed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	agentBin := flag.String("agent", "bin/flink-agent", "flink-agent binary (make build)")
	dir := flag.String("dir", "", "working directory (default: a new temporary one, kept for inspection)")
	jmPort := flag.Int("web.port", 9250, "port of the JobManager sidecar's /metrics (the TaskManager sidecar's is the next one)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *dir == "" {
		d, err := os.MkdirTemp("", "flink-agent-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	bin, err := filepath.Abs(*agentBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (run `make build`)", bin, err)
	}

	var cleanups []func()
	defer func() {
		log.Info("stopping everything the demo started")
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	log.Info("starting Loki")
	loki, err := testbed.StartLoki(ctx, filepath.Join(*dir, "loki"))
	if err != nil {
		return err
	}
	cleanups = append(cleanups, loki.Stop)

	log.Info("starting statsd_exporter (DogStatsD receiver)")
	se, err := testbed.StartStatsdExporter(ctx, filepath.Join(*dir, "statsd"))
	if err != nil {
		return err
	}
	cleanups = append(cleanups, se.Stop)

	log.Info("starting Flink (JobManager + TaskManager JVMs)", "version", testbed.FlinkVersion())
	fl, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		WorkDir:                    filepath.Join(*dir, "flink"),
		LogDir:                     filepath.Join(*dir, "flink", "log"),
		CheckpointInterval:         2 * time.Second,
		CheckpointTimeout:          10 * time.Second,
		TolerableFailedCheckpoints: 3,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, fl.Stop)
	jobID, err := fl.SubmitJob(ctx, testbed.JobOptions{Parallelism: 2})
	if err != nil {
		return err
	}

	start := func(name, component, restURL, logGlob string, port int) (*testbed.Proc, string, error) {
		addr := testbed.Addr(port)
		p, err := testbed.StartProc(name, *dir, []string{
			"FLINK_CLUSTER=demo", "POD_NAMESPACE=local", "POD_NAME=" + name, "FLINK_COMPONENT=" + component,
		}, bin,
			"--flink.rest-url="+restURL,
			"--flink.scrape-interval=5s",
			"--logs.path="+logGlob,
			"--logs.positions-file="+filepath.Join(*dir, name+"-positions.json"),
			"--loki.url="+loki.URL(),
			"--dogstatsd.address="+se.UDPAddr,
			"--web.listen-address="+addr,
		)
		return p, addr, err
	}
	jm, jmAddr, err := start("flink-agent-jobmanager", "jobmanager", fl.RESTURL(), fl.JMLog, *jmPort)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = jm.Stop(25 * time.Second) })
	tm, tmAddr, err := start("flink-agent-taskmanager", "taskmanager", "", fl.TMLog, *jmPort+1)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = tm.Stop(25 * time.Second) })

	fmt.Printf(`
flink-agent demo is running (work dir %s)

  Flink web UI / REST      %s        job %s
  JobManager agent         http://%s/metrics   (logs: %s)
  TaskManager agent        http://%s/metrics   (logs: %s)
  Loki                     %s
     curl -sG %s/loki/api/v1/query_range --data-urlencode 'query={cluster="demo"}' --data-urlencode limit=20
  statsd_exporter          %s
  Flink logs               %s

  Make checkpoints fail:   touch %s/fail        (rm it to recover)
  Make them expire:        echo 20000 > %s/sleep-ms

Ctrl-C stops everything.
`, *dir, fl.RESTURL(), jobID, jmAddr, jm.LogPath, tmAddr, tm.LogPath, loki.URL(), loki.URL(),
		se.MetricsURL, fl.LogDir, fl.ControlDir, fl.ControlDir)

	select {
	case <-ctx.Done():
	case <-jm.Done():
		return fmt.Errorf("the JobManager agent exited:\n%s", jm.Tail(2000))
	case <-tm.Done():
		return fmt.Errorf("the TaskManager agent exited:\n%s", tm.Tail(2000))
	case <-fl.JM.Done():
		return fmt.Errorf("the Flink JobManager exited")
	}
	return nil
}
