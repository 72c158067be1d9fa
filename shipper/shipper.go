// Package shipper tails Flink's log files and ships every event to Loki,
// exactly once while the agent and Loki behave and at least once when
// either fails.
//
// The guarantee rests on one rule: a file's position in the positions file
// moves only when Loki has acknowledged every event before it. Reading is
// paused (backpressure) when Loki is slow instead of dropping, files are
// kept open until read to their end so that rotation and deletion lose
// nothing, and a copytruncate copy is recognised by its leading bytes so
// that reading resumes in the copy where it stopped in the original.
//
// Pipeline: one reader goroutine discovers and reads files, groups lines
// into events (log4j multiline or one JSON object per line), redacts them,
// counts them, hands them to observers, and appends them to a batch; one
// sender goroutine encodes each batch (protobuf + snappy), pushes it with
// retries, and on acknowledgement advances and saves the positions.
package shipper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/shipper/loki"
)

// Options configure a Shipper.
type Options struct {
	Logs     config.Logs
	Loki     config.Loki
	Identity identity.Identity
	// Registerer receives the shipper's metrics; required (never the
	// default registry).
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client // nil: DogStatsD disabled
	Logger     *slog.Logger
	// Observers see every event after grouping and redaction.
	Observers []Observer
	// DrainTimeout bounds the shutdown: after ctx ends, reading stops, the
	// batches in memory are pushed and acknowledged for at most this
	// long, then the positions are saved. Default 10s.
	DrainTimeout time.Duration
	// OnFirstPass is called once, after the first discovery and read pass.
	OnFirstPass func()
	// UserAgent for Loki requests; default "flink-agent".
	UserAgent string
}

// Event is one log record after multiline grouping and redaction.
type Event struct {
	Time      time.Time // from the line; the read time when it has none
	Line      []byte    // the whole event, lines joined by '\n'; valid only during Observe
	Level     string    // lower-case (info, warn, …); "" when unknown
	Logger    string
	Thread    string
	File      string // path of the file it was read from
	Component string // jobmanager, taskmanager or ""
}

// Observer analyses events. Observe is called synchronously on the reader
// goroutine, so it must be fast, and must not retain ev.Line (copy it).
// The string fields may be kept.
type Observer interface {
	Observe(ev *Event)
}

// HeaderObserver is an Observer that also sees each log4j event's first line
// as soon as it is read, before continuation lines and the multiline idle
// flush (logs.multiline.idle_timeout) complete the event: a sub-second signal
// for one-line records such as Flink's checkpoint lifecycle. ev.Line is that
// first line, not yet redacted, so nothing derived from it may leave the
// process; the full event still reaches Observe.
type HeaderObserver interface {
	Observer
	ObserveHeader(ev *Event)
}

const (
	readBufSize   = 128 << 10 // per open file; longer lines are read in pieces
	maxPerRound   = 1 << 20   // bytes read from one file before visiting the others
	maxOpenFiles  = 1000      // file descriptors held for tailing
	entryOverhead = 96        // bytes of memory per buffered entry besides its line
	maxExceptions = 100       // distinct exception label values per component
	internCap     = 4096      // distinct logger and thread names kept as strings
)

