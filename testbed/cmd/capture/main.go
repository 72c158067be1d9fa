// Command capture records real Flink REST answers for the collector's golden
// tests. It starts a real cluster from the test bed, runs the checkpointing
// job, makes checkpoints complete, get declined, expire and fail a task,
// drops late records, stalls the source and finally loses the TaskManager
// (SIGKILL), and saves what Flink's REST API answered into
// collector/testdata/flink-<version>/. A second cluster without
// checkpointing records the "disabled" answers.
//
//	go run ./testbed/cmd/capture                       # FLINK_VERSION or the test bed's default
//	FLINK_VERSION=2.2.1 go run ./testbed/cmd/capture
//	make capture-fixtures                              # every version of testbed/flink-versions.txt
//
// Files hold the bodies as returned, indented with json.Indent (whitespace
// only: key order, numbers and "NaN" strings are untouched). MANIFEST.json
// maps each file to its request path and HTTP status; a file with a
// "variant" (before_first, stalled, tm_lost) answers the same path as
// another one at a different moment, so tests serve it only on purpose.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flink-agent/flink-agent/testbed"
)

func main() {
	version := flag.String("version", testbed.FlinkVersion(), "Flink version (installed by scripts/tools.sh)")
	out := flag.String("out", "", "output dir (default collector/testdata/flink-<version>)")
	keep := flag.Bool("keep-logs", false, "keep the clusters' work dirs (logs) and print where")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join("collector", "testdata", "flink-"+*version)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancelT := context.WithTimeout(ctx, 10*time.Minute)
	err := run(ctx, log, *version, *out, *keep)
	cancelT()
	cancel()
	if err != nil {
		log.Error("capture failed", "err", err)
		os.Exit(1)
	}
}

type entry struct {
	Path    string `json:"path"`
	Status  int    `json:"status"`
	Variant string `json:"variant,omitempty"`
	Note    string `json:"note,omitempty"`
}

type capturer struct {
	f        *testbed.Flink
	out      string
	manifest map[string]entry
	log      *slog.Logger
}

// save GETs path and writes it to name; non-2xx answers are saved too (their
// status is in the manifest) so that error shapes are golden as well.
func (c *capturer) save(ctx context.Context, name, path, note string) ([]byte, error) {
	return c.saveVariant(ctx, name, path, "", note)
}

// saveVariant is save for an answer of a path that another file answers at
// another moment (variant names the moment).
func (c *capturer) saveVariant(ctx context.Context, name, path, variant, note string) ([]byte, error) {
	body, err := c.f.Get(ctx, path)
	status := 200
	var he *testbed.HTTPError
	if errors.As(err, &he) {
		status, err = he.Status, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return body, c.write(name, path, variant, note, status, body)
}

// write saves a body that was already read (a polled answer that showed
// what the capture waited for).
func (c *capturer) write(name, path, variant, note string, status int, body []byte) error {
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") != nil {
		return fmt.Errorf("GET %s: not JSON: %q", path, body)
	}
	pretty.WriteByte('\n')
	if err := os.WriteFile(filepath.Join(c.out, name), pretty.Bytes(), 0o644); err != nil {
		return err
	}
	c.manifest[name] = entry{Path: path, Status: status, Variant: variant, Note: note}
	c.log.Info("saved", "file", name, "path", path, "status", status)
	return nil
}

type checkpoints struct {
	Counts testbed.CheckpointCounts `json:"counts"`
	Latest struct {
		Completed *struct {
			ID int64 `json:"id"`
		} `json:"completed"`
		Failed *struct {
			ID             int64  `json:"id"`
			FailureMessage string `json:"failure_message"`
		} `json:"failed"`
	} `json:"latest"`
}

func run(ctx context.Context, log *slog.Logger, version, out string, keep bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "flink-capture-")
	if err != nil {
		return err
	}
	if keep {
		log.Info("keeping work dirs", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}
	manifest := map[string]entry{}
	jobID, err := captureCheckpointing(ctx, log, version, filepath.Join(work, "checkpointing"), out, manifest)
	if err != nil {
		return err
	}
	if err := captureDisabled(ctx, log, version, filepath.Join(work, "disabled"), out, manifest); err != nil {
		return err
	}
	names := make([]string, 0, len(manifest))
	for n := range manifest {
		names = append(names, n)
	}
	sort.Strings(names)
	m := struct {
		FlinkVersion string           `json:"flink_version"`
		JobID        string           `json:"job_id"`
		Files        map[string]entry `json:"files"`
		Note         string           `json:"note"`
	}{version, jobID, manifest, "recorded by `go run ./testbed/cmd/capture` against a real Flink (testbed.StartFlink); jobs_id_* paths use the job id above"}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "MANIFEST.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	log.Info("done", "dir", out, "files", len(names))
	return nil
}

