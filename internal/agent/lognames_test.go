package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/testbed"
)

// The real JobManager log excerpt (Flink 2.2.1, the test bed's job):
// checkpoints 6, 7 and 8 expire, 9 completes, and no line names the job.
const (
	noNameLog   = "../../logscan/testdata/corpus/testbed/flink-2.2.1-expired-noname-jm.log"
	noNameJobID = "64cea583ef6457b62765808001f4466a"
	noNameJob   = "flink-agent testbed checkpointing job"
	// The REST answers of the same Flink version, captured from the test bed.
	capture221 = "../../collector/testdata/flink-2.2.1"
)

// With REST pointed at a closed port, the failures of a JobManager log that
// never names the job are published under the job id within the grace
// period; when REST comes back, the job's name takes over the same counts:
// each checkpoint counted once, no series left under the id.
func TestLogFailuresWithoutREST(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	restPort, err := testbed.FreePort() // nothing listens there yet
	if err != nil {
		t.Fatal(err)
	}
	webPort, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(logDir, "flink--standalonesession-0-jm.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.Flink.RestURL = "http://" + testbed.Addr(restPort)
	cfg.Flink.ScrapeInterval = config.Duration(3 * time.Second)
	cfg.Flink.ScrapeTimeout = config.Duration(2 * time.Second)
	cfg.Logs.Paths = []string{filepath.Join(logDir, "*.log")}
	cfg.Logs.PositionsFile = filepath.Join(dir, "positions.json")
	cfg.DogStatsD.Address = ""
	cfg.Web.ListenAddress = testbed.Addr(webPort)
	cfg.Shutdown.Timeout = config.Duration(5 * time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	grace := cfg.Flink.JobNameGrace.D() // two scrape intervals: 6 s
	logs := &testbed.SyncBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, cfg, Deps{Identity: identity.Identity{Cluster: "c", Component: "jobmanager"}, Ready: ready,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	metricsURL := "http://" + <-ready + "/metrics"

	excerpt, err := os.ReadFile(noNameLog)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	if _, err := f.Write(excerpt); err != nil {
		t.Fatal(err)
	}
	f.Close()

	expired := func(m map[string]float64, job string) float64 {
		return m[series("flink_checkpoint_failures_total", "job_name", job, "reason", "expired")]
	}
	var m map[string]float64
	testbed.Eventually(ctx, t, "the log's failures under the job id", func() (bool, string) {
		m = scrapeAgent(t, metricsURL)
		return expired(m, noNameJobID) == 3, fmt.Sprintf("expired under the id: %v", expired(m, noNameJobID))
	})
	took := time.Since(written)
	t.Logf("REST unreachable: 3 expired checkpoints under job_name=%s %s after the lines were written (grace %s)", noNameJobID, took.Round(time.Millisecond), grace)
	if took > grace {
		t.Errorf("published %s after the lines were written, beyond the grace period of %s", took, grace)
	}
	for k, v := range map[string]float64{
		series("flink_checkpoints_total", "job_name", noNameJobID, "kind", "checkpoint", "status", "failed"):    3,
		series("flink_checkpoints_total", "job_name", noNameJobID, "kind", "checkpoint", "status", "completed"): 1,
		series("flink_checkpoint_consecutive_failures", "job_name", noNameJobID):                                0,
		series("flink_up"): 0,
	} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}

	// REST comes back on the same port with the job's answers.
	jm, err := newCapturedJM(restPort)
	if err != nil {
		t.Fatal(err)
	}
	defer jm.Close()
	testbed.Eventually(ctx, t, "the job's name replacing its id", func() (bool, string) {
		m = scrapeAgent(t, metricsURL)
		return expired(m, noNameJob) == 3 && !hasJob(m, noNameJobID),
			fmt.Sprintf("expired: %v under the name, %v under the id", expired(m, noNameJob), expired(m, noNameJobID))
	})
	// Two more scrapes: REST's history (checkpoints 5 to 9) and counts are
	// baseline, and what the log counted is not counted again.
	time.Sleep(2 * cfg.Flink.ScrapeInterval.D())
	m = scrapeAgent(t, metricsURL)
	for k, v := range map[string]float64{
		series("flink_checkpoint_failures_total", "job_name", noNameJob, "reason", "expired"):                 3,
		series("flink_checkpoints_total", "job_name", noNameJob, "kind", "checkpoint", "status", "failed"):    3,
		series("flink_checkpoints_total", "job_name", noNameJob, "kind", "checkpoint", "status", "completed"): 1,
		series("flink_up"): 1,
	} {
		if m[k] != v {
			t.Errorf("REST back: %s = %v, want %v", k, m[k], v)
		}
	}
	if hasJob(m, noNameJobID) {
		t.Errorf("series under job_name=%s remain after the name came", noNameJobID)
	}
	if !strings.Contains(logs.String(), "publishing a job's log events under its id") {
		t.Errorf("the agent did not say it published under the id")
	}
}

// series renders a series key as scrapeAgent returns them.
func series(name string, labels ...string) string {
	ls := model.LabelSet{model.MetricNameLabel: model.LabelValue(name), "cluster": "c"}
	for i := 0; i+1 < len(labels); i += 2 {
		ls[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	return ls.String()
}

func hasJob(m map[string]float64, job string) bool {
	for k := range m {
		if strings.Contains(k, `job_name="`+job+`"`) {
			return true
		}
	}
	return false
}

// scrapeAgent reads the agent's /metrics: counters and gauges by series.
func scrapeAgent(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			ls := model.LabelSet{model.MetricNameLabel: model.LabelValue(name)}
			for _, l := range m.GetLabel() {
				ls[model.LabelName(l.GetName())] = model.LabelValue(l.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[ls.String()] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[ls.String()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// capturedJM answers as the captured Flink 2.2.1 JobManager did, for the
// excerpt's job: the capture's job id replaced, and a checkpoint history
// that matches the excerpt (1–4 and 9 completed, 5–8 expired).
type capturedJM struct {
	srv    *http.Server
	routes map[string][]byte
	wg     sync.WaitGroup
}

func newCapturedJM(port int) (*capturedJM, error) {
	raw, err := os.ReadFile(filepath.Join(capture221, "MANIFEST.json"))
	if err != nil {
		return nil, err
	}
	var man struct {
		JobID string `json:"job_id"`
		Files map[string]struct {
			Path    string `json:"path"`
			Status  int    `json:"status"`
			Variant string `json:"variant"`
		} `json:"files"`
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, err
	}
	jm := &capturedJM{routes: map[string][]byte{}}
	for name, e := range man.Files {
		if e.Status != 200 || e.Variant != "" || strings.HasPrefix(name, "nocheckpointing_") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(capture221, name))
		if err != nil {
			return nil, err
		}
		p, _, _ := strings.Cut(strings.ReplaceAll(e.Path, man.JobID, noNameJobID), "?")
		if strings.Contains(name, "_list") {
			p += "#list"
		}
		jm.routes[p] = bytes.ReplaceAll(b, []byte(man.JobID), []byte(noNameJobID))
	}
	cps, err := excerptCheckpoints(jm.routes["/jobs/"+noNameJobID+"/checkpoints"])
	if err != nil {
		return nil, err
	}
	jm.routes["/jobs/"+noNameJobID+"/checkpoints"] = cps
	ln, err := net.Listen("tcp", testbed.Addr(port))
	if err != nil {
		return nil, err
	}
	jm.srv = &http.Server{Handler: jm, ReadHeaderTimeout: 5 * time.Second}
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		if err := jm.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return jm, nil
}

func (jm *capturedJM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := jm.routes[r.URL.Path]
	if list, has := jm.routes[r.URL.Path+"#list"]; has && r.URL.RawQuery == "" {
		b, ok = list, true
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":["Not found: `+r.URL.Path+`"]}`)
		return
	}
	_, _ = w.Write(b)
}

func (jm *capturedJM) Close() {
	_ = jm.srv.Close()
	jm.wg.Wait()
}

// excerptCheckpoints rewrites a captured /jobs/:id/checkpoints answer to the
// excerpt's checkpoints: its entries serve as the templates.
func excerptCheckpoints(captured []byte) ([]byte, error) {
	var body map[string]any
	if err := json.Unmarshal(captured, &body); err != nil {
		return nil, err
	}
	var done, failed map[string]any
	for _, h := range body["history"].([]any) {
		e := h.(map[string]any)
		switch e["status"] {
		case "COMPLETED":
			done = e
		case "FAILED":
			failed = e
		}
	}
	if done == nil || failed == nil {
		return nil, errors.New("the capture has no completed and failed checkpoints to copy")
	}
	entry := func(tmpl map[string]any, id int) map[string]any {
		e := map[string]any{}
		for k, v := range tmpl {
			e[k] = v
		}
		e["id"] = id
		if e["status"] == "FAILED" {
			e["failure_message"] = "Checkpoint expired before completing."
		}
		return e
	}
	body["history"] = []any{entry(done, 9), entry(failed, 8), entry(failed, 7), entry(failed, 6), entry(failed, 5)}
	body["counts"] = map[string]any{"restored": 0, "total": 9, "in_progress": 0, "completed": 5, "failed": 4}
	latest := body["latest"].(map[string]any)
	latest["completed"] = entry(done, 9)
	latest["failed"] = entry(failed, 8)
	return json.Marshal(body)
}