// Shipper tails files and ships their events.
type Shipper struct {
	opts      Options
	log       *slog.Logger
	m         *metrics
	red       *redactor
	client    *loki.Client // nil: loki.url empty, nothing is pushed
	globs     []string
	json      bool
	startRE   *regexp.Regexp // nil: the built-in log4j timestamp check
	maxEvent  int
	idle      time.Duration
	poll      time.Duration
	sync      time.Duration
	batchSize int
	batchWait time.Duration
	extLabels string

	// Reader state (reader goroutine only, unless noted).
	ctx        context.Context
	ts         tsParser
	loggers    interner
	threads    interner
	event      Event
	hdrObs     []HeaderObserver
	hdrEvent   Event
	nowNano    int64
	now        time.Time
	groupBusy  []bool
	cur        *batch
	firstPass  bool
	scanWanted atomic.Bool
	notify     chan struct{}
	tailBytes  int64

	// Registry: changed by the reader under regMu, read by the savers.
	regMu      sync.Mutex
	files      []*tfile // in read order (gen)
	byID       map[devIno]*tfile
	groups     map[string]*group
	clocks     map[string]*streamClock // by stream labels
	groupList  []*group
	nextGen    uint64
	firstStart bool
	openFiles  int
	cands      []cand
	candIdx    map[devIno]int
	finishing  []*tfile

	// Metrics aggregation (reader goroutine).
	comps       []string
	compIdx     map[string]int
	lineCounts  []int64 // [comp*numLevels+level], not yet added to the metrics
	lineMetrics []prometheus.Counter
	excs        []map[string]*excCount
	lastMetrics time.Time

	// Pipeline between reader and sender.
	budget  budget
	queue   *batchQueue
	pool    chan *batch
	lagMu   sync.Mutex
	lagFIFO []int64 // read time of the first entry of every unacknowledged batch
	sent    chan struct{}

	// Positions.
	posPath    string
	pw         *positionsWriter
	saveMu     sync.Mutex
	posBuf     []posEntry
	posVersion atomic.Int64
	posSaved   int64

	loggedReject sync.Map // reason → struct{}: each rejection reason is logged once
}

type excCount struct {
	prom    prometheus.Counter
	pending int64
	tag     string
}

// New validates the options and prepares the shipper; it fails on what
// would fail later anyway: an unwritable positions directory, unreadable
// credential or TLS files, invalid labels.
func New(opts Options) (*Shipper, error) {
	if opts.Registerer == nil {
		return nil, errors.New("shipper: Options.Registerer is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "flink-agent"
	}
	lc, kc := opts.Logs, opts.Loki
	def := config.Default()
	s := &Shipper{
		opts:       opts,
		log:        opts.Logger.With("component", "shipper"),
		globs:      lc.Paths,
		json:       lc.Multiline.Mode == "json",
		maxEvent:   int(orDefault(int64(lc.Multiline.MaxEventBytes), int64(def.Logs.Multiline.MaxEventBytes))),
		idle:       orDefaultD(lc.Multiline.IdleTimeout.D(), def.Logs.Multiline.IdleTimeout.D()),
		poll:       orDefaultD(lc.PollInterval.D(), def.Logs.PollInterval.D()),
		sync:       orDefaultD(lc.SyncPeriod.D(), def.Logs.SyncPeriod.D()),
		batchSize:  int(orDefault(int64(kc.BatchBytes), int64(def.Loki.BatchBytes))),
		batchWait:  orDefaultD(kc.BatchWait.D(), def.Loki.BatchWait.D()),
		ts:         tsParser{loc: time.Local},
		loggers:    newInterner(internCap),
		threads:    newInterner(internCap),
		notify:     make(chan struct{}, 1),
		byID:       map[devIno]*tfile{},
		groups:     map[string]*group{},
		clocks:     map[string]*streamClock{},
		candIdx:    map[devIno]int{},
		compIdx:    map[string]int{},
		posPath:    lc.PositionsFile,
		queue:      newBatchQueue(),
		pool:       make(chan *batch, maxQueued+2),
		sent:       make(chan struct{}),
		firstStart: true,
	}
	if lc.Multiline.Mode != "" && lc.Multiline.Mode != "log4j" && lc.Multiline.Mode != "json" {
		return nil, fmt.Errorf("logs.multiline.mode: %q is not log4j or json", lc.Multiline.Mode)
	}
	if p := lc.Multiline.StartPattern.Regexp; p != nil && p.String() != def.Logs.Multiline.StartPattern.String() {
		s.startRE = p
	}
	if s.maxEvent < 1024 {
		return nil, errors.New("logs.multiline.max_event_bytes: must be at least 1KiB")
	}
	maxBuf := orDefault(int64(lc.MaxBufferBytes), int64(def.Logs.MaxBufferBytes))
	if maxBuf < int64(s.batchSize)+int64(s.maxEvent)+entryOverhead {
		return nil, fmt.Errorf("logs.max_buffer_bytes: %d is less than loki.batch_bytes plus one maximal event (%d)", maxBuf, s.batchSize+s.maxEvent)
	}
	s.budget = budget{max: maxBuf, freed: make(chan struct{}, 1)}
	var err error
	if s.m, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("shipper metrics: %w", err)
	}
	s.red = newRedactor(lc.Redaction, s.m)
	if s.extLabels, err = externalLabels(kc.ExternalLabels); err != nil {
		return nil, err
	}
	if kc.URL != "" {
		if s.client, err = loki.New(kc, opts.UserAgent); err != nil {
			return nil, err
		}
	}
	if len(s.globs) > 0 {
		if s.posPath == "" {
			return nil, errors.New("logs.positions_file: must be set when logs.paths is")
		}
		if err := checkPositionsDir(s.posPath); err != nil {
			return nil, err
		}
		entries, seq, err := loadPositions(s.posPath)
		s.pw = newPositionsWriter(s.posPath, seq)
		switch {
		case errors.Is(err, errPositionsCorrupt):
			// Losing nothing beats shipping nothing twice: every file is
			// read again from its start, rotated ones included.
			s.log.Error("positions file unusable; every log file will be shipped again from its start (duplicates in Loki)", "err", err)
			s.firstStart = false
		case err != nil:
			return nil, err
		case entries != nil:
			s.firstStart = false
			s.restore(entries)
		}
	}
	for _, o := range opts.Observers {
		if h, ok := o.(HeaderObserver); ok {
			s.hdrObs = append(s.hdrObs, h)
		}
	}
	for _, g := range s.globs {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, fmt.Errorf("logs.paths: invalid glob %q", g)
		}
	}
	return s, nil
}

