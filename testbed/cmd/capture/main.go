// Command capture records real Flink REST answers for the collector's golden
// tests. It starts a real cluster from the test bed, runs the checkpointing
// job, makes checkpoints complete, get declined, expire and fail a task, and
// saves what Flink's REST API answered into collector/testdata/flink-<version>/.
// A second cluster without checkpointing records the "disabled" answers.
//
//	go run ./testbed/cmd/capture                       # FLINK_VERSION or 1.20.0
//	FLINK_VERSION=2.2.0 go run ./testbed/cmd/capture
//
// Files hold the bodies as returned, indented with json.Indent (whitespace
// only: key order, numbers and "NaN" strings are untouched). MANIFEST.json
// maps each file to its request path and HTTP status.
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
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 10*time.Minute)
	defer cancelT()
	if err := run(ctx, log, *version, *out, *keep); err != nil {
		log.Error("capture failed", "err", err)
		os.Exit(1)
	}
}

type entry struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	Note   string `json:"note,omitempty"`
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
	body, err := c.f.Get(ctx, path)
	status := 200
	var he *testbed.HTTPError
	if errors.As(err, &he) {
		status, err = he.Status, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") != nil {
		return nil, fmt.Errorf("GET %s: not JSON: %q", path, body)
	}
	pretty.WriteByte('\n')
	if err := os.WriteFile(filepath.Join(c.out, name), pretty.Bytes(), 0o644); err != nil {
		return nil, err
	}
	c.manifest[name] = entry{Path: path, Status: status, Note: note}
	c.log.Info("saved", "file", name, "path", path, "status", status)
	return body, nil
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
	if _, err := c.save(ctx, "jobs_id_checkpoints_before_first.json", jp+"/checkpoints", "right after submission, before the first checkpoint completed"); err != nil {
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
		{"jobs_id_exceptions.json", jp + "/exceptions", "after a task failed in a checkpoint's synchronous phase"},
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
	return job, nil
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
		if _, err := c.save(ctx, r.name, r.path, "job without checkpointing (job id differs from MANIFEST job_id)"); err != nil {
			return err
		}
	}
	return nil
}
