// Command demo runs the whole picture on this machine: a real Flink
// (JobManager and TaskManager JVMs) running a checkpointing job, a real Loki,
// a real DogStatsD receiver (statsd_exporter), two flink-agents as they run
// in Kubernetes — one beside the JobManager (REST scrape + its log, paging
// directly), one beside the TaskManager (its log only) — and Prometheus
// evaluating the repo's alert rules, sending to Alertmanager running the
// repo's configuration, which pages a local stand-in for PagerDuty that
// prints every page here. Ctrl-C stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flink-agent/flink-agent/pager/pdtest"
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
	promPort := flag.Int("prometheus.port", 0, "Prometheus port (0: a free one)")
	amPort := flag.Int("alertmanager.port", 0, "Alertmanager port (0: a free one)")
	speedUp := flag.Float64("speed-up", 10, "divide the alert rules' and Alertmanager's durations by this, so that a page comes within a minute (1: as written)")
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
		WorkDir:            filepath.Join(*dir, "flink"),
		LogDir:             filepath.Join(*dir, "flink", "log"),
		CheckpointInterval: 2 * time.Second,
		CheckpointTimeout:  10 * time.Second,
		// The test bed's default tolerance (1000): failing checkpoints
		// accumulate instead of restarting the job every few failures.
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, fl.Stop)
	jobID, err := fl.SubmitJob(ctx, testbed.JobOptions{Parallelism: 2})
	if err != nil {
		return err
	}

	// The stand-in for PagerDuty: the Events API v2 contract server; every
	// page it accepts is printed below.
	pd := pdtest.Start()
	cleanups = append(cleanups, pd.Close)
	directKey := filepath.Join(*dir, "pagerduty-routing-key")
	if err := os.WriteFile(directKey, []byte(demoDirectKey), 0o600); err != nil {
		return err
	}
	jmConfig := filepath.Join(*dir, "jobmanager-agent.yaml")
	if err := os.WriteFile(jmConfig, []byte("pagerduty:\n  url: "+pd.URL+"\n"), 0o644); err != nil {
		return err
	}

	start := func(name, component, restURL, logGlob string, port int, extra ...string) (*testbed.Proc, string, error) {
		addr := testbed.Addr(port)
		p, err := testbed.StartProc(name, *dir, []string{
			"FLINK_CLUSTER=demo", "POD_NAMESPACE=local", "POD_NAME=" + name, "FLINK_COMPONENT=" + component,
		}, bin, append([]string{
			"--flink.rest-url=" + restURL,
			"--flink.scrape-interval=5s",
			"--logs.path=" + logGlob,
			"--logs.positions-file=" + filepath.Join(*dir, name+"-positions.json"),
			"--loki.url=" + loki.URL(),
			"--dogstatsd.address=" + se.UDPAddr,
			"--web.listen-address=" + addr,
		}, extra...)...)
		return p, addr, err
	}
	jm, jmAddr, err := start("flink-agent-jobmanager", "jobmanager", fl.RESTURL(), fl.JMLog, *jmPort,
		"--config.file="+jmConfig, "--pagerduty.routing-key-file="+directKey)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = jm.Stop(25 * time.Second) })
	tm, tmAddr, err := start("flink-agent-taskmanager", "taskmanager", "", fl.TMLog, *jmPort+1)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = tm.Stop(25 * time.Second) })

	log.Info("starting Alertmanager and Prometheus", "speed_up", *speedUp)
	al, err := testbed.StartAlerting(ctx, filepath.Join(*dir, "alerting"), testbed.AlertingOptions{
		RulesFile: "alerts/flink-agent.rules.yml", AlertmanagerFile: "alerts/alertmanager.yml",
		SpeedUp: *speedUp, PagerDutyURL: pd.URL, RoutingKey: demoAlertmanagerKey,
		Targets: []testbed.ScrapeTarget{
			testbed.PodMonitorTarget(jmAddr, "local", "flink-agent-jobmanager", "jobmanager"),
			testbed.PodMonitorTarget(tmAddr, "local", "flink-agent-taskmanager", "taskmanager"),
		},
		ScrapeInterval:   2 * time.Second,
		PrometheusPort:   *promPort,
		AlertmanagerPort: *amPort,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, al.Stop)

	fmt.Printf(`
flink-agent demo is running (work dir %[1]s)

  Flink web UI / REST      %[2]s        job %[3]s
  JobManager agent         http://%[4]s/metrics   (logs: %[5]s)
  TaskManager agent        http://%[6]s/metrics   (logs: %[7]s)
  Loki                     %[8]s
     curl -sG %[8]s/loki/api/v1/query_range --data-urlencode 'query={cluster="demo"}' --data-urlencode limit=20
  statsd_exporter          %[9]s
  Prometheus               %[10]s   (alerts/flink-agent.rules.yml at %[11]gx speed)
     curl -s %[10]s/api/v1/alerts
  Alertmanager             %[12]s   (alerts/alertmanager.yml, paging the PagerDuty stand-in)
     curl -s %[12]s/api/v2/alerts
  PagerDuty stand-in       %[13]s   (pages are printed here)
  Flink logs               %[14]s

  Make checkpoints fail:   touch %[15]s/fail        (rm it to recover)
     FlinkCheckpointFailing fires in Prometheus and pages within a minute; rm resolves it.
  Make them expire:        echo 20000 > %[15]s/sleep-ms

Ctrl-C stops everything.

`, *dir, fl.RESTURL(), jobID, jmAddr, jm.LogPath, tmAddr, tm.LogPath, loki.URL(), se.MetricsURL,
		al.Prometheus.URL, *speedUp, al.Alertmanager.URL, pd.URL, fl.LogDir, fl.ControlDir)

	go watchAlerts(ctx, al.Prometheus)
	go printPages(ctx, pd)

	select {
	case <-ctx.Done():
	case <-jm.Done():
		return fmt.Errorf("the JobManager agent exited:\n%s", jm.Tail(2000))
	case <-tm.Done():
		return fmt.Errorf("the TaskManager agent exited:\n%s", tm.Tail(2000))
	case <-fl.JM.Done():
		return fmt.Errorf("the Flink JobManager exited")
	case <-al.Prometheus.Proc.Done():
		return fmt.Errorf("prometheus exited:\n%s", al.Prometheus.Proc.Tail(2000))
	case <-al.Alertmanager.Proc.Done():
		return fmt.Errorf("alertmanager exited:\n%s", al.Alertmanager.Proc.Tail(2000))
	}
	return nil
}

