// Package collector scrapes the Flink REST API of the JobManager it runs
// beside and exports what it finds as Prometheus metrics and DogStatsD
// signals; checkpoints go through checkpointwatch.
//
// REST economy: a steady-state scrape makes at most 3 + 3·(running jobs)
// requests (/jobs/overview, /jobmanager/metrics, one aggregated
// /taskmanagers/metrics, and per job /jobs/:id, /jobs/:id/checkpoints and
// one aggregated subtask-metrics request for its progress), whatever the
// parallelism. Configuration is read once per job id, details only for new
// failed or slow checkpoints, exceptions only when a job restarted; with
// traces, at most DetailBudget more per scrape for the checkpoints a sink
// sampled.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/condition"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/progress"
)

// Options configures a Collector.
type Options struct {
	Flink config.Flink
	// Registerer receives every metric; never the default registry (the
	// agent wraps it with the cluster and namespace labels).
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client // nil: DogStatsD disabled
	Logger     *slog.Logger
	// Watch is the checkpoint state machine the scrape feeds (required).
	Watch *checkpointwatch.Watch
	// OnScrape, when set, is called after each scrape (readiness).
	OnScrape func(ok bool)
	// UserAgent is sent with every request; default "flink-agent".
	UserAgent string
	// SampleDetails says how much of each finished checkpoint a sink wants
	// to see (checkpointwatch.ObserveOptions.Sample): its per-vertex
	// details, and the subtasks of its slowest vertices. They are fetched
	// and sent to the sinks as CheckpointDetails.
	SampleDetails func(checkpointwatch.JobRef, checkpointwatch.Checkpoint) checkpointwatch.Detail
	// DetailBudget bounds the requests made per scrape for SampleDetails:
	// sampled checkpoints' details and subtask details
	// (traces.max_detail_requests_per_scrape).
	DetailBudget int
	// Clock times the progress metrics (rates, watermark lag); nil: time.Now.
	Clock func() time.Time
}

// Collector scrapes Flink REST on a schedule.
type Collector struct {
	opts  Options
	log   *slog.Logger
	sd    *dogstatsd.Client
	watch *checkpointwatch.Watch
	c     *client

	up        prometheus.Gauge
	duration  prometheus.Gauge
	restarts  *prometheus.CounterVec
	snapDescs snapDescs

	scrapeMu    sync.Mutex // one scrape at a time
	hadSuccess  bool       // a scrape succeeded before: later jobs are news
	started     time.Time  // checkpoints that ended later are news at the first scrape too
	failing     *condition.Warning
	jobs        map[string]*jobState // by job id
	names       map[string]bool      // job names with series last scrape
	gcPrev      map[string]float64   // component → GC ms, for DogStatsD deltas
	excClasses  map[string]bool      // exception label values in use; under excMu
	excMu       sync.Mutex
	cpScratch   sync.Pool // *[]checkpointwatch.Checkpoint
	tmPath      string    // the aggregated TaskManager request, once its names are known
	progress    *progress.Tracker
	lateSent    map[string]float64 // job name → late records sent to DogStatsD
	finalWindow time.Duration
	// behind are the jobs the last scrape's time budget did not reach, in
	// order: the next scrape reads them first.
	behind      []string
	tooMany     *condition.Warning // more jobs than the watch keeps state for
	concurrency int                // flink.scrape_concurrency
	budget      time.Duration      // no job is started later in a scrape

	snapMu sync.RWMutex
	snap   *snapshot
}