func captureCheckpointing(ctx context.Context, log *slog.Logger, version, work, out string, manifest map[string]entry) (string, error) {
	log.Info("starting Flink", "version", version)
	f, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		Version:            version,
		WorkDir:            work,
		CheckpointInterval: time.Second,
		CheckpointTimeout:  3 * time.Second,
		Slots:              2,
	})
	if err != nil {
		return "", err
	}
	defer f.Stop()
	c := &capturer{f: f, out: out, manifest: manifest, log: log}
	job, err := f.SubmitJob(ctx, testbed.JobOptions{Parallelism: 2})
	if err != nil {
		return "", err
	}
	jp := "/jobs/" + job
	// Right after submission, before any checkpoint completed: the summary
	// has no samples yet.
	if err := testbed.WaitFor(ctx, f.JM, 50*time.Millisecond, func(ctx context.Context) error {
		_, err := f.Get(ctx, jp+"/checkpoints")
		return err
	}); err != nil {
		return "", err
	}
	if _, err := c.saveVariant(ctx, "jobs_id_checkpoints_before_first.json", jp+"/checkpoints", "before_first", "right after submission, before the first checkpoint completed"); err != nil {
		return "", err
	}
	cs, err := f.WaitCheckpoints(ctx, job, 3)
	if err != nil {
		return "", err
	}

	latest := func() (checkpoints, error) {
		var cp checkpoints
		err := f.GetJSON(ctx, jp+"/checkpoints", &cp)
		return cp, err
	}
	// inject turns a fault on until a checkpoint fails, saves that failed
	// checkpoint's details, and waits for completions to resume.
	inject := func(kind, value, name string) error {
		before := cs
		if err := f.SetFault(kind, value); err != nil {
			return err
		}
		if cs, err = f.WaitCheckpointsFunc(ctx, job, func(c testbed.CheckpointCounts) bool { return c.Failed > before.Failed }); err != nil {
			return err
		}
		cp, err := latest()
		if err != nil {
			return err
		}
		if cp.Latest.Failed == nil {
			return fmt.Errorf("fault %s: no latest.failed", kind)
		}
		if _, err := c.save(ctx, name, fmt.Sprintf("%s/checkpoints/details/%d", jp, cp.Latest.Failed.ID), cp.Latest.Failed.FailureMessage); err != nil {
			return err
		}
		if err := f.ClearFaults(); err != nil {
			return err
		}
		cs, err = f.WaitCheckpoints(ctx, job, cs.Completed+2)
		return err
	}
	if err := inject(testbed.FaultFail, "", "jobs_id_checkpoints_details_failed_declined.json"); err != nil {
		return "", err
	}
	if err := inject(testbed.FaultSleepMS, "4000", "jobs_id_checkpoints_details_failed_expired.json"); err != nil {
		return "", err
	}
	// A snapshot throwing in its synchronous phase fails the task: the job
	// restarts and the exception history fills.
	restored := cs.Restored
	if err := f.SetFault(testbed.FaultFailSync, ""); err != nil {
		return "", err
	}
	if cs, err = f.WaitCheckpointsFunc(ctx, job, func(c testbed.CheckpointCounts) bool { return c.Restored > restored }); err != nil {
		return "", err
	}
	if err := f.ClearFaults(); err != nil {
		return "", err
	}
	if err := f.WaitJobRunning(ctx, job); err != nil {
		return "", err
	}
	if cs, err = f.WaitCheckpoints(ctx, job, cs.Completed+2); err != nil {
		return "", err
	}
	cp, err := latest()
	if err != nil {
		return "", err
	}
	if _, err := c.save(ctx, "jobs_id_checkpoints_details_completed.json", fmt.Sprintf("%s/checkpoints/details/%d", jp, cp.Latest.Completed.ID), ""); err != nil {
		return "", err
	}

	// REST metrics come from the JobManager's fetcher (every 10 s by
	// default): wait until the TaskManagers' values are there.
	var names []string
	waitMetrics := func(ctx context.Context) error {
		var list []struct {
			ID string `json:"id"`
		}
		if err := f.GetJSON(ctx, "/taskmanagers/metrics", &list); err != nil {
			return err
		}
		names = names[:0]
		for _, m := range list {
			names = append(names, m.ID)
		}
		if !slices.Contains(names, "Status.JVM.Memory.Heap.Used") {
			return errors.New("no TaskManager metrics yet")
		}
		return nil
	}
	if err := testbed.WaitFor(ctx, f.JM, time.Second, waitMetrics); err != nil {
		return "", err
	}
	tmGet := []string{"Status.JVM.Memory.Heap.Used", "Status.JVM.Memory.Heap.Max"}
	for _, n := range names {
		if strings.HasPrefix(n, "Status.JVM.GarbageCollector.") && (strings.HasSuffix(n, ".Time") || strings.HasSuffix(n, ".Count")) {
			tmGet = append(tmGet, n)
		}
	}
	sort.Strings(tmGet[2:])
	jmGet := []string{"Status.JVM.Memory.Heap.Used", "Status.JVM.Memory.Heap.Max", "Status.JVM.CPU.Load",
		"numRegisteredTaskManagers", "numRunningJobs", "taskSlotsAvailable", "taskSlotsTotal"}
	jobGet := []string{"uptime", "numRestarts", "fullRestarts", "downtime", "lastCheckpointDuration", "lastCheckpointSize",
		"numberOfCompletedCheckpoints", "numberOfFailedCheckpoints", "numberOfInProgressCheckpoints", "lastCheckpointRestoreTimestamp"}
	get := func(ids []string) string { return url.QueryEscape(strings.Join(ids, ",")) }

	var tms struct {
		TaskManagers []struct {
			ID string `json:"id"`
		} `json:"taskmanagers"`
	}
	if err := f.GetJSON(ctx, "/taskmanagers", &tms); err != nil || len(tms.TaskManagers) == 0 {
		return "", fmt.Errorf("taskmanagers: %v %+v", err, tms)
	}
	tm := "/taskmanagers/" + url.PathEscape(tms.TaskManagers[0].ID)

	reqs := []struct{ name, path, note string }{
		{"config.json", "/config", ""},
		{"overview.json", "/overview", ""},
		{"jobs_overview.json", "/jobs/overview", ""},
		{"jobs_id.json", jp, ""},
		{"jobs_id_checkpoints.json", jp + "/checkpoints", "after completed, declined, expired checkpoints and a task failure"},
		{"jobs_id_checkpoints_config.json", jp + "/checkpoints/config", ""},
		{"jobs_id_exceptions.json", jp + "/exceptions?maxExceptions=10", "after a task failed in a checkpoint's synchronous phase"},
		{"jobs_id_metrics_list.json", jp + "/metrics", "no get=: the metric names"},
		{"jobs_id_metrics.json", jp + "/metrics?get=" + get(jobGet), ""},
		{"jobs_metrics_agg.json", "/jobs/metrics?get=" + get(jobGet) + "&agg=sum,max", ""},
		{"taskmanagers.json", "/taskmanagers", ""},
		{"taskmanagers_id.json", tm, ""},
		{"taskmanagers_metrics_list.json", "/taskmanagers/metrics", "no get=: the metric names"},
		{"taskmanagers_metrics_agg.json", "/taskmanagers/metrics?get=" + get(tmGet) + "&agg=sum,max", ""},
		{"taskmanagers_id_metrics.json", tm + "/metrics?get=" + get(tmGet), "one TaskManager, unaggregated: values are strings"},
		{"jobmanager_metrics_list.json", "/jobmanager/metrics", "no get=: the metric names"},
		{"jobmanager_metrics.json", "/jobmanager/metrics?get=" + get(jmGet), ""},
		{"jobmanager_config.json", "/jobmanager/config", ""},
		{"jobs_unknown_checkpoints.json", "/jobs/00000000000000000000000000000000/checkpoints", "a job id the cluster does not know"},
	}
	for _, r := range reqs {
		if _, err := c.save(ctx, r.name, r.path, r.note); err != nil {
			return "", err
		}
	}
	if err := captureProgress(ctx, c, jp); err != nil {
		return "", err
	}
	if err := captureLostTaskManager(ctx, c, jp); err != nil {
		return "", err
	}
	return job, nil
}

