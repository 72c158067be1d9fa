package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/flink-agent/flink-agent/pager"
	"github.com/flink-agent/flink-agent/pager/pdtest"
	"github.com/flink-agent/flink-agent/testbed"
)

// The two paging paths.
const (
	viaAlertmanager = "alertmanager"
	viaDirect       = "direct"
)

// incident is what PagerDuty opened: one dedup_key of one routing key.
type incident struct {
	path    string
	key     string // dedup_key
	alert   string // alertname (Alertmanager) or class (direct)
	job     string // job_name, "" for pod- or bucket-level conditions
	summary string
	events  []pdtest.Received
}

// scenario is one real condition, driven on its own job.
type scenario struct {
	alert  string // the Prometheus alert it must fire
	job    string // job_name the alert carries ("" for pod-level)
	direct string // the direct path's class; "" when it has none
	why    string // why the direct path has none
	// start brings the condition about and returns when it began; clear
	// ends it (or waits for it to end by itself) and returns when it ended.
	start func(ctx context.Context) (time.Time, error)
	clear func(ctx context.Context) (time.Time, error)
	// before, when set, is a deadline both paths' triggers must beat
	// (a stuck checkpoint must page before Flink expires it).
	before func() time.Time
	// after runs once the condition has resolved on both paths.
	after func(ctx context.Context) error

	started, cleared time.Time
	firing           time.Time
	trigger, resolve map[string]time.Time // by path
	err              error
}

// TestAlertsReachPagerDuty drives six real conditions through both paging
// paths and checks what PagerDuty receives; then every dashboard query runs
// on the data of the run (panels_test.go).
func TestAlertsReachPagerDuty(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Flink, Loki, statsd_exporter, Prometheus and Alertmanager")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	runStart := time.Now()
	b := startBed(t, ctx)
	t.Logf("test bed up in %s: Flink %s, %d jobs, 2 agents, Prometheus %s, Alertmanager %s",
		time.Since(runStart).Round(time.Second), b.flink.Version, len(b.jobs), b.prom.URL, b.am.URL)

	b.waitHealthy(t, ctx)
	if got := b.pd.Accepted(); len(got) > 0 {
		t.Fatalf("PagerDuty was paged while every job was healthy: %+v", got)
	}

	w := &firingWatch{prom: b.prom, first: map[string][]time.Time{}}
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); w.run(wctx) }()

	scenarios := b.scenarios()
	var wg sync.WaitGroup
	for _, s := range scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.err = b.run(ctx, s, w)
		}()
	}
	wg.Wait()
	stopWatch()
	<-watchDone

	for _, s := range scenarios {
		if s.err != nil {
			t.Errorf("%s: %v", s.alert, s.err)
		}
	}
	printTable(t, scenarios)
	if t.Failed() {
		t.Logf("agents:\n%s", b.agentLogs())
	}

	// Every incident either path opened must resolve, side effects included.
	incs, err := b.waitAllResolved(ctx)
	if err != nil {
		t.Error(err)
	}
	checkIncidents(t, b, incs, scenarios)

	runEnd := time.Now()
	t.Run("GrafanaPanels", func(t *testing.T) { checkGrafanaPanels(t, ctx, b, runStart, runEnd) })
	t.Run("LokiPanels", func(t *testing.T) { checkLokiPanels(t, ctx, b, runStart, runEnd) })
	t.Run("DatadogMetrics", func(t *testing.T) { checkDatadogMetrics(t, ctx, b) })
}