func orDefault(v, d int64) int64 {
	if v <= 0 {
		return d
	}
	return v
}

func orDefaultD(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// builtinLabels are set by the shipper; external labels cannot replace them.
var builtinLabels = []string{"cluster", "namespace", "pod", "component", "container", "filename"}

func externalLabels(m map[string]string) (string, error) {
	var b strings.Builder
	keys := make([]string, 0, len(m))
	for k := range m {
		if !labelName.MatchString(k) {
			return "", fmt.Errorf("loki.external_labels: invalid label name %q", k)
		}
		for _, bl := range builtinLabels {
			if k == bl {
				return "", fmt.Errorf("loki.external_labels: %q is set by the agent", k)
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + strconv.Quote(m[k]) + "\x00")
	}
	return b.String(), nil
}

// streamLabels renders a group's Loki labels, sorted by name.
func (s *Shipper) streamLabels(component, filename string) string {
	id := s.opts.Identity
	type kv struct{ k, v string }
	all := []kv{
		{"cluster", id.Cluster}, {"namespace", id.Namespace}, {"pod", id.Pod},
		{"component", component}, {"container", s.opts.Logs.Container}, {"filename", filename},
	}
	for _, e := range strings.Split(s.extLabels, "\x00") {
		if k, v, ok := strings.Cut(e, "="); ok {
			u, _ := strconv.Unquote(v)
			all = append(all, kv{k, u})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].k < all[j].k })
	var b strings.Builder
	b.WriteByte('{')
	for _, e := range all {
		if e.v == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(", ")
		}
		b.WriteString(e.k + "=" + strconv.Quote(e.v))
	}
	b.WriteByte('}')
	return b.String()
}

// component returns the index of a component name in the metric caches.
func (s *Shipper) component(name string) int {
	if i, ok := s.compIdx[name]; ok {
		return i
	}
	i := len(s.comps)
	s.comps = append(s.comps, name)
	s.compIdx[name] = i
	for l := 0; l < numLevels; l++ {
		s.lineCounts = append(s.lineCounts, 0)
		s.lineMetrics = append(s.lineMetrics, s.m.lines.WithLabelValues(name, levelNames[l]))
	}
	s.excs = append(s.excs, map[string]*excCount{})
	return i
}

