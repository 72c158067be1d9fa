package pager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/excerpt"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/logscan"
)

// Condition classes: payload.class and the last part of the dedup_key.
const (
	ClassCheckpointFailures = "checkpoint_failures"
	ClassCheckpointStuck    = "checkpoint_stuck"
	ClassS3Throttling       = "s3_throttling"
)

// runbooks are each class's page in docs/runbooks: the one the alert rule
// for the same condition links (FlinkCheckpointFailing,
// FlinkCheckpointStuck, FlinkS3Throttling).
var runbooks = map[string]string{
	ClassCheckpointFailures: "flink-checkpoint-failing.md",
	ClassCheckpointStuck:    "flink-checkpoint-stuck.md",
	ClassS3Throttling:       "flink-s3-throttling.md",
}

// JobStatus is a job's checkpoint state as the agent sees it.
type JobStatus struct {
	JobName string
	JobID   string // "" when unknown
	// ConsecutiveFailures counts failures since the latest completed
	// checkpoint (flink_checkpoint_consecutive_failures).
	ConsecutiveFailures int
	LastFailure         string // Flink's failure message, "" when unknown
	Stuck               bool   // flink_checkpoint_stuck
	// InProgressFor is the age of the oldest in-progress checkpoint.
	InProgressFor time.Duration
}

// Options configure a Pager.
type Options struct {
	// PagerDuty is the pagerduty config section: url, routing_key_file,
	// consecutive_failures, throttle_sustained, runbook_base_url.
	PagerDuty config.PagerDuty
	Identity  identity.Identity
	// Jobs returns every job's checkpoint state (JobsFromGatherer reads it
	// from the agent's own metrics). nil: no checkpoint conditions.
	Jobs func() []JobStatus
	// Throttle returns the current S3 throttling burst (a
	// logscan.Scanner's Throttling). nil: no throttling condition.
	Throttle func() logscan.ThrottleStatus
	// Interval between evaluations; default 10 s.
	Interval   time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	HTTPClient *http.Client
	// Client overrides delivery settings (backoff, rate); its URL and
	// RoutingKeyFile default to PagerDuty's.
	Client ClientOptions
	Clock  func() time.Time
}

// Pager evaluates the paging conditions and sends triggers and resolves.
type Pager struct {
	client    *Client
	id        identity.Identity
	source    string
	threshold int
	sustained time.Duration
	runbooks  string // runbook_base_url, "" for no links
	jobs      func() []JobStatus
	throttle  func() logscan.ThrottleStatus
	interval  time.Duration
	clock     func() time.Time
	log       *slog.Logger
	activeG   *prometheus.GaugeVec

	mu     sync.Mutex
	active map[string]string // dedup_key → class of conditions currently triggered
}

// New checks the options and reads the routing key: a missing or empty key
// file is a startup error.
func New(o Options) (*Pager, error) {
	pd := o.PagerDuty
	if pd.RoutingKeyFile == "" {
		return nil, errors.New("pagerduty.routing_key_file: not set")
	}
	// config.Validate checked these; zero here is a wiring mistake.
	if pd.ConsecutiveFailures < 1 || pd.ThrottleSustained <= 0 {
		return nil, errors.New("pager: pagerduty.consecutive_failures and throttle_sustained must be validated settings")
	}
	co := o.Client
	if co.URL == "" {
		co.URL = pd.URL
	}
	if co.RoutingKeyFile == "" {
		co.RoutingKeyFile = pd.RoutingKeyFile
	}
	if co.Registerer == nil {
		co.Registerer = o.Registerer
	}
	if co.Logger == nil {
		co.Logger = o.Logger
	}
	if co.HTTPClient == nil {
		co.HTTPClient = o.HTTPClient
	}
	c, err := NewClient(co)
	if err != nil {
		return nil, err
	}
	p := &Pager{
		client:    c,
		id:        o.Identity,
		threshold: pd.ConsecutiveFailures,
		sustained: pd.ThrottleSustained.D(),
		runbooks:  pd.RunbookBaseURL,
		jobs:      o.Jobs,
		throttle:  o.Throttle,
		interval:  o.Interval,
		clock:     o.Clock,
		log:       o.Logger,
		active:    map[string]string{},
		activeG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_agent_pagerduty_active_conditions",
			Help: "Conditions the agent has triggered in PagerDuty and not yet resolved, by class.",
		}, []string{"class"}),
	}
	if p.interval <= 0 {
		p.interval = 10 * time.Second
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.source = sourceName(o.Identity)
	if o.Registerer != nil {
		if err := o.Registerer.Register(p.activeG); err != nil {
			return nil, fmt.Errorf("pager metrics: %w", err)
		}
	}
	for _, cl := range []string{ClassCheckpointFailures, ClassCheckpointStuck, ClassS3Throttling} {
		p.activeG.WithLabelValues(cl)
	}
	return p, nil
}