// Routing keys of the two paths (32 characters, as PagerDuty's are).
const (
	demoAlertmanagerKey = "demo0a1e27a4a9e7d0c1demo0a1e27a4"
	demoDirectKey       = "demod1ec7d1ec7d1ec7demod1ec7d1ec"
)

// watchAlerts prints every change of an alert's state in Prometheus.
func watchAlerts(ctx context.Context, p *testbed.Prometheus) {
	prev := map[string]string{}
	for ctx.Err() == nil {
		if res, err := p.API.Alerts(ctx); err == nil {
			cur := map[string]string{}
			for _, a := range res.Alerts {
				name := string(a.Labels["alertname"])
				if j := a.Labels["job_name"]; j != "" {
					name += " (job " + string(j) + ")"
				} else if pod := a.Labels["pod"]; pod != "" {
					name += " (pod " + string(pod) + ")"
				}
				cur[name] = string(a.State)
				if prev[name] != cur[name] {
					fmt.Printf("%s [Prometheus] %-8s %s\n", time.Now().Format(time.TimeOnly), cur[name], name)
				}
			}
			for name := range prev {
				if _, ok := cur[name]; !ok {
					fmt.Printf("%s [Prometheus] %-8s %s\n", time.Now().Format(time.TimeOnly), "resolved", name)
				}
			}
			prev = cur
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// printPages prints every event the PagerDuty stand-in accepts.
func printPages(ctx context.Context, pd *pdtest.Server) {
	seen := 0
	summaries := map[string]string{}
	for ctx.Err() == nil {
		evs := pd.Accepted()
		for _, e := range evs[seen:] {
			path := "direct from the agent"
			if e.RoutingKey == demoAlertmanagerKey {
				path = "via Alertmanager"
			}
			key := e.DedupKey
			if len(key) > 24 {
				key = key[:24] + "…"
			}
			sum, _ := e.Payload["summary"].(string)
			if sum != "" {
				summaries[e.DedupKey] = sum
			} else {
				sum = summaries[e.DedupKey]
			}
			sev, _ := e.Payload["severity"].(string)
			fmt.Printf("%s [PagerDuty]  %-8s %s  %s  dedup_key=%s\n           %s\n",
				e.At.Format(time.TimeOnly), strings.ToUpper(e.EventAction), sev, path, key, sum)
			for _, l := range e.Links {
				if e.EventAction == "trigger" {
					fmt.Printf("           %s: %s\n", l.Text, l.Href)
				}
			}
		}
		seen = len(evs)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}