// Run tails until ctx ends, then drains (see Options.DrainTimeout). It
// returns nil after a clean drain; errors after startup are logged,
// counted and retried, never returned.
func (s *Shipper) Run(ctx context.Context) error {
	s.ctx = ctx
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	go s.sendLoop(sendCtx)
	hkDone := make(chan struct{})
	hkCtx, stopHK := context.WithCancel(context.Background())
	go s.housekeeping(hkCtx, hkDone)
	w := s.startWatcher()
	defer w.close()

	var nextScan time.Time
	for ctx.Err() == nil {
		now := time.Now()
		s.now, s.nowNano = now, now.UnixNano()
		if s.scanWanted.Swap(false) || !now.Before(nextScan) {
			w.ensure(s.globs)
			s.scanFull()
			nextScan = now.Add(s.poll)
		}
		progress, err := s.readRound()
		if err != nil {
			break // stopping while waiting for memory
		}
		s.firePass()
		deadline := nextScan
		if d, ok := s.flushIdle(now); ok && d.Before(deadline) {
			deadline = d
		}
		if s.cur != nil && len(s.cur.ents) > 0 {
			d := time.Unix(0, s.cur.first).Add(s.batchWait)
			if !now.Before(d) {
				if s.handoff() != nil {
					break
				}
			} else if d.Before(deadline) {
				deadline = d
			}
		}
		if now.Sub(s.lastMetrics) >= 500*time.Millisecond {
			s.flushMetrics()
			s.lastMetrics = now
		}
		if progress {
			continue
		}
		if d := s.lastMetrics.Add(time.Second); d.Before(deadline) {
			deadline = d
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
		case <-s.notify:
		case <-t.C:
		}
		t.Stop()
	}

	// Drain: stop reading, push what is in memory, wait for the
	// acknowledgements (bounded), save the positions durably.
	drainTimer := time.AfterFunc(s.opts.DrainTimeout, cancelSend)
	defer drainTimer.Stop()
	if s.cur != nil && len(s.cur.ents) > 0 {
		s.queue.push(s.cur) // the sender discards it once the drain deadline passed
		s.cur = nil
	}
	s.queue.close()
	<-s.sent
	if sendCtx.Err() != nil && s.client != nil {
		s.log.Warn("drain timeout: unacknowledged log events will be read again after restart", "timeout", s.opts.DrainTimeout)
	}
	s.flushMetrics()
	stopHK()
	<-hkDone
	if s.pw != nil {
		if err := s.savePositions(true); err != nil {
			s.log.Error("saving positions at shutdown failed", "err", err)
		}
	}
	s.regMu.Lock()
	for _, t := range s.files {
		t.close()
	}
	s.regMu.Unlock()
	if s.pw != nil {
		s.pw.close()
	}
	return nil
}

func (s *Shipper) firePass() {
	if s.firstPass {
		return
	}
	s.firstPass = true
	if s.opts.OnFirstPass != nil {
		s.opts.OnFirstPass()
	}
}

func (s *Shipper) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// housekeeping saves the positions durably every sync period and publishes
// the lag gauges.
func (s *Shipper) housekeeping(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	syncT := time.NewTicker(s.sync)
	defer syncT.Stop()
	lagT := time.NewTicker(time.Second)
	defer lagT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-syncT.C:
			if s.pw != nil && s.posVersion.Load() != s.posSaved {
				if err := s.savePositions(true); err != nil {
					s.log.Error("saving positions failed", "err", err)
				}
			}
		case <-lagT.C:
			if debugOn {
				s.regMu.Lock()
				for _, t := range s.files {
					dbg("state", t.path, t.id.ino, "st", t.state, "live", t.live, "gone", t.gone, "gen", t.gen, "read", t.readOff, "size", t.size, "committed", t.committed.Load(), "handed", t.handed, "fd", t.f != nil, "evLines", t.evLines, "bufN", t.bufN)
				}
				s.regMu.Unlock()
			}
			lag := s.lag(time.Now())
			s.m.lag.Set(lag)
			s.m.buffered.Set(float64(s.budget.inUse()))
			s.opts.Statsd.Gauge(dogstatsd.AgentLokiLag, lag)
		}
	}
}

// lag is the age in seconds of the oldest unacknowledged entry.
func (s *Shipper) lag(now time.Time) float64 {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if len(s.lagFIFO) == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, s.lagFIFO[0])).Seconds()
}