func sourceName(id identity.Identity) string {
	switch {
	case id.Pod != "" && id.Namespace != "":
		return id.Namespace + "/" + id.Pod
	case id.Pod != "":
		return id.Pod
	case id.Cluster != "":
		return id.Cluster
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "flink-agent"
}

func (p *Pager) cluster() string {
	if p.id.Cluster != "" {
		return p.id.Cluster
	}
	return "flink"
}

// Run evaluates every interval and delivers events until ctx ends.
func (p *Pager) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.client.Run(ctx)
	}()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	p.evaluate()
	for {
		select {
		case <-ctx.Done():
			<-done
			return nil
		case <-t.C:
			p.evaluate()
		}
	}
}

type alert struct {
	class    string
	severity string
	summary  string
	details  map[string]any
}

// evaluate compares the conditions with what is triggered and queues the
// triggers and resolves that differ.
func (p *Pager) evaluate() {
	now := p.clock()
	want := map[string]alert{}
	if p.jobs != nil {
		for _, j := range p.jobs() {
			p.jobAlerts(j, want)
		}
	}
	if p.throttle != nil {
		if st := p.throttle(); st.Active && now.Sub(st.Since) >= p.sustained {
			k := DedupKey(p.id.Namespace, p.cluster(), "pod", orDash(p.id.Pod), ClassS3Throttling)
			want[k] = p.throttleAlert(st, now)
		}
	}

	p.mu.Lock()
	var triggers, resolves []string
	for k := range want {
		if _, ok := p.active[k]; !ok {
			triggers = append(triggers, k)
			p.active[k] = want[k].class
		}
	}
	for k, class := range p.active {
		if _, ok := want[k]; !ok {
			resolves = append(resolves, k)
			delete(p.active, k)
			_ = class
		}
	}
	counts := map[string]int{ClassCheckpointFailures: 0, ClassCheckpointStuck: 0, ClassS3Throttling: 0}
	for _, class := range p.active {
		counts[class]++
	}
	p.mu.Unlock()
	for class, n := range counts {
		p.activeG.WithLabelValues(class).Set(float64(n))
	}

	sort.Strings(triggers)
	sort.Strings(resolves)
	ts := now.UTC().Format(time.RFC3339)
	for _, k := range triggers {
		a := want[k]
		p.log.Warn("paging: condition started", "dedup_key", k, "summary", a.summary)
		p.client.Enqueue(Event{
			EventAction: ActionTrigger,
			DedupKey:    k,
			Client:      "flink-agent",
			Payload: &Payload{
				Summary:       excerpt.Runes(a.summary, MaxSummary),
				Source:        p.source,
				Severity:      a.severity,
				Timestamp:     ts,
				Component:     componentOf(a.class),
				Group:         p.cluster(),
				Class:         a.class,
				CustomDetails: a.details,
			},
			Links: p.links(a.class),
		})
	}
	for _, k := range resolves {
		p.log.Info("paging: condition cleared, resolving", "dedup_key", k)
		p.client.Enqueue(Event{EventAction: ActionResolve, DedupKey: k, Client: "flink-agent"})
	}
}

