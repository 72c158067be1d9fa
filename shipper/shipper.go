// Package shipper tails Flink's log files and ships every event to Loki,
// exactly once while the agent and Loki behave and at least once when
// either fails. A file's position moves only when Loki has acknowledged
// every event before it.
//
// The data flow, one package per stage (this file wires them):
//
//	tail       finds the files, follows rotation, reads lines   (reader goroutine)
//	multiline  groups lines into events, reads time/level/logger/thread
//	redact     removes secrets
//	           → log metrics, observers (logevent.Observer: logscan)
//	loki       batches (Batcher) → Queue → Sender: push, retry     (sender goroutine)
//	positions  acknowledged offsets, saved after every batch and durably every sync period
package shipper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/shipper/internal/loki"
	"github.com/flink-agent/flink-agent/shipper/internal/multiline"
	"github.com/flink-agent/flink-agent/shipper/internal/positions"
	"github.com/flink-agent/flink-agent/shipper/internal/redact"
	"github.com/flink-agent/flink-agent/shipper/internal/tail"
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
	Logger     *slog.Logger      // nil: discard
	// Observers see every event after grouping and redaction.
	Observers []logevent.Observer
	// DrainTimeout bounds the shutdown: after ctx ends, reading stops, the
	// batches in memory are pushed and acknowledged for at most this
	// long, then the positions are saved. 0: what is not acknowledged
	// yet is read again after a restart.
	DrainTimeout time.Duration
	// OnFirstPass is called once, after the first discovery and read pass.
	OnFirstPass func()
	// OnFirstAck is called once, when Loki first acknowledges a batch:
	// the first connection and push are behind (start-up has settled).
	OnFirstAck func()
	// UserAgent for Loki requests ("flink-agent/<version>").
	UserAgent string
	// HTTPClient reaches Loki (TLS, credentials, proxy, timeout: see
	// internal/httpclient.Loki); required with loki.url.
	HTTPClient *http.Client
	// ReadCadence: CadenceCheckpoints (0) or CadenceShipping.
	ReadCadence time.Duration
}

// Shipper tails files and ships their events.
type Shipper struct {
	opts     Options
	log      *slog.Logger
	m        *metrics
	poll     time.Duration // logs.poll_interval
	idle     time.Duration // logs.multiline.idle_timeout
	sync     time.Duration // logs.sync_period
	stall    time.Duration // logs.stall_timeout
	firstAck sync.Once
	// early: what falls due this soon after a read round is done in it
	// (half the read cadence), so that scans, batch hand-offs and metric
	// flushes ride on the rounds instead of waking the agent in between.
	early time.Duration

	tail  *tail.Tailer
	lines *multiline.Parser
	red   *redact.Redactor
	queue *loki.Queue   // nil without loki.url: events are acknowledged as read
	batch *loki.Batcher // nil without loki.url
	send  *loki.Sender  // nil without loki.url
	saver *positions.Saver

	streams     map[string]*stream      // by group
	lokiStreams map[string]*loki.Stream // by labels
	extLabels   []label                 // loki.external_labels, sorted
	hdrObs      []logevent.HeaderObserver

	// The reader goroutine's.
	ctx         context.Context
	nowNano     int64
	firstPass   bool
	lastMetrics time.Time
	event       logevent.Event
	hdrEvent    logevent.Event
}