// savePositions writes every known file's acknowledged offset.
func (s *Shipper) savePositions(durable bool) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	v := s.posVersion.Load()
	s.regMu.Lock()
	s.posBuf = s.posBuf[:0]
	for _, t := range s.files {
		if !t.saved() {
			continue
		}
		s.posBuf = append(s.posBuf, posEntry{
			Path: t.path, Dev: t.id.dev, Inode: t.id.ino,
			Fingerprint: t.fp.hex(), FPBytes: t.fp.n, Offset: t.committed.Load(),
		})
	}
	s.regMu.Unlock()
	if err := s.pw.write(s.posBuf, durable); err != nil {
		return err
	}
	if durable {
		s.posSaved = v
	}
	return nil
}

// observeHeader hands t's just-begun event to the header observers.
func (s *Shipper) observeHeader(t *tfile) {
	ev := &s.hdrEvent
	ts := t.evTS
	if ts == 0 {
		ts = s.nowNano
	}
	ev.Time = time.Unix(0, ts)
	ev.Line = t.ev
	ev.Level = levelNames[t.evHdr.level]
	ev.File, ev.Component = t.path, t.g.compName
	for _, o := range s.hdrObs {
		o.ObserveHeader(ev)
	}
	ev.Line = nil
}

// flushMetrics adds the reader's local counts to the metrics.
func (s *Shipper) flushMetrics() {
	if s.tailBytes > 0 {
		s.m.tailBytes.Add(float64(s.tailBytes))
		s.tailBytes = 0
	}
	for i, n := range s.lineCounts {
		if n == 0 {
			continue
		}
		s.lineCounts[i] = 0
		s.lineMetrics[i].Add(float64(n))
		if s.opts.Statsd.Enabled() {
			comp := s.comps[i/numLevels]
			tags := []string{"level:" + levelNames[i%numLevels]}
			if s.opts.Identity.Component == "" && comp != "" {
				tags = append(tags, dogstatsd.Tag("component", comp))
			}
			s.opts.Statsd.Count(dogstatsd.LogLines, n, tags...)
		}
	}
	for ci, m := range s.excs {
		for _, e := range m {
			if e.pending == 0 {
				continue
			}
			if s.opts.Statsd.Enabled() {
				tags := []string{e.tag}
				if comp := s.comps[ci]; s.opts.Identity.Component == "" && comp != "" {
					tags = append(tags, dogstatsd.Tag("component", comp))
				}
				s.opts.Statsd.Count(dogstatsd.LogExceptions, e.pending, tags...)
			}
			e.pending = 0
		}
	}
	s.m.tailFiles.Set(float64(s.openFiles))
	s.m.buffered.Set(float64(s.budget.inUse()))
}

// countException counts one event's top-level exception class.
func (s *Shipper) countException(comp int, class []byte) {
	m := s.excs[comp]
	e, ok := m[string(class)]
	if !ok {
		name := string(class)
		if len(m) >= maxExceptions {
			name = "other"
			if e, ok = m[name]; ok {
				goto count
			}
		}
		e = &excCount{prom: s.m.exceptions.WithLabelValues(s.comps[comp], name), tag: dogstatsd.Tag("exception", name)}
		m[name] = e
	}
count:
	e.prom.Inc()
	e.pending++
}

// interner turns logger and thread names into strings once: the hot path
// looks them up without allocating.
type interner struct {
	m   map[string]string
	max int
	// A direct-mapped cache in front of the map: a comparison of a few
	// dozen bytes instead of hashing the whole name, and most events
	// come from a handful of loggers.
	recent [256]string
}

func newInterner(max int) interner { return interner{m: make(map[string]string), max: max} }

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	n := len(b)
	slot := (n*7 ^ int(b[n-1])<<1 ^ int(b[n/2])<<3 ^ int(b[n*3/4])<<2) & 255
	if s := in.recent[slot]; s == string(b) {
		return s
	}
	s, ok := in.m[string(b)]
	if !ok {
		s = string(b)
		if len(in.m) < in.max {
			in.m[s] = s
		}
	}
	in.recent[slot] = s
	return s
}
