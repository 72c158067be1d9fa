package pager

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/logscan"
	"github.com/flink-agent/flink-agent/pager/pdtest"
	"github.com/flink-agent/flink-agent/testbed"
)

const testKey = "0123456789abcdef0123456789abcdef" // 32 characters, as PagerDuty's

func keyFile(t *testing.T, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "routing-key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func fastClient(t *testing.T, srv *pdtest.Server, key string, reg prometheus.Registerer) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{URL: srv.URL, RoutingKeyFile: keyFile(t, key), Registerer: reg,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runClient(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func trigger(key, summary string) Event {
	return Event{EventAction: ActionTrigger, DedupKey: key, Client: "flink-agent",
		Payload: &Payload{Summary: summary, Source: "ns/pod", Severity: SeverityCritical, Timestamp: "2026-01-02T03:04:05Z",
			Component: "checkpoints", Group: "c1", Class: ClassCheckpointFailures, CustomDetails: map[string]any{"failure_message": "x"}}}
}

func TestContractTriggerAndResolve(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	reg := prometheus.NewRegistry()
	c := fastClient(t, srv, testKey, reg)
	runClient(t, c)
	c.Enqueue(trigger("flink-agent/k1", "Flink job failing"))
	waitFor(t, "trigger", func() bool { return len(srv.Accepted()) == 1 })
	c.Enqueue(Event{EventAction: ActionResolve, DedupKey: "flink-agent/k1", Client: "flink-agent"})
	waitFor(t, "resolve", func() bool { return len(srv.Accepted()) == 2 })
	got := srv.Accepted()
	if got[0].RoutingKey != testKey || got[0].EventAction != "trigger" || got[0].DedupKey != "flink-agent/k1" ||
		got[0].Payload["severity"] != "critical" || got[0].Payload["custom_details"].(map[string]any)["failure_message"] != "x" {
		t.Errorf("trigger as received: %+v", got[0])
	}
	if got[1].EventAction != "resolve" || got[1].DedupKey != got[0].DedupKey || got[1].Payload != nil {
		t.Errorf("resolve as received: %+v", got[1])
	}
	if n := testutil.ToFloat64(c.events.WithLabelValues("trigger", "accepted")); n != 1 {
		t.Errorf("accepted triggers %v", n)
	}
}

func TestContract400NeverRetried(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	c := fastClient(t, srv, "too-short-key", prometheus.NewRegistry())
	runClient(t, c)
	c.Enqueue(trigger("flink-agent/k", "s"))
	waitFor(t, "rejection", func() bool { return testutil.ToFloat64(c.events.WithLabelValues("trigger", "rejected")) == 1 })
	time.Sleep(100 * time.Millisecond) // room for a retry that must not come
	if n := srv.Requests(); n != 1 {
		t.Errorf("%d requests for an invalid event, want 1", n)
	}
	if inv := srv.Invalid(); len(inv) != 1 || !strings.Contains(inv[0][0], "routing_key") {
		t.Errorf("server saw %v", inv)
	}
}

