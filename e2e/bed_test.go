package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/pager/pdtest"
	"github.com/flink-agent/flink-agent/testbed"
)

// The identity the agents run with (the Downward API and the chart's
// variables in Kubernetes).
const (
	cluster   = "e2e"
	namespace = "flink"
	jmPod     = "e2e-jobmanager-0"
	tmPod     = "e2e-taskmanager-0"
	// speedUp divides every duration of the repo's alert rules and
	// Alertmanager routes: `for: 5m` becomes 10s, group_wait 30s becomes 1s.
	speedUp = 30
	// Routing keys of the two paths: two PagerDuty integrations, as a team
	// with both would have.
	alertmanagerKey = "0a1e27a4a9e7d0c1e2e0a1e27a4a9e7d"
	directKey       = "d1ec7d1ec7d1ec7d1ec7d1ec7d1ec7d1"
)

// The test bed's jobs, one per condition so that conditions run at once
// without disturbing each other, and one that stays healthy.
type job struct {
	Name    string
	ID      string
	Control string // its fault switch directory
	Timeout time.Duration
}

// bed is everything the end-to-end test starts.
type bed struct {
	dir    string
	flink  *testbed.Flink
	loki   *testbed.Loki
	statsd *testbed.StatsdExporter
	s3     *testbed.S3
	pd     *pdtest.Server
	prom   *testbed.Prometheus
	am     *testbed.Alertmanager
	jm, tm *agentProc
	jobs   map[string]*job
	rules  []byte // the sped-up rules Prometheus evaluates
}

// agentProc is one flink-agent process, restartable with the same flags.
type agentProc struct {
	name string
	bin  string
	dir  string
	addr string
	env  []string
	args []string

	mu   sync.Mutex
	proc *testbed.Proc
}

func (a *agentProc) start(ctx context.Context) error {
	p, err := testbed.StartProc(a.name, a.dir, a.env, a.bin, a.args...)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.proc = p
	a.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return testbed.WaitFor(wctx, p, 100*time.Millisecond, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
}

// stop sends SIGTERM and waits, as Kubernetes stops a container.
func (a *agentProc) stop() {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p != nil {
		_ = p.Stop(25 * time.Second)
	}
}

func (a *agentProc) tail() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return ""
	}
	return a.proc.Tail(3000)
}

// buildAgent builds cmd/flink-agent as users get it.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "flink-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/flink-agent")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flink-agent: %v\n%s", err, out)
	}
	return bin
}

