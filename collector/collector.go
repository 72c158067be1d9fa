// Package collector scrapes the Flink REST API of the JobManager it runs
// beside and exports what it finds as Prometheus metrics and DogStatsD
// signals; checkpoints go through checkpointwatch.
//
// REST economy: a steady-state scrape makes 3 + 2·(running jobs) requests
// (/jobs/overview, /jobmanager/metrics, one aggregated
// /taskmanagers/metrics, and per job /jobs/:id and /jobs/:id/checkpoints),
// whatever the parallelism. Configuration is read once per job id, details
// only for new failed or slow checkpoints, exceptions only when a job
// restarted.
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
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
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
	// SampleDetails picks checkpoints, beyond new failures and slow ones,
	// whose per-vertex details are fetched and sent to the sinks as
	// CheckpointDetails (checkpointwatch.ObserveOptions.Sample).
	SampleDetails func(checkpointwatch.JobRef, checkpointwatch.Checkpoint) bool
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
	failing     bool
	jobs        map[string]*jobState // by job id
	names       map[string]bool      // job names with series last scrape
	gcPrev      map[string]float64   // component → GC ms, for DogStatsD deltas
	cpScratch   []checkpointwatch.Checkpoint
	tmPath      string // the aggregated TaskManager request, once its names are known
	finalWindow time.Duration

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
		opts: opts, log: opts.Logger, sd: opts.Statsd, c: cl,
		watch:  opts.Watch,
		jobs:   map[string]*jobState{},
		names:  map[string]bool{},
		gcPrev: map[string]float64{},
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
	d := time.Since(start).Seconds()
	c.up.Set(b2f(ok))
	c.duration.Set(d)
	c.sd.Gauge(dogstatsd.Up, b2f(ok))
	c.sd.Gauge(dogstatsd.ScrapeDuration, d)
	if s.overviewOK {
		s.emitStatsd()
	}
	switch {
	case !ok && !c.failing:
		c.failing = true
		c.log.Warn("Flink REST scrape failed: flink_up is 0 until it succeeds (further failures are logged at debug level)", "url", c.c.base, "err", err)
	case !ok:
		c.log.Debug("Flink REST scrape failed", "err", err)
	case c.failing:
		c.failing = false
		c.log.Info("Flink REST scrape succeeds again", "url", c.c.base)
	}
	if c.opts.OnScrape != nil {
		c.opts.OnScrape(ok)
	}
	return err
}

// scrape is the state of one scrape.
type scrape struct {
	c          *Collector
	ctx        context.Context
	snap       *snapshot
	errs       []error
	overviewOK bool
	owned      map[string]bool // job names whose per-name gauges are taken
}

func (s *scrape) fail(err error) {
	if err != nil {
		s.errs = append(s.errs, err)
	}
}

func (s *scrape) run() error {
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
				s.finalCheckpoints(j, js)
				active = append(active, j.ID)
			}
			continue
		}
		active = append(active, j.ID)
		names[j.Name] = true
		s.job(j)
	}
	s.c.watch.Retain(active)
	s.forget(active, names)
	return errors.Join(s.errs...)
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