// links is a trigger's runbook link: the class's page under
// runbook_base_url, with or without its trailing slash.
func (p *Pager) links(class string) []Link {
	if p.runbooks == "" {
		return nil
	}
	return []Link{{Href: strings.TrimSuffix(p.runbooks, "/") + "/" + runbooks[class], Text: "Runbook"}}
}

func componentOf(class string) string {
	if class == ClassS3Throttling {
		return "s3"
	}
	return "checkpoints"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (p *Pager) base() map[string]any {
	d := map[string]any{"cluster": p.cluster()}
	if p.id.Namespace != "" {
		d["namespace"] = p.id.Namespace
	}
	if p.id.Pod != "" {
		d["pod"] = p.id.Pod
	}
	return d
}

func (p *Pager) jobAlerts(j JobStatus, want map[string]alert) {
	name := j.JobName
	if name == "" {
		name = j.JobID
	}
	if name == "" {
		return
	}
	if j.ConsecutiveFailures >= p.threshold {
		d := p.base()
		d["job_name"] = j.JobName
		if j.JobID != "" {
			d["job_id"] = j.JobID
		}
		d["consecutive_failures"] = j.ConsecutiveFailures
		d["threshold"] = p.threshold
		msg := j.LastFailure
		if msg == "" {
			msg = "no failure message seen"
		}
		d["failure_message"] = excerpt.Runes(msg, 2000)
		if p.throttle != nil {
			if st := p.throttle(); st.Active {
				d["s3_throttling"] = fmt.Sprintf("%d occurrences since %s on %s", st.Events, st.Since.UTC().Format(time.RFC3339), strings.Join(st.BucketList(), ", "))
			}
		}
		want[DedupKey(p.id.Namespace, p.cluster(), "job", name, ClassCheckpointFailures)] = alert{
			class:    ClassCheckpointFailures,
			severity: SeverityCritical,
			summary: fmt.Sprintf("Flink %s job %q: %d consecutive checkpoint failures (paging threshold %d): %s",
				p.cluster(), name, j.ConsecutiveFailures, p.threshold, msg),
			details: d,
		}
	}
	if j.Stuck {
		d := p.base()
		d["job_name"] = j.JobName
		if j.JobID != "" {
			d["job_id"] = j.JobID
		}
		d["in_progress_seconds"] = int64(j.InProgressFor.Seconds())
		want[DedupKey(p.id.Namespace, p.cluster(), "job", name, ClassCheckpointStuck)] = alert{
			class:    ClassCheckpointStuck,
			severity: SeverityCritical,
			summary: fmt.Sprintf("Flink %s job %q: checkpoint stuck, in progress for %s (past flink.stuck_ratio of the checkpoint timeout)",
				p.cluster(), name, j.InProgressFor.Round(time.Second)),
			details: d,
		}
	}
}

func (p *Pager) throttleAlert(st logscan.ThrottleStatus, now time.Time) alert {
	d := p.base()
	d["buckets"] = st.Buckets
	d["occurrences"] = st.Events
	d["since"] = st.Since.UTC().Format(time.RFC3339)
	d["last_seen"] = st.Last.UTC().Format(time.RFC3339)
	d["last_message"] = st.LastMessage
	if st.LastOperation != "" {
		d["operation"] = st.LastOperation
	}
	d["component"] = st.LastComponent
	d["sustained_threshold"] = p.sustained.String()
	return alert{
		class:    ClassS3Throttling,
		severity: SeverityError,
		summary: fmt.Sprintf("Flink %s: S3 throttling for %s (%d occurrences; buckets %s): %s",
			p.cluster(), now.Sub(st.Since).Round(time.Second), st.Events, strings.Join(st.BucketList(), ", "), st.LastMessage),
		details: d,
	}
}