// New builds a Collector and registers its metrics. It fails on a bad REST
// URL and on unreadable TLS or password files.
func New(opts Options) (*Collector, error) {
	if opts.Registerer == nil {
		return nil, errors.New("collector: a Registerer is required")
	}
	if opts.Watch == nil {
		return nil, errors.New("collector: a Watch is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "flink-agent"
	}
	cl, err := newClient(opts.Flink, opts.UserAgent, opts.Logger)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		started: time.Now(),
		opts:    opts, log: opts.Logger, sd: opts.Statsd, c: cl,
		watch:      opts.Watch,
		jobs:       map[string]*jobState{},
		names:      map[string]bool{},
		gcPrev:     map[string]float64{},
		excClasses: map[string]bool{},
		progress:   progress.New(opts.Clock),
		lateSent:   map[string]float64{},
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flink_up",
			Help: "1 when the last scrape got every Flink REST answer it asked for.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flink_scrape_duration_seconds",
			Help: "Duration of the last Flink REST scrape.",
		}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_job_restarts_total",
			Help: "Job restarts (global and regional failovers) seen since the agent started.",
		}, []string{"job_name"}),
		snapDescs:   newSnapDescs(),
		snap:        &snapshot{},
		finalWindow: finalWindow,
		failing:     condition.New(opts.Logger, "Flink REST scrape failing: flink_up is 0 until it succeeds"),
		concurrency: max(1, opts.Flink.ScrapeConcurrency),
		budget:      scrapeBudget(opts.Flink),
		tooMany: condition.New(opts.Logger, fmt.Sprintf("more active jobs than checkpoint state is kept for (%d): "+
			"the others are scraped but have no checkpoint series", checkpointwatch.MaxJobs)),
	}
	for _, m := range []prometheus.Collector{c.up, c.duration, c.restarts, cl.requests, cl.decodeErrors, cl.invalid, snapCollector{c}} {
		if err := opts.Registerer.Register(m); err != nil {
			return nil, fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	return c, nil
}

// Run scrapes every scrape_interval until ctx ends. Flink being down, slow
// or answering nonsense never ends it; it returns nil when ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	defer c.Close()
	t := time.NewTicker(c.opts.Flink.ScrapeInterval.D())
	defer t.Stop()
	for {
		_ = c.Scrape(ctx) // logged and counted inside
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close releases idle connections.
func (c *Collector) Close() { c.c.close() }

// Scrape runs one scrape. The error says why flink_up is 0.
func (c *Collector) Scrape(ctx context.Context) error {
	c.scrapeMu.Lock()
	defer c.scrapeMu.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Flink.ScrapeTimeout.D())
	defer cancel()

	s := &scrape{c: c, ctx: ctx, snap: &snapshot{}}
	err := s.run()
	ok := err == nil
	c.snapMu.Lock()
	if s.overviewOK {
		c.snap = s.snap
	} else {
		c.snap = &snapshot{} // Flink is unreachable: only flink_up speaks
	}
	c.snapMu.Unlock()
	if s.overviewOK {
		c.hadSuccess = true
	}
	// While Flink is unreachable, no name comes from REST: the watch
	// publishes the log's checkpoint events under the job id at once.
	c.watch.SetRESTAvailable(s.overviewOK)
	d := time.Since(start).Seconds()
	c.up.Set(b2f(ok))
	c.duration.Set(d)
	c.sd.Gauge(dogstatsd.Up, b2f(ok))
	c.sd.Gauge(dogstatsd.ScrapeDuration, d)
	if s.overviewOK {
		s.emitStatsd()
	}
	if ok {
		c.failing.OK("url", c.c.base)
	} else if !c.failing.Fail("url", c.c.base, "err", err) {
		c.log.Debug("Flink REST scrape failed", "err", err)
	}
	if c.opts.OnScrape != nil {
		c.opts.OnScrape(ok)
	}
	return err
}

// scrape is the state of one scrape. Its jobs are read by up to
// flink.scrape_concurrency goroutines: mu guards what they share.
type scrape struct {
	c          *Collector
	ctx        context.Context
	snap       *snapshot
	overviewOK bool
	owned      map[string]bool // job names whose per-name gauges are taken

	mu     sync.Mutex
	errs   []error
	wanted []detailWant // checkpoint details the watch asked for, fetched after every job
}

func (s *scrape) fail(err error) {
	if err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
	}
}

// task is one job's share of a scrape.
type task struct {
	j     *jobOverview
	js    *jobState
	owner bool // its name's per-name gauges are its own
	final bool // stopped: its last checkpoints only
}

func (s *scrape) run() error {
	start := time.Now()
	jobs, err := s.jobsOverview()
	if err != nil {
		return err
	}
	s.overviewOK = true
	s.jobManager()
	s.taskManagers()
	active := make([]string, 0, len(jobs))
	names := map[string]bool{}
	now := time.Now()
	tasks := make(map[string]task, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		js := s.c.jobs[j.ID]
		if !isActive(j.State) {
			if js != nil && (js.active || now.Before(js.finalUntil)) {
				// Its last checkpoints happened while it was running, and
				// Flink's statistics cache may show them only seconds later.
				if js.active {
					js.active, js.finalUntil = false, now.Add(s.c.finalWindow)
				}
				tasks[j.ID] = task{j: j, js: js, final: true}
				active = append(active, j.ID)
			}
			continue
		}
		active = append(active, j.ID)
		names[j.Name] = true
		if js == nil {
			// Listed at the agent's first look at Flink: what it shows is
			// the baseline, even if its checkpoints are read only later.
			js = &jobState{vertices: map[string]*vertexPrev{}, vertexNames: map[string]string{}, preexisting: !s.c.hadSuccess}
			s.c.jobs[j.ID] = js
		}
		// Two running jobs of one name share its series; the first one
		// listed owns the per-name gauges.
		tasks[j.ID] = task{j: j, js: js, owner: !s.nameTaken(j.Name)}
	}
	if len(active) > checkpointwatch.MaxJobs {
		s.c.tooMany.Fail("jobs", len(active))
	} else {
		s.c.tooMany.OK()
	}
	s.runTasks(tasks, active, start)
	s.fetchDetails()
	s.c.watch.Retain(active)
	s.c.progress.Retain(active)
	s.forget(active, names)
	return errors.Join(s.errs...)
}

