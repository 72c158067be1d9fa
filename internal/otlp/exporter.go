package otlp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flink-agent/flink-agent/internal/backoff"
)

// Retries of one batch: from minBackoff doubling to maxBackoff, jittered,
// for at most retryFor (a receiver's restart or a short outage loses
// nothing); meanwhile new spans wait in the bounded queue.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
	retryFor   = 2 * time.Minute
)

// Reasons a span is dropped.
const (
	reasonQueueFull    = "queue_full"
	reasonExportFailed = "export_failed"
	reasonShutdown     = "shutdown"
)

type metrics struct {
	exported prometheus.Counter
	dropped  *prometheus.CounterVec
	batches  *prometheus.CounterVec
	queued   prometheus.GaugeFunc
	inflight atomic.Int64
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		exported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flink_agent_otlp_spans_exported_total",
			Help: "Spans the OTLP receiver accepted.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_otlp_spans_dropped_total",
			Help: "Spans given up on: queue_full (traces.queue_size spans were waiting), export_failed (refused, or retried for 2 minutes), shutdown.",
		}, []string{"reason"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_otlp_batches_total",
			Help: "OTLP export attempts: success, retry (failed, tried again after a backoff), failed (given up, its spans dropped).",
		}, []string{"result"}),
	}
	m.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flink_agent_otlp_queued_spans",
		Help: "Spans ended and not yet handed to the OTLP receiver (bounded by traces.queue_size).",
	}, func() float64 { return float64(m.inflight.Load()) })
	for _, r := range []string{reasonQueueFull, reasonExportFailed, reasonShutdown} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"success", "retry", "failed"} {
		m.batches.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.exported, m.dropped, m.batches, m.queued} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// gate admits an ended span to the batch processor while fewer than max
// are waiting for export, and drops and counts it otherwise: the SDK's
// processor would drop it too, silently.
type gate struct {
	next sdktrace.SpanProcessor
	max  int64
	m    *metrics
}

func (g *gate) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { g.next.OnStart(ctx, s) }

func (g *gate) OnEnd(s sdktrace.ReadOnlySpan) {
	if g.m.inflight.Add(1) > g.max {
		g.m.inflight.Add(-1)
		g.m.dropped.WithLabelValues(reasonQueueFull).Inc()
		return
	}
	g.next.OnEnd(s)
}

func (g *gate) Shutdown(ctx context.Context) error   { return g.next.Shutdown(ctx) }
func (g *gate) ForceFlush(ctx context.Context) error { return g.next.ForceFlush(ctx) }

// exporter retries the SDK exporter's failed batches with backoff, counts
// every attempt and every span, and never returns an error to the batch
// processor (which would only hand it to the global error handler).
type exporter struct {
	next       sdktrace.SpanExporter
	g          *gate
	m          *metrics
	log        *slog.Logger
	onExported func([]sdktrace.ReadOnlySpan)
	timeout    time.Duration

	stopOnce sync.Once
	stop     chan struct{}   // closed when shutdown starts: no more retries
	deadline context.Context // ends when the shutdown's time is up
	cancel   context.CancelFunc
	failing  atomic.Bool
}

func newExporter(next sdktrace.SpanExporter, g *gate, m *metrics, log *slog.Logger, onExported func([]sdktrace.ReadOnlySpan), timeout time.Duration) *exporter {
	ctx, cancel := context.WithCancel(context.Background())
	g.m = m
	return &exporter{next: next, g: g, m: m, log: log, onExported: onExported, timeout: timeout,
		stop: make(chan struct{}), deadline: ctx, cancel: cancel}
}

// stopping ends retries now and every attempt when ctx ends.
func (e *exporter) stopping(ctx context.Context) {
	e.stopOnce.Do(func() {
		close(e.stop)
		go func() {
			<-ctx.Done()
			e.cancel()
		}()
	})
}

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	n := len(spans)
	e.m.inflight.Add(-int64(n)) // out of the queue: the gate admits more
	if e.deadline.Err() != nil {
		return nil // the shutdown's time is up: counted as dropped by Shutdown
	}
	start := time.Now()
	b := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	for {
		err := e.attempt(ctx, spans)
		if err == nil {
			e.m.batches.WithLabelValues("success").Inc()
			e.m.exported.Add(float64(n))
			if e.failing.CompareAndSwap(true, false) {
				e.log.Info("OTLP export succeeds again")
			}
			if e.onExported != nil {
				e.onExported(spans)
			}
			return nil
		}
		if !e.failing.Swap(true) {
			e.log.Warn("OTLP export failed: retrying with backoff, spans are dropped when the queue is full or after 2 minutes (further failures are logged at debug level)",
				"err", err, "spans", n)
		} else {
			e.log.Debug("OTLP export failed", "err", err, "spans", n)
		}
		wait := b.Next()
		if permanent(err) || time.Since(start)+wait > retryFor || e.stopped() {
			e.m.batches.WithLabelValues("failed").Inc()
			e.m.dropped.WithLabelValues(reasonExportFailed).Add(float64(n))
			return nil
		}
		e.m.batches.WithLabelValues("retry").Inc()
		select {
		case <-time.After(wait):
		case <-e.stop:
		case <-ctx.Done():
		}
	}
}

func (e *exporter) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// attempt is one export, bounded by traces.timeout and by the shutdown.
func (e *exporter) attempt(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	stop := context.AfterFunc(e.deadline, cancel)
	defer stop()
	var code atomic.Int32
	err := e.next.ExportSpans(context.WithValue(ctx, statusKey{}, &code), spans)
	if err != nil && code.Load() != 0 {
		return &httpError{code: int(code.Load()), err: err}
	}
	return err
}

func (e *exporter) Shutdown(ctx context.Context) error {
	e.stopping(ctx)
	return e.next.Shutdown(ctx)
}

// httpError is a failed OTLP/HTTP export with the status the receiver gave.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// permanent: the receiver refused the batch in a way a retry cannot
// change (a bad request, missing credentials), as the OTLP specification
// says which codes are retryable.
func permanent(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		switch he.code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return false
		}
		return he.code >= 400 && he.code < 500
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented,
			codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists:
			return true
		}
	}
	return false
}