// progressSuffixes pick the per-subtask metrics that say whether a job makes
// progress: throughput, FLIP-33 source backlog (pendingRecords, Kafka's
// records-lag-max), event time, late records, busy and backpressure.
var progressSuffixes = []string{"numRecordsIn", "numRecordsOut", "numRecordsInPerSecond", "numRecordsOutPerSecond",
	"pendingRecords", "records-lag-max", "currentInputWatermark", "currentOutputWatermark", "numLateRecordsDropped",
	"busyTimeMsPerSecond", "backPressuredTimeMsPerSecond"}

// vertexMetrics returns the aggregated progress metrics of a vertex's
// subtasks, and the metric names asked for.
func vertexMetrics(ctx context.Context, f *testbed.Flink, vp string) (path string, body []byte, names []string, err error) {
	var list []struct {
		ID string `json:"id"`
	}
	if err := f.GetJSON(ctx, vp+"/subtasks/metrics", &list); err != nil {
		return "", nil, nil, err
	}
	for _, m := range list {
		for _, suf := range progressSuffixes {
			if m.ID == suf || strings.HasSuffix(m.ID, "."+suf) {
				names = append(names, m.ID)
			}
		}
	}
	sort.Strings(names)
	path = vp + "/subtasks/metrics?get=" + url.QueryEscape(strings.Join(names, ",")) + "&agg=min,max,sum"
	body, err = f.Get(ctx, path)
	return path, body, names, err
}