func TestContractRetries429And5xxAndNetwork(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	srv.Script(429, 503, pdtest.NetworkError, 500, 502)
	reg := prometheus.NewRegistry()
	var logs testbed.SyncBuffer
	c, err := NewClient(ClientOptions{URL: srv.URL, RoutingKeyFile: keyFile(t, testKey), Registerer: reg,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	c.Enqueue(trigger("flink-agent/k", "s"))
	// The server records the event before its answer reaches the client:
	// wait for the client to have counted it too.
	waitFor(t, "delivery after retries", func() bool {
		return len(srv.Accepted()) == 1 && testutil.ToFloat64(c.requests.WithLabelValues("202")) == 1
	})
	if n := srv.Requests(); n != 6 {
		t.Errorf("%d requests, want 6 (5 failures, then accepted)", n)
	}
	for res, want := range map[string]float64{"429": 1, "5xx": 3, "network_error": 1, "202": 1} {
		if got := testutil.ToFloat64(c.requests.WithLabelValues(res)); got != want {
			t.Errorf("requests{result=%s} = %v, want %v", res, got, want)
		}
	}
	// Five failures in a row are two log lines: the start, and the end
	// with their count.
	out := logs.String()
	if strings.Count(out, "condition=started") != 1 || !strings.Contains(out, "condition=ended occurrences=5") {
		t.Errorf("retries logged as:\n%s", out)
	}
	// Backoff with jitter: every wait at least half the growing base.
	ts := srv.RequestTimes()
	for i := 1; i < len(ts)-1; i++ {
		if d := ts[i].Sub(ts[i-1]); d < 2*time.Millisecond {
			t.Errorf("retry %d after %s: no backoff", i, d)
		}
	}
}

func TestSummaryCappedAndKeyStable(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	kf := keyFile(t, testKey)
	long := strings.Repeat("Asynchronous task checkpoint failed. ", 200)
	jobs := []JobStatus{{JobName: strings.Repeat("very-long-job-name-", 20), JobID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", ConsecutiveFailures: 5, LastFailure: long}}
	var mu sync.Mutex
	p, err := New(Options{
		PagerDuty: config.PagerDuty{URL: srv.URL, RoutingKeyFile: kf, ConsecutiveFailures: 3, ThrottleSustained: config.Duration(time.Minute)},
		Identity:  identity.Identity{Cluster: "prod-eu", Namespace: "flink", Pod: "jm-0"},
		Jobs:      func() []JobStatus { mu.Lock(); defer mu.Unlock(); return append([]JobStatus(nil), jobs...) },
		Client:    ClientOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, p.client)
	p.evaluate()
	waitFor(t, "trigger", func() bool { return len(srv.Accepted()) == 1 })
	a := srv.Accepted()[0]
	if n := utf8.RuneCountInString(a.Payload["summary"].(string)); n > MaxSummary {
		t.Errorf("summary has %d characters", n)
	}
	if n := utf8.RuneCountInString(a.DedupKey); n > MaxDedupKey || !strings.HasPrefix(a.DedupKey, "flink-agent/flink/prod-eu/job/") {
		t.Errorf("dedup_key %q (%d characters)", a.DedupKey, n)
	}
	mu.Lock()
	jobs[0].ConsecutiveFailures = 0
	mu.Unlock()
	p.evaluate()
	waitFor(t, "resolve", func() bool { return len(srv.Accepted()) == 2 })
	if r := srv.Accepted()[1]; r.EventAction != "resolve" || r.DedupKey != a.DedupKey {
		t.Errorf("resolve %+v, want dedup_key %q", r, a.DedupKey)
	}
	if len(srv.Invalid()) != 0 {
		t.Errorf("server rejected: %v", srv.Invalid())
	}
	if len(a.Links) != 0 {
		t.Errorf("links %+v without pagerduty.runbook_base_url", a.Links)
	}
}

// TestRunbooksAreTheAlertRules: by default a direct page links the same
// runbook as the alert rule for the same condition (its runbook_url), and
// that runbook exists.
func TestRunbooksAreTheAlertRules(t *testing.T) {
	rules, err := os.ReadFile("../alerts/flink-agent.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbookURL, err := testbed.RunbookURLs(rules)
	if err != nil {
		t.Fatal(err)
	}
	p := &Pager{runbooks: config.Default().PagerDuty.RunbookBaseURL}
	for class, alert := range map[string]string{
		ClassCheckpointFailures: "FlinkCheckpointFailing",
		ClassCheckpointStuck:    "FlinkCheckpointStuck",
		ClassS3Throttling:       "FlinkS3Throttling",
	} {
		l := p.links(class)
		if len(l) != 1 || l[0].Href != runbookURL[alert] {
			t.Errorf("%s links %+v, want %s's runbook_url %q", class, l, alert, runbookURL[alert])
		}
		if _, err := os.Stat(filepath.Join("..", "docs", "runbooks", runbooks[class])); err != nil {
			t.Errorf("%s: %v", class, err)
		}
	}
	if len(runbooks) != 3 {
		t.Errorf("%d classes have runbooks, the test checks 3", len(runbooks))
	}
}

func TestConditions(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	jobs := []JobStatus{{JobName: "orders", ConsecutiveFailures: 2}, {JobName: "billing"}}
	var th logscan.ThrottleStatus
	reg := prometheus.NewRegistry()
	p, err := New(Options{
		PagerDuty: config.PagerDuty{URL: srv.URL, RoutingKeyFile: keyFile(t, testKey), ConsecutiveFailures: 3, ThrottleSustained: config.Duration(5 * time.Minute),
			RunbookBaseURL: "https://wiki.example.com/flink/runbooks"},
		Identity:   identity.Identity{Cluster: "c1", Namespace: "ns", Pod: "jm-0"},
		Jobs:       func() []JobStatus { mu.Lock(); defer mu.Unlock(); return append([]JobStatus(nil), jobs...) },
		Throttle:   func() logscan.ThrottleStatus { mu.Lock(); defer mu.Unlock(); return th },
		Registerer: reg,
		Clock:      func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, p.client)
	step := func(f func()) {
		mu.Lock()
		f()
		mu.Unlock()
		p.evaluate()
		waitFor(t, "queue drained", func() bool { return p.client.Pending() == 0 })
		time.Sleep(20 * time.Millisecond)
	}
	actions := func() []string {
		var out []string
		for _, a := range srv.Accepted() {
			out = append(out, a.EventAction+" "+a.DedupKey)
		}
		return out
	}

	step(func() {}) // below every threshold
	step(func() { jobs[0].ConsecutiveFailures = 3; jobs[0].LastFailure = "Checkpoint expired before completing." })
	step(func() { jobs[0].ConsecutiveFailures = 4 }) // still failing: no new event
	step(func() { jobs[1].Stuck = true; jobs[1].InProgressFor = 9 * time.Minute })
	// Throttling active for 4 minutes: not yet sustained.
	step(func() {
		th = logscan.ThrottleStatus{Active: true, Since: now.Add(-4 * time.Minute), Last: now, Events: 40, Buckets: map[string]int64{"b": 40}, LastMessage: "Slow Down"}
	})
	step(func() { now = now.Add(time.Minute); th.Last = now; th.Events = 50; th.Buckets["b"] = 50 })
	step(func() { jobs[0].ConsecutiveFailures = 0; jobs[1].Stuck = false; th.Active = false })

	want := []string{
		"trigger flink-agent/ns/c1/job/orders/checkpoint_failures",
		"trigger flink-agent/ns/c1/job/billing/checkpoint_stuck",
		"trigger flink-agent/ns/c1/pod/jm-0/s3_throttling",
		"resolve flink-agent/ns/c1/job/billing/checkpoint_stuck",
		"resolve flink-agent/ns/c1/job/orders/checkpoint_failures",
		"resolve flink-agent/ns/c1/pod/jm-0/s3_throttling",
	}
	if got := actions(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
	acc := srv.Accepted()
	if s := acc[0].Payload["summary"].(string); !strings.Contains(s, "3 consecutive checkpoint failures") || !strings.Contains(s, "Checkpoint expired") {
		t.Errorf("summary %q", s)
	}
	// Each trigger links its runbook under runbook_base_url; resolves link nothing.
	for i, page := range []string{"flink-checkpoint-failing.md", "flink-checkpoint-stuck.md", "flink-s3-throttling.md"} {
		want := []pdtest.Link{{Href: "https://wiki.example.com/flink/runbooks/" + page, Text: "Runbook"}}
		if !slices.Equal(acc[i].Links, want) {
			t.Errorf("%s: links %+v, want %+v", acc[i].DedupKey, acc[i].Links, want)
		}
	}
	for _, r := range acc[3:] {
		if len(r.Links) != 0 {
			t.Errorf("resolve %s carries links %+v", r.DedupKey, r.Links)
		}
	}
	if d := acc[2].Payload["custom_details"].(map[string]any); d["occurrences"] != float64(50) || d["buckets"].(map[string]any)["b"] != float64(50) {
		t.Errorf("throttling details %v", d)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP flink_agent_pagerduty_active_conditions Conditions the agent has triggered in PagerDuty and not yet resolved, by class.
# TYPE flink_agent_pagerduty_active_conditions gauge
flink_agent_pagerduty_active_conditions{class="checkpoint_failures"} 0
flink_agent_pagerduty_active_conditions{class="checkpoint_stuck"} 0
flink_agent_pagerduty_active_conditions{class="s3_throttling"} 0
`), "flink_agent_pagerduty_active_conditions"); err != nil {
		t.Error(err)
	}
}

func TestNewerEventSupersedesWaiting(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	c := fastClient(t, srv, testKey, prometheus.NewRegistry())
	c.Enqueue(trigger("flink-agent/k", "s"))
	c.Enqueue(Event{EventAction: ActionResolve, DedupKey: "flink-agent/k"})
	runClient(t, c)
	waitFor(t, "delivery", func() bool { return len(srv.Accepted()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if a := srv.Accepted(); len(a) != 1 || a[0].EventAction != "resolve" {
		t.Errorf("delivered %+v, want only the resolve", a)
	}
	if n := testutil.ToFloat64(c.events.WithLabelValues("trigger", "superseded")); n != 1 {
		t.Errorf("superseded %v", n)
	}
}

// TestRateLimit: a burst of distinct events leaves no faster than the
// token bucket allows, and the API's 120/min limit is never hit.
func TestRateLimit(t *testing.T) {
	srv := pdtest.Start()
	defer srv.Close()
	c, err := NewClient(ClientOptions{URL: srv.URL, RoutingKeyFile: keyFile(t, testKey), PerMinute: 600, Burst: 500})
	if err != nil {
		t.Fatal(err)
	}
	// Asking for more than the API allows is clamped to ≤ 120 a minute.
	burst, perSecond := float64(c.lim.Burst()), float64(c.lim.Limit())
	if burst+perSecond*60 > APILimitPerMinute {
		t.Fatalf("bucket allows %v a minute", burst+perSecond*60)
	}
	for i := 0; i < 200; i++ {
		c.Enqueue(trigger("flink-agent/k"+string(rune('a'+i%26))+strings.Repeat("x", i/26), "s"))
	}
	start := time.Now()
	runClient(t, c)
	time.Sleep(2 * time.Second)
	elapsed := time.Since(start).Seconds()
	allowed := burst + perSecond*elapsed
	if n := float64(srv.Requests()); n > allowed+1 || n < burst {
		t.Errorf("%v requests in %.1fs, bucket allows %.1f", n, elapsed, allowed)
	}
	if srv.OverLimit() != 0 {
		t.Errorf("%d requests over the API limit", srv.OverLimit())
	}
}

func TestRoutingKeyFileErrors(t *testing.T) {
	if _, err := NewClient(ClientOptions{RoutingKeyFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing key file accepted")
	}
	if _, err := NewClient(ClientOptions{RoutingKeyFile: keyFile(t, "  ")}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty key file: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without routing_key_file accepted")
	}
}

func TestDedupKey(t *testing.T) {
	if k := DedupKey("ns", "c/1", "job", ""); k != "flink-agent/ns/c_1/job/_" {
		t.Errorf("DedupKey = %q", k)
	}
	long := DedupKey("ns", "c1", "job", strings.Repeat("é", 400), "checkpoint_failures")
	if utf8.RuneCountInString(long) > MaxDedupKey || !utf8.ValidString(long) || long != DedupKey("ns", "c1", "job", strings.Repeat("é", 400), "checkpoint_failures") {
		t.Errorf("long key %q", long)
	}
	if other := DedupKey("ns", "c1", "job", strings.Repeat("é", 400), "checkpoint_stuck"); other == long {
		t.Error("two conditions share a truncated key")
	}
}

func TestJobsFromWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	now := t0
	w := checkpointwatch.New(checkpointwatch.Options{StuckRatio: 0.8, Clock: func() time.Time { return now }})
	w.SetConfig("b1", checkpointwatch.Config{Enabled: true, Interval: time.Minute, Timeout: 100 * time.Second})
	w.ObserveREST(checkpointwatch.Job{ID: "a1", Name: "a"}, checkpointwatch.Snapshot{}, checkpointwatch.ObserveOptions{Baseline: true})
	w.ObserveREST(checkpointwatch.Job{ID: "b1", Name: "b"}, checkpointwatch.Snapshot{Counts: checkpointwatch.Counts{Total: 1, InProgress: 1},
		History: []checkpointwatch.Checkpoint{{ID: 1, Status: checkpointwatch.InProgress, Trigger: t0, Duration: -1}}}, checkpointwatch.ObserveOptions{Baseline: true})
	for id := int64(1); id <= 4; id++ {
		w.ObserveLogFailed("a1", id, t0, "", "Checkpoint expired before completing.", false)
	}
	now = t0.Add(90 * time.Second)
	jobs := JobsFromWatch(w.Statuses, func(job string) string {
		if job == "a" {
			return "msg of " + job
		}
		return ""
	})()
	by := map[string]JobStatus{}
	for _, j := range jobs {
		by[j.JobName] = j
	}
	if a := by["a"]; a.ConsecutiveFailures != 4 || a.Stuck || a.LastFailure != "msg of a" || a.JobID != "a1" {
		t.Errorf("a = %+v", a)
	}
	if b := by["b"]; !b.Stuck || b.InProgressFor != 90*time.Second || b.LastFailure != "" {
		t.Errorf("b = %+v", b)
	}
}

// A 429 whose Retry-After is an HTTP-date (RFC 9110) is waited out, not
// retried after the much shorter backoff.
func TestRetryAfterHTTPDate(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", time.Now().Add(3*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"success","message":"Event processed"}`))
	}))
	defer srv.Close()
	c, err := NewClient(ClientOptions{URL: srv.URL, RoutingKeyFile: keyFile(t, testKey),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	c.Enqueue(trigger("flink-agent/k", "s"))
	waitFor(t, "the retry", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == 2 })
	mu.Lock()
	gap := times[1].Sub(times[0])
	mu.Unlock()
	// The date has whole seconds: the wait is between 2 and 3 s.
	if gap < 1900*time.Millisecond {
		t.Errorf("retried after %s, before the Retry-After date", gap)
	}
}