// waitHealthy waits until Prometheus scrapes both agents, has loaded the
// rules, and has seen checkpoints complete on every periodically
// checkpointing job.
func (b *bed) waitHealthy(t *testing.T, ctx context.Context) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := testbed.WaitFor(wctx, b.prom.Proc, 500*time.Millisecond, func(ctx context.Context) error {
		if n, err := b.count(ctx, `up{job="flink-agent"} == 1`); err != nil || n != 2 {
			return fmt.Errorf("agents up: %d (%v)", n, err)
		}
		rules, err := b.prom.API.Rules(ctx, nil)
		if err != nil || len(rules.Groups) == 0 {
			return fmt.Errorf("rules: %v", err)
		}
		q := `increase(flink_checkpoints_total{status="completed", kind="checkpoint", cluster="e2e"}[10s]) >= 2`
		if n, err := b.count(ctx, q); err != nil || n < len(b.jobs)-1 {
			return fmt.Errorf("jobs completing checkpoints: %d of %d (%v)", n, len(b.jobs)-1, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, b.agentLogs())
	}
}

// count is the number of series a PromQL query returns now.
func (b *bed) count(ctx context.Context, q string) (int, error) {
	v, _, _, err := b.prom.API.Query(ctx, q, time.Now())
	if err != nil {
		return 0, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return 0, fmt.Errorf("%s: %s, not a vector", q, v.Type())
	}
	return len(vec), nil
}

func (b *bed) scenarios() []*scenario {
	failing, stuck, slow, throttled, stalled := b.jobs["failing"], b.jobs["stuck"], b.jobs["slow"], b.jobs["throttled"], b.jobs["stalled"]
	var stuckID, slowID int64
	var stuckTrigger time.Time
	return []*scenario{
		{
			alert: "FlinkCheckpointFailing", job: failing.Name, direct: pager.ClassCheckpointFailures,
			start: func(context.Context) (time.Time, error) {
				return time.Now(), testbed.SetFaultIn(failing.Control, testbed.FaultFail, "")
			},
			clear: func(context.Context) (time.Time, error) {
				return time.Now(), os.Remove(filepath.Join(failing.Control, testbed.FaultFail))
			},
		},
		{
			alert: "FlinkCheckpointStuck", job: stuck.Name, direct: pager.ClassCheckpointStuck,
			// The job checkpoints only when asked: one checkpoint whose
			// snapshot sleeps past the timeout.
			start: func(ctx context.Context) (time.Time, error) {
				if err := testbed.SetFaultIn(stuck.Control, testbed.FaultSleepMS, fmt.Sprint((stuck.Timeout + 2*time.Second).Milliseconds())); err != nil {
					return time.Time{}, err
				}
				id, at, err := b.triggerCheckpoint(ctx, stuck.ID)
				stuckID, stuckTrigger = id, at
				if err == nil {
					// Its snapshot is sleeping; later ones must not.
					err = os.Remove(filepath.Join(stuck.Control, testbed.FaultSleepMS))
				}
				return at, err
			},
			before: func() time.Time { return stuckTrigger.Add(stuck.Timeout) },
			// Flink expires it: the condition ends by itself.
			clear: func(ctx context.Context) (time.Time, error) {
				return b.waitCheckpoint(ctx, stuck.ID, stuckID, "failed")
			},
		},
		{
			alert: "FlinkS3Throttling", direct: pager.ClassS3Throttling,
			start: func(context.Context) (time.Time, error) { b.s3.SetThrottle(1); return time.Now(), nil },
			clear: func(context.Context) (time.Time, error) { b.s3.SetThrottle(0); return time.Now(), nil },
			// What the dashboards need once: a savepoint and a restart.
			after: func(ctx context.Context) error { return b.savepointAndRestart(ctx, throttled) },
		},
		{
			alert: "FlinkAgentDown", why: "an agent cannot page about itself",
			start: func(context.Context) (time.Time, error) { at := time.Now(); b.tm.stop(); return at, nil },
			clear: func(ctx context.Context) (time.Time, error) { at := time.Now(); return at, b.tm.start(ctx) },
		},
		{
			alert: "FlinkNoRecentCheckpoint", job: slow.Name, why: "not a direct-paging condition",
			// One checkpoint takes 30 s (the job checkpoints every second):
			// none completes for longer than three intervals plus `for`.
			start: func(ctx context.Context) (time.Time, error) {
				at := time.Now()
				if err := testbed.SetFaultIn(slow.Control, testbed.FaultSleepMS, "30000"); err != nil {
					return at, err
				}
				id, err := b.waitSleeping(ctx, slow.ID)
				if err != nil {
					return at, err
				}
				slowID = id
				return at, os.Remove(filepath.Join(slow.Control, testbed.FaultSleepMS))
			},
			// It completes: the condition ends by itself.
			clear: func(ctx context.Context) (time.Time, error) {
				return b.waitCheckpoint(ctx, slow.ID, slowID, "completed")
			},
		},
		{
			alert: "FlinkJobNotProgressing", job: stalled.Name, why: "not a direct-paging condition",
			// The source stops reading: nothing reaches the sinks, the
			// watermark stands still, the backlog grows; checkpoints go on
			// completing. The agent's records-out rate is a one-minute one
			// (not sped up), so it falls to 0 a minute after the last record.
			start: func(context.Context) (time.Time, error) {
				return time.Now(), testbed.SetFaultIn(stalled.Control, testbed.SourceStall, "")
			},
			clear: func(context.Context) (time.Time, error) {
				return time.Now(), os.Remove(filepath.Join(stalled.Control, testbed.SourceStall))
			},
		},
	}
}

// run drives one scenario: start, both paths trigger, clear, both resolve.
func (b *bed) run(ctx context.Context, s *scenario, w *firingWatch) error {
	s.trigger, s.resolve = map[string]time.Time{}, map[string]time.Time{}
	paths := []string{viaAlertmanager}
	if s.direct != "" {
		paths = append(paths, viaDirect)
	}
	var err error
	if s.started, err = s.start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	keys := map[string]string{}
	for _, p := range paths {
		inc, err := b.waitIncident(ctx, p, s, s.started)
		if err != nil {
			return err
		}
		keys[p] = inc.key
		s.trigger[p] = inc.events[0].At
	}
	if s.firing = w.firstAfter(s.alert, s.job, s.started); s.firing.IsZero() {
		return fmt.Errorf("Alertmanager paged at %s, but Prometheus was never seen firing %s",
			s.trigger[viaAlertmanager].Format(time.TimeOnly), s.alert)
	}
	if s.before != nil {
		for p, at := range s.trigger {
			if dl := s.before(); !at.Before(dl) {
				return fmt.Errorf("%s path paged at %s, not before %s", p, at.Format(time.TimeOnly), dl.Format(time.TimeOnly))
			}
		}
	}
	if s.cleared, err = s.clear(ctx); err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	for _, p := range paths {
		at, err := b.waitResolve(ctx, p, keys[p], s.trigger[p])
		if err != nil {
			return fmt.Errorf("%s path: %w", p, err)
		}
		s.resolve[p] = at
	}
	if s.after != nil {
		return s.after(ctx)
	}
	return nil
}

// incidents groups what PagerDuty accepted by routing key and dedup_key.
func (b *bed) incidents() []*incident {
	by := map[string]*incident{}
	var out []*incident
	for _, r := range b.pd.Accepted() {
		path := viaDirect
		if r.RoutingKey == alertmanagerKey {
			path = viaAlertmanager
		}
		k := r.RoutingKey + "\x00" + r.DedupKey
		inc := by[k]
		if inc == nil {
			inc = &incident{path: path, key: r.DedupKey}
			by[k] = inc
			out = append(out, inc)
		}
		if r.EventAction == pager.ActionTrigger && inc.alert == "" {
			inc.summary, _ = r.Payload["summary"].(string)
			d, _ := r.Payload["custom_details"].(map[string]any)
			inc.job, _ = d["job_name"].(string)
			if path == viaAlertmanager {
				inc.alert, _ = d["alertname"].(string)
			} else {
				inc.alert, _ = r.Payload["class"].(string)
			}
		}
		inc.events = append(inc.events, r)
	}
	return out
}

func (s *scenario) wants(path string) string {
	if path == viaDirect {
		return s.direct
	}
	return s.alert
}

// waitIncident waits for the path's first trigger for the scenario's
// condition after start.
func (b *bed) waitIncident(ctx context.Context, path string, s *scenario, start time.Time) (*incident, error) {
	var found *incident
	err := waitUntil(ctx, 4*time.Minute, func() bool {
		for _, inc := range b.incidents() {
			if inc.path == path && inc.alert == s.wants(path) && inc.job == s.job && inc.events[0].At.After(start) {
				found = inc
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("%s path: no %s trigger for %q since %s: %w", path, s.wants(path), s.job, start.Format(time.TimeOnly), err)
	}
	return found, nil
}

// waitResolve waits for the resolve of the incident with dedup_key key.
func (b *bed) waitResolve(ctx context.Context, path, key string, after time.Time) (time.Time, error) {
	var at time.Time
	err := waitUntil(ctx, 4*time.Minute, func() bool {
		for _, inc := range b.incidents() {
			if inc.path != path || inc.key != key {
				continue
			}
			for _, e := range inc.events {
				if e.EventAction == pager.ActionResolve && e.At.After(after) {
					at = e.At
					return true
				}
			}
		}
		return false
	})
	if err != nil {
		return at, fmt.Errorf("no resolve for dedup_key %s: %w", key, err)
	}
	return at, nil
}

// waitAllResolved waits until every incident's last event is a resolve.
func (b *bed) waitAllResolved(ctx context.Context) ([]*incident, error) {
	var open []string
	err := waitUntil(ctx, 3*time.Minute, func() bool {
		open = open[:0]
		for _, inc := range b.incidents() {
			if inc.events[len(inc.events)-1].EventAction != pager.ActionResolve {
				open = append(open, fmt.Sprintf("%s %s %q (%s)", inc.path, inc.alert, inc.job, inc.key))
			}
		}
		return len(open) == 0
	})
	if err != nil {
		return b.incidents(), fmt.Errorf("incidents still open: %v: %w", open, err)
	}
	return b.incidents(), nil
}

func waitUntil(ctx context.Context, timeout time.Duration, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// sideEffects are the other pages the conditions rightly cause: throttled
// uploads fail the throttled job's checkpoints, and a job whose
// checkpoints keep failing has no recent checkpoint either. The stuck
// checkpoint's snapshot sleeps 92 s in the task thread, so nothing flows
// meanwhile: at 30x speed that is 46 minutes without progress, which
// FlinkJobNotProgressing may page about near its end.
var sideEffects = map[string][]string{
	viaAlertmanager: {"FlinkCheckpointFailing/e2e-throttled", "FlinkNoRecentCheckpoint/e2e-throttled", "FlinkNoRecentCheckpoint/e2e-failing",
		"FlinkJobNotProgressing/e2e-stuck"},
	viaDirect: {pager.ClassCheckpointFailures + "/e2e-throttled"},
}

// checkIncidents asserts on everything PagerDuty received, on both paths.
func checkIncidents(t *testing.T, b *bed, incs []*incident, scenarios []*scenario) {
	t.Helper()
	runbooks, err := testbed.RunbookURLs(b.rules)
	if err != nil {
		t.Fatal(err)
	}
	// A direct page links the runbook of the alert for the same condition.
	for _, s := range scenarios {
		if s.direct != "" {
			runbooks[s.direct] = runbooks[s.alert]
		}
	}
	keys := map[string]string{}
	for _, inc := range incs {
		name := fmt.Sprintf("%s path, %s %q", inc.path, inc.alert, inc.job)
		t.Logf("PagerDuty %-12s %-24s %-14s %-13s dedup_key %s: %.110q", inc.path, inc.alert, inc.job, actions(inc.events), inc.key, inc.summary)
		expected := slices.Contains(sideEffects[inc.path], inc.alert+"/"+inc.job)
		for _, s := range scenarios {
			expected = expected || s.wants(inc.path) == inc.alert && s.job == inc.job
		}
		if !expected {
			t.Errorf("unexpected page: %s: %q", name, inc.summary)
		}
		// The two paths' dedup_keys never collide.
		if other, ok := keys[inc.key]; ok && other != inc.path {
			t.Errorf("dedup_key %s used by both paths", inc.key)
		}
		keys[inc.key] = inc.path

		// trigger, resolve, trigger, …: never a second trigger while open.
		for i, e := range inc.events {
			want := pager.ActionTrigger
			if i%2 == 1 {
				want = pager.ActionResolve
			}
			if e.EventAction != want {
				t.Errorf("%s: event %d is %q, want %q (events: %s)", name, i, e.EventAction, want, actions(inc.events))
				break
			}
		}
		wantKey := directKey
		if inc.path == viaAlertmanager {
			wantKey = alertmanagerKey
		}
		for _, e := range inc.events {
			if e.RoutingKey != wantKey {
				t.Errorf("%s: routing_key %q, want %q", name, e.RoutingKey, wantKey)
			}
			if e.EventAction != pager.ActionTrigger {
				continue
			}
			p := e.Payload
			sev, _ := p["severity"].(string)
			wantSev := pager.SeverityCritical
			if inc.path == viaDirect && inc.alert == pager.ClassS3Throttling {
				wantSev = pager.SeverityError
			}
			if sev != wantSev {
				t.Errorf("%s: severity %q, want %q", name, sev, wantSev)
			}
			sum, _ := p["summary"].(string)
			subject := inc.job
			switch inc.alert {
			case "FlinkAgentDown":
				subject = tmPod
			case "FlinkS3Throttling", pager.ClassS3Throttling:
				subject = cluster // cluster-wide: the bucket, when the log names it
			}
			if !strings.Contains(sum, subject) || inc.alert != "FlinkAgentDown" && !strings.Contains(sum, cluster) {
				t.Errorf("%s: summary %q does not name cluster %q and %q", name, sum, cluster, subject)
			}
			if want := runbooks[inc.alert]; len(e.Links) == 0 || e.Links[0].Href != want || want == "" {
				t.Errorf("%s: links %+v, want the runbook %s", name, e.Links, want)
			}
		}
	}
}

func actions(evs []pdtest.Received) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.EventAction)
	}
	return strings.Join(s, ",")
}

// printTable logs the timings, one line each (make test keeps them).
func printTable(t *testing.T, scenarios []*scenario) {
	t.Helper()
	sec := func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return "—"
		}
		return fmt.Sprintf("%.1f", to.Sub(from).Seconds())
	}
	t.Logf("alert timings (rules and Alertmanager routes at %dx speed; s from the condition's start, resolve from its end):", speedUp)
	t.Logf("%-26s | %-7s | %8s | %12s | %12s | %12s | %12s | %12s", "alert", "job", "firing", "AM trigger", "AM resolve", "direct trig.", "direct res.", "cond. lasted")
	for _, s := range scenarios {
		job := strings.TrimPrefix(s.job, "e2e-")
		if job == "" {
			job = "-"
		}
		dt, dr := sec(s.started, s.trigger[viaDirect]), sec(s.cleared, s.resolve[viaDirect])
		if s.direct == "" {
			dt, dr = "n/a", "n/a"
		}
		t.Logf("%-26s | %-7s | %8s | %12s | %12s | %12s | %12s | %12s", s.alert, job, sec(s.started, s.firing),
			sec(s.started, s.trigger[viaAlertmanager]), sec(s.cleared, s.resolve[viaAlertmanager]), dt, dr, sec(s.started, s.cleared))
	}
	for _, s := range scenarios {
		if s.direct == "" {
			t.Logf("direct path n/a for %s: %s", s.alert, s.why)
		}
	}
}