// runTasks reads the jobs, the ones the last scrape did not reach first,
// flink.scrape_concurrency at a time, and starts no job after the scrape's
// time budget: those are left for the next scrape, which reads them first,
// so that every job is read however many there are. Their series stay as
// the last scrape that read them left them.
func (s *scrape) runTasks(tasks map[string]task, order []string, start time.Time) {
	queue := make([]string, 0, len(tasks))
	queued := make(map[string]bool, len(s.c.behind))
	for _, id := range s.c.behind {
		if _, ok := tasks[id]; ok && !queued[id] {
			queue, queued[id] = append(queue, id), true
		}
	}
	for _, id := range order {
		if _, ok := tasks[id]; ok && !queued[id] {
			queue = append(queue, id)
		}
	}
	deadline := start.Add(s.c.budget)
	sem := make(chan struct{}, s.c.concurrency)
	var wg sync.WaitGroup
	next := 0
	for ; next < len(queue) && time.Now().Before(deadline) && s.ctx.Err() == nil; next++ {
		t := tasks[queue[next]]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if t.final {
				s.finalCheckpoints(t.j, t.js)
			} else {
				s.job(t.j, t.js, t.owner)
			}
		}()
	}
	wg.Wait()
	s.c.behind = queue[next:]
	if len(s.c.behind) > 0 {
		s.keepBehind(tasks)
	}
}

// keepBehind carries the per-job series of the jobs this scrape did not
// reach over from the last scrape.
func (s *scrape) keepBehind(tasks map[string]task) {
	behind := make(map[string]bool, len(s.c.behind))
	for _, id := range s.c.behind {
		if t := tasks[id]; t.owner {
			behind[t.j.Name] = true
		}
	}
	s.c.snapMu.RLock()
	prev := s.c.snap
	s.c.snapMu.RUnlock()
	for _, u := range prev.uptime {
		if behind[u.name] {
			s.snap.uptime = append(s.snap.uptime, u)
		}
	}
	for _, v := range prev.vertices {
		if behind[v.job] {
			s.snap.vertices = append(s.snap.vertices, v)
		}
	}
	for _, p := range prev.progress {
		if behind[p.name] {
			s.snap.progress = append(s.snap.progress, p)
		}
	}
}

// scrapeBudget is how long into a scrape jobs are started: four fifths of
// the scrape timeout or interval, whichever is shorter, so that the jobs
// under way finish before the timeout and the scrape before the next one.
func scrapeBudget(f config.Flink) time.Duration {
	return min(f.ScrapeTimeout.D(), f.ScrapeInterval.D()) * 4 / 5
}

// scratch is a history slice to fill; the caller puts it back.
func (c *Collector) scratch() []checkpointwatch.Checkpoint {
	if p, ok := c.cpScratch.Get().(*[]checkpointwatch.Checkpoint); ok {
		return (*p)[:0]
	}
	return nil
}

// finalWindow is how long a stopped job's checkpoint statistics are still
// read: longer than Flink's statistics cache (web.refresh-interval, 3 s).
const finalWindow = 10 * time.Second

// forget drops the state of jobs that stopped running and the series of
// job names no running job has any more.
func (s *scrape) forget(active []string, names map[string]bool) {
	keep := make(map[string]bool, len(active))
	for _, id := range active {
		keep[id] = true
	}
	for id, js := range s.c.jobs {
		if !keep[id] {
			js.active = false
			if s.stillListed(id) {
				continue // terminal but listed: remembered so it is not new again
			}
			delete(s.c.jobs, id)
		}
	}
	for n := range s.c.names {
		if !names[n] {
			s.c.restarts.DeletePartialMatch(prometheus.Labels{"job_name": n})
			delete(s.c.lateSent, n)
		}
	}
	s.c.names = names
}

func (s *scrape) stillListed(id string) bool {
	for _, j := range s.snap.jobs {
		if j.id == id {
			return true
		}
	}
	return false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