// startBed starts the whole chain and waits until every job has completed
// checkpoints that Prometheus has scraped.
func startBed(t *testing.T, ctx context.Context) *bed {
	t.Helper()
	for _, tool := range []string{"prometheus", "alertmanager", "loki", "statsd_exporter"} {
		testbed.MustTool(t, tool)
	}
	b := &bed{dir: t.TempDir(), jobs: map[string]*job{}}
	bin := buildAgent(t, b.dir)

	var err error
	if b.s3, err = testbed.StartS3("flink"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.s3.Stop)
	b.pd = pdtest.Start()
	t.Cleanup(b.pd.Close)

	// Loki, statsd_exporter and Flink start at once.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		b.loki, errs[0] = testbed.StartLoki(ctx, filepath.Join(b.dir, "loki"))
	}()
	go func() {
		defer wg.Done()
		b.statsd, errs[1] = testbed.StartStatsdExporter(ctx, filepath.Join(b.dir, "statsd"))
	}()
	go func() {
		defer wg.Done()
		b.flink, errs[2] = testbed.StartFlink(ctx, testbed.FlinkOptions{
			WorkDir:            filepath.Join(b.dir, "flink"),
			CheckpointInterval: time.Second,
			CheckpointTimeout:  10 * time.Second,
			S3:                 b.s3.Endpoint(),
			Slots:              8,
		})
	}()
	wg.Wait()
	for _, c := range []func(){
		func() {
			if b.loki != nil {
				b.loki.Stop()
			}
		},
		func() {
			if b.statsd != nil {
				b.statsd.Stop()
			}
		},
		func() {
			if b.flink != nil {
				b.flink.Stop()
			}
		},
	} {
		t.Cleanup(c)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b.submitJobs(t, ctx)

	// The agents: the JobManager's scrapes REST, tails the JobManager log
	// and pages directly; the TaskManager's tails its log only.
	keyFile := filepath.Join(b.dir, "direct-routing-key")
	if err := os.WriteFile(keyFile, []byte(directKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// File-only keys: the Events API URL, and the throttling windows
	// shortened like the rules' (5m → 10s).
	cfg := filepath.Join(b.dir, "jobmanager-agent.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`logs:
  throttle_window: 10s
pagerduty:
  url: %s
  throttle_sustained: 10s
`, b.pd.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	b.jm = b.newAgent(t, bin, jmPod, "jobmanager", b.flink.JMLog,
		"--config.file="+cfg,
		"--flink.rest-url="+b.flink.RESTURL(),
		"--flink.scrape-interval=1s",
		"--pagerduty.routing-key-file="+keyFile)
	b.tm = b.newAgent(t, bin, tmPod, "taskmanager", b.flink.TMLog, "--flink.rest-url=")
	for _, a := range []*agentProc{b.jm, b.tm} {
		if err := a.start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.stop)
	}

	// Alertmanager with the repo's configuration, paging the contract
	// server; Prometheus with the repo's rules, scraping both agents as
	// the chart's PodMonitor does.
	al, err := testbed.StartAlerting(ctx, filepath.Join(b.dir, "alerting"), testbed.AlertingOptions{
		RulesFile: "../alerts/flink-agent.rules.yml", AlertmanagerFile: "../alerts/alertmanager.yml",
		SpeedUp: speedUp, PagerDutyURL: b.pd.URL, RoutingKey: alertmanagerKey,
		Targets: []testbed.ScrapeTarget{
			testbed.PodMonitorTarget(b.jm.addr, namespace, jmPod, "jobmanager"),
			testbed.PodMonitorTarget(b.tm.addr, namespace, tmPod, "taskmanager"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(al.Stop)
	b.prom, b.am, b.rules = al.Prometheus, al.Alertmanager, al.Rules
	return b
}

func (b *bed) newAgent(t *testing.T, bin, pod, component, logFile string, extra ...string) *agentProc {
	t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{name: pod, bin: bin, dir: b.dir, addr: testbed.Addr(port),
		env: []string{"FLINK_CLUSTER=" + cluster, "POD_NAMESPACE=" + namespace, "POD_NAME=" + pod, "FLINK_COMPONENT=" + component}}
	a.args = append([]string{
		"--logs.path=" + logFile,
		"--logs.positions-file=" + filepath.Join(b.dir, pod+"-positions.json"),
		"--loki.url=" + b.loki.URL(),
		"--dogstatsd.address=" + b.statsd.UDPAddr,
		"--web.listen-address=" + a.addr,
	}, extra...)
	return a
}

// submitJobs starts one job per condition, each with its own name, fault
// switch directory and checkpoint settings (the run request's
// flinkConfiguration), and waits until they run.
func (b *bed) submitJobs(t *testing.T, ctx context.Context) {
	t.Helper()
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }
	specs := []struct {
		role    string
		timeout time.Duration
		config  map[string]string
	}{
		{"healthy", 10 * time.Second, nil},
		{"failing", 10 * time.Second, nil},
		// Checkpoints only when the test triggers one, so that the stuck
		// one is the only thing wrong with this job (no "no recent
		// checkpoint" for an hour). 90 s leaves 18 s between stuck (80%)
		// and expired: the direct path evaluates every 10 s.
		{"stuck", 90 * time.Second, map[string]string{"execution.checkpointing.interval": "1 h"}},
		// Slow checkpoints far from the stuck ratio: 30 s of 60.
		{"slow", 60 * time.Second, nil},
		// Its state goes to the loopback S3 endpoint, every handle a file
		// (nothing inlined), so throttling reaches the TaskManager too.
		{"throttled", 10 * time.Second, map[string]string{
			"state.checkpoints.dir":                         "s3p://flink/checkpoints",
			"execution.checkpointing.dir":                   "s3p://flink/checkpoints",
			"state.storage.fs.memory-threshold":             "0",
			"execution.checkpointing.data-inline-threshold": "0",
		}},
		// Its source stops reading on the stall switch; meanwhile every
		// tenth record is a minute late and its window drops it.
		{"stalled", 10 * time.Second, nil},
	}
	for _, s := range specs {
		cfg := map[string]string{"execution.checkpointing.timeout": ms(s.timeout)}
		for k, v := range s.config {
			cfg[k] = v
		}
		j := &job{Name: "e2e-" + s.role, Control: filepath.Join(b.dir, "control", s.role), Timeout: s.timeout}
		// The stalled job reads nothing for most of the run, and its late
		// records stop with it: the slow job drops late records too, so
		// the late-records metrics change while the agents watch.
		if s.role == "stalled" || s.role == "slow" {
			if err := os.MkdirAll(j.Control, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := testbed.SetFaultIn(j.Control, testbed.SourceLate, "10"); err != nil {
				t.Fatal(err)
			}
		}
		id, err := b.flink.SubmitJob(ctx, testbed.JobOptions{
			Name: j.Name, ControlDir: j.Control, Parallelism: 1, RecordsPerSecond: 50, Config: cfg,
		})
		if err != nil {
			t.Fatalf("submit %s: %v", j.Name, err)
		}
		j.ID = id
		b.jobs[s.role] = j
	}
	for _, j := range b.jobs {
		if err := b.flink.WaitJobRunning(ctx, j.ID); err != nil {
			t.Fatalf("%s: %v", j.Name, err)
		}
	}
}

// agentLogs is the tail of both agents' output, for failure messages.
func (b *bed) agentLogs() string {
	var s strings.Builder
	for _, a := range []*agentProc{b.jm, b.tm} {
		if a != nil {
			fmt.Fprintf(&s, "--- %s (tail) ---\n%s\n", a.name, a.tail())
		}
	}
	return s.String()
}
