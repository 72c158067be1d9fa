package logscan_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flink-agent/flink-agent/collector"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
	cpsink "github.com/flink-agent/flink-agent/internal/sink"
	"github.com/flink-agent/flink-agent/logscan"
	"github.com/flink-agent/flink-agent/pager"
	"github.com/flink-agent/flink-agent/pager/pdtest"
	"github.com/flink-agent/flink-agent/shipper"
	"github.com/flink-agent/flink-agent/testbed"
)

// sum adds up a family's series whose labels include want.
func sum(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return sumFamilies(mfs, name, want)
}

func sumFamilies(mfs []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	var total float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			l := testbed.LabelsOf(m)
			for k, v := range want {
				if l[k] != v {
					continue next
				}
			}
			found = true
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Untyped != nil:
				total += m.GetUntyped().GetValue()
			}
		}
	}
	return total, found
}

// TestEndToEndS3Throttling runs the log analysis, the checkpoint watch, the
// entropy lint and the pager against a real Flink checkpointing through
// flink-s3-fs-presto to the test bed's S3 endpoint, with the real shipper
// tailing the real JobManager and TaskManager logs and a real
// statsd_exporter receiving DogStatsD. Throttling on: SlowDown exceptions in
// both logs, flink_s3_throttle_events_total and flink_s3_throttle rise,
// failed checkpoints are attributed, PagerDuty triggers arrive. Throttling
// off: checkpoints complete and resolves with the same dedup_keys arrive.
// Then a second cluster configured with entropy injection keeps the lint
// silent.
func TestEndToEndS3Throttling(t *testing.T) {
	testbed.NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	work := t.TempDir()
	if os.Getenv("TESTBED_KEEP_LOGS") != "" {
		var err error
		if work, err = os.MkdirTemp("", "logscan-e2e-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping Flink's and the agent's files in %s", work)
	}

	s3, err := testbed.StartS3("flink")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Stop()
	sx, err := testbed.StartStatsdExporter(ctx, work)
	if err != nil {
		t.Fatal(err)
	}
	defer sx.Stop()
	pd := pdtest.Start()
	defer pd.Close()

	f, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		WorkDir:            filepath.Join(work, "flink"),
		CheckpointDir:      "s3p://flink/checkpoints",
		S3:                 s3.Endpoint(),
		CheckpointInterval: time.Second,
		CheckpointTimeout:  10 * time.Second,
		Slots:              2,
		Extra: map[string]string{
			// Every state handle goes to S3 (nothing inlined), so the
			// TaskManager's uploads meet the throttling too.
			"state.storage.fs.memory-threshold":             "0",
			"execution.checkpointing.data-inline-threshold": "0",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	t.Logf("Flink %s: REST %s, logs in %s", f.Version, f.RESTURL(), f.LogDir)

	// The agent's parts, wired as a JobManager sidecar that also tails the
	// TaskManager's log (the test bed runs both on one host): the component
	// is left to the log file names.
	id := identity.Identity{Cluster: "testbed-e2e", Namespace: "e2e", Pod: "jm-0"}
	logs := &testbed.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	sd, err := dogstatsd.New(sx.UDPAddr, id.Tags(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()

	cfg := config.Default()
	cfg.Flink.RestURL = f.RESTURL()
	cfg.Flink.ScrapeInterval = config.Duration(time.Second)
	watch, err := cpsink.Watch(cpsink.Options{Registerer: reg, Statsd: sd, Identity: id, Logger: log, StuckRatio: cfg.Flink.StuckRatio})
	if err != nil {
		t.Fatal(err)
	}
	coll, err := collector.New(collector.Options{Flink: cfg.Flink, Registerer: reg, Statsd: sd, Logger: log, Watch: watch})
	if err != nil {
		t.Fatal(err)
	}
	lint, err := collector.NewConfigLint(coll, collector.ConfigLintOptions{Registerer: reg, Statsd: sd, Logger: log, Interval: cfg.Flink.ConfigLintInterval.D()})
	if err != nil {
		t.Fatal(err)
	}
	const window = 15 * time.Second
	scanner, err := logscan.New(logscan.Options{Registerer: reg, Statsd: sd, Logger: log, Identity: id,
		Checkpoints: watch, ThrottleWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logs.Paths = []string{filepath.Join(f.LogDir, "*.log")}
	cfg.Logs.PositionsFile = filepath.Join(work, "positions.json")
	sh, err := shipper.New(shipper.Options{Logs: cfg.Logs, Loki: cfg.Loki, Identity: id, Registerer: reg, Statsd: sd,
		Logger: log, Observers: []logevent.Observer{scanner}})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(work, "routing-key")
	if err := os.WriteFile(keyFile, []byte("e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg, err := pager.New(pager.Options{
		PagerDuty: config.PagerDuty{URL: pd.URL, RoutingKeyFile: keyFile, ConsecutiveFailures: 2,
			ThrottleSustained: config.Duration(5 * time.Second)},
		Identity:   id,
		Jobs:       pager.JobsFromWatch(watch.Statuses, scanner.LastFailure),
		Throttle:   scanner.Throttling,
		Interval:   time.Second,
		Registerer: reg,
		Logger:     log,
		Client:     pager.ClientOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{coll.Run, sh.Run, pg.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(runCtx) }()
	}
	defer func() { stop(); wg.Wait() }()
	defer func() {
		if os.Getenv("TESTBED_KEEP_LOGS") != "" {
			_ = os.WriteFile(filepath.Join(work, "agent.log"), []byte(logs.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("--- agent log ---\n%s", logs.String())
			for _, a := range pd.Accepted() {
				t.Logf("PagerDuty %s %s %s %v", a.At.Format("15:04:05.000"), a.EventAction, a.DedupKey, a.Payload["summary"])
			}
		}
	}()

	job, err := f.SubmitJob(ctx, testbed.JobOptions{Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.WaitCheckpoints(ctx, job, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpointing to S3: %+v", c)

	// Entropy lint: s3p:// without s3.entropy.key.
	if err := lint.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := sum(t, reg, "flink_config_s3_entropy_injection", nil); v != 0 {
		t.Errorf("flink_config_s3_entropy_injection = %v on s3p:// without entropy", v)
	}
	if n := strings.Count(logs.String(), "without entropy injection"); n != 1 {
		t.Errorf("%d entropy warnings, want 1", n)
	}

	// Throttling on.
	s3.SetThrottle(1)
	const jobName = "flink-agent testbed checkpointing job"
	testbed.Eventually(ctx, t, "throttling in both logs and in flink_s3_throttle_events_total", func() (bool, string) {
		jm, _ := sum(t, reg, "flink_s3_throttle_events_total", map[string]string{"component": "jobmanager"})
		tm, _ := sum(t, reg, "flink_s3_throttle_events_total", map[string]string{"component": "taskmanager"})
		return jm > 0 && tm > 0, "jobmanager " + ftoa(jm) + ", taskmanager " + ftoa(tm)
	})
	for _, p := range []string{f.JMLog, f.TMLog} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("AmazonS3Exception: Slow Down")) && !bytes.Contains(b, []byte("Error Code: SlowDown")) {
			t.Errorf("%s has no S3 throttling exception", p)
		}
	}
	testbed.Eventually(ctx, t, "flink_s3_throttle in statsd_exporter", func() (bool, string) {
		mfs, err := sx.Metrics(ctx)
		if err != nil {
			return false, err.Error()
		}
		fams := make([]*dto.MetricFamily, 0, len(mfs))
		for _, mf := range mfs {
			fams = append(fams, mf)
		}
		// The exceptions name no bucket; each log's start-up configuration
		// names the checkpoint directory's, s3p://flink/checkpoints.
		jm, _ := sumFamilies(fams, "flink_s3_throttle", map[string]string{"cluster": "testbed-e2e", "bucket": "flink", "component": "jobmanager"})
		tm, _ := sumFamilies(fams, "flink_s3_throttle", map[string]string{"cluster": "testbed-e2e", "bucket": "flink", "component": "taskmanager"})
		return jm > 0 && tm > 0, "flink_s3_throttle jobmanager " + ftoa(jm) + ", taskmanager " + ftoa(tm)
	})
	testbed.Eventually(ctx, t, "failed checkpoints attributed to S3 throttling", func() (bool, string) {
		v, _ := sum(t, reg, "flink_checkpoint_failures_s3_throttled_total", map[string]string{"job_name": jobName})
		failed, _ := sum(t, reg, "flink_checkpoints_total", map[string]string{"job_name": jobName, "status": "failed"})
		return v >= 1, "attributed " + ftoa(v) + " of " + ftoa(failed) + " failed"
	})
	var triggerKeys map[string]string // class → dedup_key
	testbed.Eventually(ctx, t, "PagerDuty triggers for checkpoint failures and sustained throttling", func() (bool, string) {
		triggerKeys = map[string]string{}
		for _, a := range pd.Accepted() {
			if a.EventAction == "trigger" {
				triggerKeys[a.Payload["class"].(string)] = a.DedupKey
			}
		}
		_, f1 := triggerKeys[pager.ClassCheckpointFailures]
		_, f2 := triggerKeys[pager.ClassS3Throttling]
		cons, _ := sum(t, reg, "flink_checkpoint_consecutive_failures", map[string]string{"job_name": jobName})
		counts, _ := f.Checkpoints(ctx, job)
		return f1 && f2, fmt.Sprintf("triggered %v; consecutive failures %v; Flink's counts %+v", keysOf(triggerKeys), cons, counts)
	})
	for _, a := range pd.Accepted() {
		if a.EventAction == "trigger" && a.Payload["class"] == pager.ClassCheckpointFailures {
			d := a.Payload["custom_details"].(map[string]any)
			if d["job_name"] != jobName || !strings.Contains(a.Payload["summary"].(string), jobName) || d["failure_message"] == "" {
				t.Errorf("checkpoint failure trigger: %+v", a.Payload)
			}
			t.Logf("trigger: %s", a.Payload["summary"])
		}
	}

	// Throttling off: checkpoints complete, conditions clear, and every
	// alert triggered ends with a resolve for its dedup_key sent after
	// throttling stopped.
	s3.SetThrottle(0)
	off := time.Now()
	before, _ := f.Checkpoints(ctx, job)
	if _, err := f.WaitCheckpoints(ctx, job, before.Completed+2); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(ctx, t, "PagerDuty resolves with the triggers' dedup_keys", func() (bool, string) {
		last := map[string]pdtest.Received{}
		for _, a := range pd.Accepted() {
			last[a.DedupKey] = a
		}
		var open []string
		for k, a := range last {
			if a.EventAction != "resolve" || a.At.Before(off) {
				open = append(open, k)
			}
		}
		for class, k := range triggerKeys {
			if _, ok := last[k]; !ok {
				open = append(open, class+" (never sent)")
			}
		}
		return len(open) == 0, "open: " + strings.Join(open, ", ")
	})
	if inv := pd.Invalid(); len(inv) > 0 || pd.OverLimit() > 0 {
		t.Errorf("PagerDuty contract violations: %v, %d over the rate limit", inv, pd.OverLimit())
	}
	t.Logf("PagerDuty received %d events in %d requests", len(pd.Accepted()), pd.Requests())
	stop()
	wg.Wait()
	f.Stop()

	// A cluster configured with entropy injection: the lint is silent.
	f2, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		WorkDir:       filepath.Join(work, "flink-entropy"),
		CheckpointDir: "s3p://flink/_entropy_/checkpoints",
		S3:            s3.Endpoint(),
		Slots:         2,
		Extra:         map[string]string{"s3.entropy.key": "_entropy_", "s3.entropy.length": "4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Stop()
	job2, err := f2.SubmitJob(ctx, testbed.JobOptions{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f2.WaitCheckpoints(ctx, job2, 1); err != nil {
		t.Fatal(err)
	}
	logs2 := &testbed.SyncBuffer{}
	log2 := slog.New(slog.NewTextHandler(logs2, nil))
	reg2 := prometheus.NewRegistry()
	cfg.Flink.RestURL = f2.RESTURL()
	watch2, err := cpsink.Watch(cpsink.Options{Registerer: reg2, Identity: id, Logger: log2, StuckRatio: cfg.Flink.StuckRatio})
	if err != nil {
		t.Fatal(err)
	}
	coll2, err := collector.New(collector.Options{Flink: cfg.Flink, Registerer: reg2, Logger: log2, Watch: watch2})
	if err != nil {
		t.Fatal(err)
	}
	lint2, err := collector.NewConfigLint(coll2, collector.ConfigLintOptions{Registerer: reg2, Logger: log2, Interval: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := lint2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if v, ok := sum(t, reg2, "flink_config_s3_entropy_injection", nil); !ok || v != 1 {
		t.Errorf("flink_config_s3_entropy_injection = %v (exported %v) with entropy injection", v, ok)
	}
	if strings.Contains(logs2.String(), "level=WARN") {
		t.Errorf("lint warned with entropy injection configured:\n%s", logs2.String())
	}
	keys, err := s3.Keys("flink", "")
	if err != nil {
		t.Fatal(err)
	}
	var metadata int
	for _, k := range keys {
		if strings.Contains(k, "_entropy_") {
			t.Errorf("object %q still has the entropy key in its name", k)
		}
		// Flink removes the key from metadata paths (and replaces it with
		// random characters in data file paths).
		if strings.HasPrefix(k, "checkpoints/"+job2+"/") && strings.HasSuffix(k, "/_metadata") {
			metadata++
		}
	}
	if metadata == 0 {
		t.Errorf("no checkpoints/%s/…/_metadata among %v", job2, keys)
	}
	t.Logf("entropy cluster: %d objects, %d _metadata under checkpoints/%s", len(keys), metadata, job2)
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