// New prepares the shipper from a validated configuration
// (config.Config.Validate); it fails on what would fail later anyway: an
// unwritable positions directory, an unreadable positions file, unreadable
// credential or TLS files.
func New(opts Options) (*Shipper, error) {
	if opts.Registerer == nil {
		return nil, errors.New("shipper: Options.Registerer is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lc, kc := opts.Logs, opts.Loki
	s := &Shipper{
		opts:        opts,
		log:         opts.Logger.With("component", "shipper"),
		poll:        lc.PollInterval.D(),
		early:       cmp.Or(opts.ReadCadence, CadenceCheckpoints) / 2,
		idle:        lc.Multiline.IdleTimeout.D(),
		sync:        lc.SyncPeriod.D(),
		stall:       lc.StallTimeout.D(),
		streams:     map[string]*stream{},
		lokiStreams: map[string]*loki.Stream{},
		extLabels:   sortedLabels(kc.ExternalLabels),
	}
	var err error
	if s.m, err = newMetrics(opts.Registerer, opts.Statsd, opts.Identity, func() float64 { return s.lag(time.Now()) }, func() float64 { return float64(s.buffered()) }); err != nil {
		return nil, fmt.Errorf("shipper metrics: %w", err)
	}
	s.lines = multiline.New(multiline.Settings{
		JSON:          lc.Multiline.Mode == "json",
		StartPattern:  lc.Multiline.StartPattern.Regexp,
		MaxEventBytes: int(lc.Multiline.MaxEventBytes),
		Location:      time.Local,
	})
	s.red = redact.New(redactSettings(lc.Redaction), func(rule string) redact.Counter { return s.m.redactions.WithLabelValues(rule) })
	if kc.URL != "" {
		if opts.HTTPClient == nil {
			return nil, errors.New("shipper: an HTTPClient is required with loki.url")
		}
		client, err := loki.NewClient(loki.ClientSettings{URL: kc.URL, TenantID: kc.TenantID, Headers: kc.Headers, UserAgent: opts.UserAgent}, opts.HTTPClient)
		if err != nil {
			return nil, err
		}
		s.queue = loki.NewQueue(int64(lc.MaxBufferBytes))
		s.batch = loki.NewBatcher(s.queue, loki.BatchSettings{MaxLineBytes: int(kc.BatchBytes), MaxWait: kc.BatchWait.D()}, s.waitForMemory)
		s.send = loki.NewSender(client, s.queue, loki.SendSettings{
			MinBackoff: kc.MinBackoff.D(), MaxBackoff: kc.MaxBackoff.D(), MaxRetries: kc.MaxRetries,
		}, s.m, s.log, s.acked)
	}
	for _, o := range opts.Observers {
		if h, ok := o.(logevent.HeaderObserver); ok {
			s.hdrObs = append(s.hdrObs, h)
		}
	}
	var restored []positions.Entry
	firstStart := true
	var w *positions.Writer
	if len(lc.Paths) > 0 {
		if err := positions.CheckDir(lc.PositionsFile); err != nil {
			return nil, err
		}
		entries, seq, err := positions.Load(lc.PositionsFile)
		w = positions.NewWriter(lc.PositionsFile, seq)
		switch {
		case errors.Is(err, positions.ErrCorrupt):
			// Losing nothing beats shipping nothing twice: every file is
			// read again from its start, rotated ones included.
			s.log.Error("positions file unusable; every log file will be shipped again from its start (duplicates in Loki)", "err", err)
			firstStart = false
		case err != nil:
			return nil, err
		case entries != nil:
			firstStart = false
			restored = entries
		}
	}
	s.tail = tail.New(tail.Settings{
		Paths: lc.Paths, PollInterval: s.poll, CloseInactive: lc.CloseInactive.D(),
		MaxOpenFiles: lc.MaxOpenFiles, Cadence: cmp.Or(opts.ReadCadence, CadenceCheckpoints),
	}, restored, firstStart, s.open, s.m, s.log)
	if err := registerProgress(opts.Registerer, s.tail); err != nil {
		return nil, fmt.Errorf("shipper metrics: %w", err)
	}
	if w != nil {
		s.saver = positions.NewSaver(w, s.tail.Positions)
	}
	return s, nil
}

func redactSettings(c config.Redaction) redact.Settings {
	s := redact.Settings{DisableBuiltin: c.DisableBuiltin}
	for _, r := range c.Rules {
		s.Rules = append(s.Rules, redact.Rule{Name: r.Name, Regex: r.Regex.Regexp, Replacement: r.Replacement})
	}
	return s
}

// Read cadences (Options.ReadCadence): while writes keep coming, the
// reader wakes at most this often (tail.Settings.Cadence); a line after a
// quiet spell is read at once. The cost at a steady rate is per wake-up:
// each one also wakes the Go runtime's monitor thread a few times, a fifth
// of the agent's CPU at 2,000 lines/s (perf). What falls due within half a
// cadence after a round is done in it (Shipper.early).
const (
	// CadenceCheckpoints suits an agent whose log lines become checkpoint
	// metrics (a JobManager's): a line waits at most this long to be
	// read, within the 250 ms a log-derived metric may take (a round's
	// work is a few milliseconds; bench-footprint p99 about 110 ms). At
	// 2,000 writes a second, a tenth less CPU than 150 ms.
	CadenceCheckpoints = 200 * time.Millisecond
	// CadenceShipping suits an agent that only ships (a TaskManager's):
	// a third of the 1.5 s a line may take to reach Loki, where
	// loki.batch_wait dominates (push p99 about 1.0 s at 2,000 lines/s,
	// batches handed off on the rounds); a quarter less CPU than 250 ms.
	CadenceShipping = 500 * time.Millisecond
)

// Healthy fails when reading made no progress for logs.stall_timeout
// while files have unread bytes (a read or open that hangs, a volume that
// stopped answering). Waiting for Loki is not a stall. Safe from any
// goroutine; it never waits for the reader.
func (s *Shipper) Healthy() error {
	if stalled, since, unread := s.tail.Stalled(time.Now(), s.stall); stalled {
		return fmt.Errorf("log reading stalled: no progress for %s with %d bytes unread", since.Round(time.Second), unread)
	}
	return nil
}

// Run tails until ctx ends, then drains (see Options.DrainTimeout). It
// returns nil after a clean drain; errors after startup are logged,
// counted and retried, never returned.
func (s *Shipper) Run(ctx context.Context) error {
	s.ctx = ctx
	sendCtx, cancelSend := context.WithCancel(context.Background())
	defer cancelSend()
	sent := make(chan struct{})
	if s.send != nil {
		go func() { defer close(sent); s.send.Run(sendCtx) }()
	} else {
		close(sent)
	}
	hkDone := make(chan struct{})
	hkCtx, stopHK := context.WithCancel(context.Background())
	go s.housekeeping(hkCtx, hkDone)
	s.tail.Start()

	// The reader: files → lines → events (open, emit) → batches.
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	for ctx.Err() == nil {
		now := time.Now()
		s.nowNano = now.UnixNano()
		soon := now.Add(s.early)
		if s.tail.ScanDue(soon) {
			s.tail.Scan(now)
			s.positionsChanged()
		}
		progress, err := s.tail.ReadRound(now)
		if err != nil {
			break // stopping while waiting for memory
		}
		s.firePass()
		deadline := s.tail.NextScan()
		idleAt, idlePending := s.tail.FlushIdle(now, s.idle)
		if idlePending && idleAt.Before(deadline) {
			deadline = idleAt
		}
		if s.batch != nil {
			// Handed off early too, unless an event the idle timeout
			// completes by the batch's due time still belongs to it.
			flushAt := soon
			if due, ok := s.batch.Due(); ok && idlePending && !idleAt.After(due) {
				flushAt = now
			}
			if d, ok := s.batch.Flush(flushAt); ok && d.Before(deadline) {
				deadline = d
			}
		}
		if soon.Sub(s.lastMetrics) >= 500*time.Millisecond {
			s.flushMetrics()
			s.lastMetrics = now
		}
		if progress && (s.tail.More() || s.tail.ScanRequested()) {
			continue // more to read now; else what comes next is announced
		}
		if d := s.lastMetrics.Add(time.Second); d.Before(deadline) {
			deadline = d
		}
		wait.Reset(time.Until(deadline))
		select {
		case <-ctx.Done():
		case <-s.tail.Wake():
		case <-wait.C:
		}
		wait.Stop()
	}

	// Drain: stop reading, push what is in memory, wait for the
	// acknowledgements (bounded), save the positions durably.
	drainTimer := time.AfterFunc(s.opts.DrainTimeout, cancelSend)
	defer drainTimer.Stop()
	if s.batch != nil {
		s.batch.Close() // the sender discards what is left once the drain deadline passed
	}
	<-sent
	if sendCtx.Err() != nil && s.send != nil {
		s.log.Warn("drain timeout: unacknowledged log events will be read again after restart", "timeout", s.opts.DrainTimeout)
	}
	s.flushMetrics()
	stopHK()
	<-hkDone
	if s.saver != nil {
		if err := s.saver.Save(true); err != nil {
			s.log.Error("saving positions at shutdown failed", "err", err)
		}
	}
	s.tail.Close()
	if s.saver != nil {
		s.saver.Close()
	}
	return nil
}

// open gives a file found by the tailer its grouper, whose events go on
// to emit.
func (s *Shipper) open(f *tail.File) tail.Sink {
	st := s.stream(f.GroupPath())
	var begin func(*multiline.Event)
	if len(s.hdrObs) > 0 {
		begin = func(ev *multiline.Event) { s.observeHeader(f, st, ev) }
	}
	return s.lines.Grouper(func(ev *multiline.Event) error { return s.emit(f, st, ev) }, begin)
}

var errStopping = errors.New("shipper stopping")

// emit takes an event of file f: redaction, metrics, observers, and the
// batch (or, without Loki, the acknowledgement at once).
func (s *Shipper) emit(f *tail.File, st *stream, ev *multiline.Event) error {
	out := s.red.Apply(ev.Text, ev.MsgStart, ev.Lines > 1)
	ts := ev.Time
	if ts == 0 {
		ts = s.nowNano
	} else {
		ts = st.loki.Stamp(ts)
	}
	s.m.countLine(st.comp, ev.Level)
	if ev.Lines > 1 {
		if c := multiline.ExceptionClass(out); c != nil {
			s.m.countException(st.comp, c)
		}
	}
	meta := loki.Meta{Logger: ev.Logger, Thread: ev.Thread, ResourceNamespace: ev.ResourceNamespace, ResourceName: ev.ResourceName}
	if ev.Level != multiline.LevelUnknown {
		meta.Level = ev.Level.String()
	}
	if len(s.opts.Observers) > 0 {
		e := &s.event
		e.Time = time.Unix(0, ts)
		e.Line = out
		e.Level = meta.Level
		e.Logger, e.Thread = ev.Logger, ev.Thread
		e.ResourceNamespace, e.ResourceName = ev.ResourceNamespace, ev.ResourceName
		e.File, e.Component = f.Path(), st.compName
		for _, o := range s.opts.Observers {
			o.Observe(e)
		}
		e.Line = nil
	}
	if s.batch == nil {
		f.Ack.Commit(ev.End)
	} else if err := s.batch.Add(st.loki, ts, out, &meta, positions.Mark{Ack: &f.Ack, End: ev.End}, s.nowNano); err != nil {
		return err
	}
	f.Ack.Hand(ev.End)
	return nil
}

// observeHeader hands a log4j event's first line to the header observers.
func (s *Shipper) observeHeader(f *tail.File, st *stream, ev *multiline.Event) {
	e := &s.hdrEvent
	ts := ev.Time
	if ts == 0 {
		ts = s.nowNano
	}
	e.Time = time.Unix(0, ts)
	e.Line = ev.Text
	e.Level = ev.Level.String()
	e.File, e.Component = f.Path(), st.compName
	for _, o := range s.hdrObs {
		o.ObserveHeader(e)
	}
	e.Line = nil
}

// waitForMemory waits until the sender frees budget. Meanwhile new files
// are opened (not read), so that what is rotated away and deleted during
// a long Loki outage stays readable; and readiness is not held up.
func (s *Shipper) waitForMemory(freed <-chan struct{}) error {
	s.firePass()
	s.tail.Alive(time.Now())
	t := time.NewTimer(s.poll)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return errStopping
	case <-freed:
		return nil
	case <-s.tail.Wake():
		if s.tail.ScanRequested() {
			s.tail.OpenNew()
		}
	case <-t.C:
		s.tail.OpenNew()
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