// firingWatch records when Prometheus reports each alert firing.
type firingWatch struct {
	prom  *testbed.Prometheus
	mu    sync.Mutex
	first map[string][]time.Time // alertname/job_name → starts of firing
	prev  map[string]bool
}

func (w *firingWatch) run(ctx context.Context) {
	for ctx.Err() == nil {
		res, err := w.prom.API.Alerts(ctx)
		if err == nil {
			now := time.Now()
			cur := map[string]bool{}
			for _, a := range res.Alerts {
				if a.State == v1.AlertStateFiring {
					cur[string(a.Labels["alertname"])+"/"+string(a.Labels["job_name"])] = true
				}
			}
			w.mu.Lock()
			for k := range cur {
				if !w.prev[k] {
					w.first[k] = append(w.first[k], now)
				}
			}
			w.prev = cur
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// firstAfter is when the alert was first seen firing after t.
func (w *firingWatch) firstAfter(alert, job string, t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.first[alert+"/"+job] {
		if at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// ---------------------------------------------------------------- Flink

type checkpointEntry struct {
	ID               int64  `json:"id"`
	Status           string `json:"status"`
	IsSavepoint      bool   `json:"is_savepoint"`
	TriggerTimestamp int64  `json:"trigger_timestamp"`
	LatestAck        int64  `json:"latest_ack_timestamp"`
	FailureTimestamp int64  `json:"failure_timestamp"`
	EndToEnd         int64  `json:"end_to_end_duration"` // ms
}

func (b *bed) history(ctx context.Context, jobID string) ([]checkpointEntry, error) {
	var r struct {
		History []checkpointEntry `json:"history"`
	}
	err := b.flink.GetJSON(ctx, "/jobs/"+jobID+"/checkpoints", &r)
	return r.History, err
}

// triggerCheckpoint asks Flink for a checkpoint now (REST, Flink 1.19+) and
// returns its id and trigger time once it is in progress.
func (b *bed) triggerCheckpoint(ctx context.Context, jobID string) (int64, time.Time, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.flink.RESTURL()+"/jobs/"+jobID+"/checkpoints",
		strings.NewReader(`{"checkpointType":"FULL"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, time.Time{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, time.Time{}, fmt.Errorf("trigger checkpoint: %s: %s", resp.Status, body)
	}
	id, err := b.waitSleeping(ctx, jobID)
	if err != nil {
		return 0, time.Time{}, err
	}
	h, err := b.history(ctx, jobID)
	for _, c := range h {
		if c.ID == id {
			return id, time.UnixMilli(c.TriggerTimestamp), err
		}
	}
	return id, time.Time{}, fmt.Errorf("checkpoint %d not in the history: %w", id, err)
}

// waitSleeping waits for a checkpoint that has been in progress for 2 s
// (its snapshot has read the sleep-ms switch) and returns its id.
func (b *bed) waitSleeping(ctx context.Context, jobID string) (int64, error) {
	var id int64
	err := waitUntil(ctx, time.Minute, func() bool {
		h, err := b.history(ctx, jobID)
		if err != nil {
			return false
		}
		for _, c := range h {
			if c.Status == "IN_PROGRESS" && !c.IsSavepoint && time.Since(time.UnixMilli(c.TriggerTimestamp)) > 2*time.Second {
				id = c.ID
				return true
			}
		}
		return false
	})
	return id, err
}

// waitCheckpoint waits until checkpoint id, or a later one, is Flink's
// latest completed (status "completed") or failed ("failed") checkpoint,
// and returns when it got there. The history keeps only the last 10
// checkpoints and the details endpoint caches what it first answered; the
// "latest" entries are current.
func (b *bed) waitCheckpoint(ctx context.Context, jobID string, id int64, status string) (time.Time, error) {
	var r struct {
		Latest map[string]*checkpointEntry `json:"latest"`
	}
	err := waitUntil(ctx, 3*time.Minute, func() bool {
		r.Latest = nil
		err := b.flink.GetJSON(ctx, "/jobs/"+jobID+"/checkpoints", &r)
		c := r.Latest[status]
		return err == nil && c != nil && c.ID >= id
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("checkpoint %d never %s (latest: %v): %w", id, status, r.Latest[status], err)
	}
	c := r.Latest[status]
	switch {
	case c.ID != id:
		return time.Now(), nil
	case c.FailureTimestamp > 0:
		return time.UnixMilli(c.FailureTimestamp), nil
	}
	return time.UnixMilli(c.TriggerTimestamp + c.EndToEnd), nil
}

// savepointAndRestart takes a savepoint of the job and makes it restart
// once (a snapshot that fails its task), for the dashboards' panels.
func (b *bed) savepointAndRestart(ctx context.Context, j *job) error {
	body, _ := json.Marshal(map[string]any{"target-directory": "file://" + filepath.Join(b.dir, "savepoints"), "cancel-job": false})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.flink.RESTURL()+"/jobs/"+j.ID+"/savepoints", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	var tr struct {
		RequestID string `json:"request-id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || tr.RequestID == "" {
		return fmt.Errorf("savepoint: %s: %v", resp.Status, err)
	}
	err = waitUntil(ctx, 2*time.Minute, func() bool {
		var st struct {
			Status struct {
				ID string `json:"id"`
			} `json:"status"`
			Operation struct {
				FailureCause any `json:"failure-cause"`
			} `json:"operation"`
		}
		if err := b.flink.GetJSON(ctx, "/jobs/"+j.ID+"/savepoints/"+tr.RequestID, &st); err != nil {
			return false
		}
		return st.Status.ID == "COMPLETED"
	})
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	// A restart, seen where users see it: the agent's counter in Prometheus.
	if err := testbed.SetFaultIn(j.Control, testbed.FaultFailSync, ""); err != nil {
		return err
	}
	q := fmt.Sprintf(`flink_job_restarts_total{job_name=%q} >= 1`, j.Name)
	err = waitUntil(ctx, 2*time.Minute, func() bool { n, _ := b.count(ctx, q); return n > 0 })
	if rmErr := os.Remove(filepath.Join(j.Control, testbed.FaultFailSync)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return rmErr
	}
	if err != nil {
		return fmt.Errorf("no restart in Prometheus (%s): %w", q, err)
	}
	return b.flink.WaitJobRunning(ctx, j.ID)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