type aggMetric struct {
	ID  string  `json:"id"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	Sum float64 `json:"sum"`
}

func findAgg(body []byte, suffix string) (aggMetric, bool) {
	var ms []aggMetric
	if json.Unmarshal(body, &ms) != nil {
		return aggMetric{}, false
	}
	for _, m := range ms {
		if m.ID == suffix || strings.HasSuffix(m.ID, "."+suffix) {
			return m, true
		}
	}
	return aggMetric{}, false
}

// captureProgress records, per vertex (in the order of /jobs/:id, the source
// first), the subtask metric names, the progress metrics aggregated over
// subtasks and the watermarks: once after late records were dropped, once
// with the source stalled (its backlog grown, its watermark standing).
func captureProgress(ctx context.Context, c *capturer, jp string) error {
	var j struct {
		Vertices []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"vertices"`
	}
	if err := c.f.GetJSON(ctx, jp, &j); err != nil {
		return err
	}
	if len(j.Vertices) < 3 {
		return fmt.Errorf("job has %d vertices, want source, count and window", len(j.Vertices))
	}
	vp := func(i int) string { return jp + "/vertices/" + j.Vertices[i].ID }
	window := -1
	for i, v := range j.Vertices {
		if strings.HasPrefix(v.Name, "window") {
			window = i
		}
	}
	if window < 0 {
		return fmt.Errorf("no window vertex among %+v", j.Vertices)
	}
	// Late records until the window's drop count shows in REST (the
	// metric fetcher refreshes every 10 s).
	if err := c.f.SetFault(testbed.SourceLate, "5"); err != nil {
		return err
	}
	if err := testbed.WaitFor(ctx, c.f.JM, time.Second, func(ctx context.Context) error {
		_, body, _, err := vertexMetrics(ctx, c.f, vp(window))
		if err != nil {
			return err
		}
		if m, ok := findAgg(body, "numLateRecordsDropped"); !ok || m.Sum == 0 {
			return fmt.Errorf("no late records dropped yet: %s", body)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := c.f.ClearFaults(); err != nil {
		return err
	}
	for i, v := range j.Vertices {
		note := "vertex " + strconv.Itoa(i) + ": " + v.Name
		if _, err := c.save(ctx, fmt.Sprintf("jobs_id_vertices_%d_subtasks_metrics_list.json", i), vp(i)+"/subtasks/metrics", note+"; no get=: the metric names"); err != nil {
			return err
		}
		path, body, _, err := vertexMetrics(ctx, c.f, vp(i))
		if err != nil {
			return err
		}
		if err := c.write(fmt.Sprintf("jobs_id_vertices_%d_subtasks_metrics.json", i), path, "", note+"; after late records were dropped", 200, body); err != nil {
			return err
		}
		if _, err := c.save(ctx, fmt.Sprintf("jobs_id_vertices_%d_watermarks.json", i), vp(i)+"/watermarks", note); err != nil {
			return err
		}
	}

	// The source stalled: wait until REST shows a backlog of more than 5 s
	// of arrivals, then record every vertex as REST shows it then.
	if err := c.f.SetFault(testbed.SourceStall, ""); err != nil {
		return err
	}
	if err := testbed.WaitFor(ctx, c.f.JM, time.Second, func(ctx context.Context) error {
		_, body, _, err := vertexMetrics(ctx, c.f, vp(0))
		if err != nil {
			return err
		}
		if m, ok := findAgg(body, "pendingRecords"); !ok || m.Sum < 500 {
			return fmt.Errorf("source backlog not grown yet: %s", body)
		}
		return nil
	}); err != nil {
		return err
	}
	for i, v := range j.Vertices {
		path, body, _, err := vertexMetrics(ctx, c.f, vp(i))
		if err != nil {
			return err
		}
		note := "vertex " + strconv.Itoa(i) + ": " + v.Name + "; the source stalled (control file stall)"
		if err := c.write(fmt.Sprintf("jobs_id_vertices_%d_subtasks_metrics_stalled.json", i), path, "stalled", note, 200, body); err != nil {
			return err
		}
		if _, err := c.saveVariant(ctx, fmt.Sprintf("jobs_id_vertices_%d_watermarks_stalled.json", i), vp(i)+"/watermarks", "stalled", note); err != nil {
			return err
		}
	}
	if _, err := c.saveVariant(ctx, "jobs_id_stalled.json", jp, "stalled", "the source stalled"); err != nil {
		return err
	}
	return c.f.ClearFaults()
}

// captureLostTaskManager kills the TaskManager JVM (SIGKILL, as the kernel's
// OOM killer or a lost node would) and records what REST shows once the
// JobManager noticed.
func captureLostTaskManager(ctx context.Context, c *capturer, jp string) error {
	if err := c.f.TM.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	if err := testbed.WaitFor(ctx, c.f.JM, 250*time.Millisecond, func(ctx context.Context) error {
		var ov struct {
			TaskManagers int `json:"taskmanagers"`
		}
		if err := c.f.GetJSON(ctx, "/overview", &ov); err != nil {
			return err
		}
		if ov.TaskManagers != 0 {
			return fmt.Errorf("%d taskmanagers", ov.TaskManagers)
		}
		return nil
	}); err != nil {
		return err
	}
	const note = "after the only TaskManager was killed (SIGKILL)"
	for _, r := range []struct{ name, path string }{
		{"overview_tm_lost.json", "/overview"},
		{"taskmanagers_tm_lost.json", "/taskmanagers"},
		{"jobs_overview_tm_lost.json", "/jobs/overview"},
		{"jobs_id_tm_lost.json", jp},
	} {
		if _, err := c.saveVariant(ctx, r.name, r.path, "tm_lost", note); err != nil {
			return err
		}
	}
	return nil
}

// captureDisabled records the answers for a job without checkpointing.
func captureDisabled(ctx context.Context, log *slog.Logger, version, work, out string, manifest map[string]entry) error {
	log.Info("starting Flink without checkpointing", "version", version)
	f, err := testbed.StartFlink(ctx, testbed.FlinkOptions{
		Version:            version,
		WorkDir:            work,
		CheckpointInterval: -1,
		Slots:              1,
	})
	if err != nil {
		return err
	}
	defer f.Stop()
	c := &capturer{f: f, out: out, manifest: manifest, log: log}
	job, err := f.SubmitJob(ctx, testbed.JobOptions{Parallelism: 1})
	if err != nil {
		return err
	}
	if err := f.WaitJobRunning(ctx, job); err != nil {
		return err
	}
	for _, r := range []struct{ name, path string }{
		{"nocheckpointing_jobs_id_checkpoints.json", "/jobs/" + job + "/checkpoints"},
		{"nocheckpointing_jobs_id_checkpoints_config.json", "/jobs/" + job + "/checkpoints/config"},
	} {
		if _, err := c.saveVariant(ctx, r.name, r.path, "nocheckpointing", "job without checkpointing (job id differs from MANIFEST job_id)"); err != nil {
			return err
		}
	}
	return nil
}
